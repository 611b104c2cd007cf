"""Ingest without HTTP: the physical limit of the events table, and where an append-only batch's time goes.

    python bench/ingest_baseline.py                 # SQLite
    python bench/ingest_baseline.py --database-url postgresql+psycopg://postgres@127.0.0.1:5432/bench_ingest

Two measurements, each on its own freshly migrated database (the same schema, indexes and PRAGMAs as the
server's), batches of 100, one transaction per batch:

- **bare**: the rows the server stores (values already converted to the driver's types before the clock
  starts) inserted by the driver's own ``executemany``: the most any ingest path could reach.
- **validate + append**: each request body parsed, validated (``prepare_batch``), deduplicated against the
  table, converted and inserted through offerloop's driver path, timed stage by stage. This is an
  append-only acknowledgement without HTTP, identity resolution or consumers.

``bench/ingest.py`` imports ``bare_executemany`` and ``validate_and_append`` to print them beside the
HTTP figures of the same run.
"""

from __future__ import annotations

import argparse
import contextlib
import tempfile
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import orjson
from sqlalchemy import Engine, make_url, text

from offerloop.core.clock import utcnow
from offerloop.db import driver, migrate
from offerloop.db.engine import WalCheckpointer, make_engine
from offerloop.db.uow import Database
from offerloop.events import repository
from offerloop.events.validation import Accepted, prepare_batch
from offerloop.pipeline import log as pipeline_log
from offerloop.sim.audience import Audience
from offerloop.worker import registry
from offerloop.workspaces import service as workspace_service

MAX_EVENT_BYTES = 32 * 1024


@contextlib.contextmanager
def scratch_database(base_url: str, name: str) -> Iterator[Engine]:
    """A new, migrated database beside ``base_url`` (a file in a temporary directory, or a PostgreSQL
    database on the same server), dropped afterwards."""
    url = make_url(base_url)
    if url.get_backend_name() == "sqlite":
        with tempfile.TemporaryDirectory(prefix="offerloop-limit-") as tmp:
            # The server's settings: synchronous NORMAL, WAL checkpointed by a background thread.
            engine = make_engine(f"sqlite:///{Path(tmp) / (name + '.db')}", background_checkpoint=True)
            migrate.upgrade(engine)
            checkpointer = WalCheckpointer(engine)
            checkpointer.start()
            try:
                yield engine
            finally:
                checkpointer.stop()
                engine.dispose()
        return
    db_name = f"{url.database}_{name}"
    admin = make_engine(url.render_as_string(hide_password=False)).execution_options(
        isolation_level="AUTOCOMMIT"
    )
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{db_name}"'))
        conn.execute(text(f'CREATE DATABASE "{db_name}"'))
    engine = make_engine(url.set(database=db_name).render_as_string(hide_password=False))
    try:
        migrate.upgrade(engine)
        yield engine
    finally:
        engine.dispose()
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{db_name}"'))
        admin.dispose()


def _row(a: Accepted, received_at: Any, workspace_id: str) -> tuple[Any, ...]:
    """The event row an append-only ingest stores (EVENT_COLUMNS order): no buyer yet, that is a consumer's."""
    return (
        workspace_id, a.message_id, a.type, a.name, None, a.user_id, a.anonymous_id, a.group_id, a.previous_id,
        a.timestamp, a.original_timestamp, a.sent_at, received_at, a.properties, a.traits, a.context,
        1.0, 1.0, False, False,
    )  # fmt: skip


def workspace(engine: Engine) -> str:
    with Database(engine).write() as session:
        return workspace_service.create_workspace(session=session, name="limit").id


def stored_rows(bodies: list[bytes], workspace_id: str) -> list[list[tuple[Any, ...]]]:
    """Per batch, the rows the server would append: accepted and not a duplicate of an earlier one."""
    seen: set[str] = set()
    out = []
    for body in bodies:
        prepared = prepare_batch(
            orjson.loads(body)["batch"], received_at=utcnow(), max_event_bytes=MAX_EVENT_BYTES
        )
        rows = []
        for a in prepared.accepted:
            if a.message_id not in seen:
                seen.add(a.message_id)
                rows.append(_row(a, prepared.received_at, workspace_id))
        out.append(rows)
    return out


def _insert_sql(engine: Engine) -> str:
    mark = "?" if engine.dialect.paramstyle == "qmark" else "%s"
    columns = repository.EVENT_COLUMNS
    return f"INSERT INTO events ({', '.join(columns)}) VALUES ({', '.join([mark] * len(columns))})"


def bare_executemany(engine: Engine, batches: list[list[tuple[Any, ...]]], *, connections: int = 1) -> float:
    """Seconds to insert every batch with the driver's executemany, one transaction per batch.

    SQLite has one writer, so it gets one connection; PostgreSQL gets ``connections``, as the server has.
    """
    convert = driver._pg_value if engine.dialect.name == "postgresql" else driver._sqlite_value
    converted = [[tuple(convert(v) for v in row) for row in batch] for batch in batches]
    sql = _insert_sql(engine)
    n = 1 if engine.dialect.name == "sqlite" else connections
    raws = [engine.raw_connection() for _ in range(n)]
    cursor = iter(converted)
    lock = threading.Lock()

    def run(raw: Any) -> None:
        cur = raw.cursor()
        while True:
            with lock:
                batch = next(cursor, None)
            if batch is None:
                return
            if engine.dialect.name == "sqlite":
                cur.execute("BEGIN IMMEDIATE")
            cur.executemany(sql, batch)
            if engine.dialect.name == "sqlite":
                cur.execute("COMMIT")  # the driver connection is in autocommit mode (see make_engine)
            else:
                raw.commit()

    started = time.perf_counter()
    threads = [threading.Thread(target=run, args=(raw,)) for raw in raws]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    elapsed = time.perf_counter() - started
    for raw in raws:
        raw.close()
    return elapsed


_STAGES = ("parse", "validate", "dedupe", "convert+insert", "commit")


@dataclass
class Stages:
    """Seconds spent in each stage of validate + append, summed over the batches: wall clock, and this
    thread's CPU time (which other work on a busy machine does not inflate; it leaves out I/O waits)."""

    batches: int = 0
    events: int = 0
    seconds: dict[str, float] = field(default_factory=lambda: dict.fromkeys(_STAGES, 0.0))
    cpu: dict[str, float] = field(default_factory=lambda: dict.fromkeys(_STAGES, 0.0))

    @property
    def total(self) -> float:
        return sum(self.seconds.values())

    def add(self, marks: list[tuple[float, float]]) -> None:
        for name, (w0, c0), (w1, c1) in zip(_STAGES, marks[:-1], marks[1:], strict=True):
            self.seconds[name] += w1 - w0
            self.cpu[name] += c1 - c0


def _mark() -> tuple[float, float]:
    return time.perf_counter(), time.thread_time()


def validate_and_append(engine: Engine, bodies: list[bytes]) -> Stages:
    """Each body parsed, validated, deduplicated and appended through offerloop's driver path, in one
    write unit of work per batch (as ingest does), timed per stage."""
    registry.load()  # the real consumers: appending bumps the identity stage's checkpoint row
    db = Database(engine)
    workspace_id = workspace(engine)
    stages = Stages()
    for body in bodies:
        marks = [_mark()]
        messages = orjson.loads(body)["batch"]
        marks.append(_mark())
        prepared = prepare_batch(messages, received_at=utcnow(), max_event_bytes=MAX_EVENT_BYTES)
        marks.append(_mark())
        with db.write() as session:
            # The exactly-once claim, as ingest makes it (INSERT ... ON CONFLICT DO NOTHING RETURNING).
            new = repository.claim_message_ids(
                session, workspace_id, list({a.message_id for a in prepared.accepted})
            )
            fresh = []
            for a in prepared.accepted:
                if a.message_id in new:
                    new.discard(a.message_id)
                    fresh.append(_row(a, prepared.received_at, workspace_id))
            marks.append(_mark())
            repository.append_events(session, workspace_id, fresh)
            pipeline_log.appended(session, workspace_id)  # wakes the identity stage once committed
            marks.append(_mark())
        marks.append(_mark())
        stages.add(marks)
        stages.batches += 1
        stages.events += len(messages)
    return stages


def report(events: int, stored: int, bare_s: float, stages: Stages) -> list[str]:
    per = 1000 / stages.batches
    parts = ", ".join(f"{k} {v * per:.2f} ({stages.cpu[k] * per:.2f})" for k, v in stages.seconds.items())
    return [
        f"physical limit (bare executemany of the {stored:,} stored rows): {stored / bare_s:,.0f} rows/s "
        f"({bare_s:.1f} s)",
        f"validate + append in-process (one thread, no HTTP): {events / stages.total:,.0f} events/s "
        f"({stages.total:.1f} s)",
        f"  ms per batch of 100, wall (CPU): {parts}; total {stages.total * per:.2f} "
        f"({sum(stages.cpu.values()) * per:.2f})",
    ]


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--database-url", default="sqlite:///limit.db", help="where scratch databases go")
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--buyers", type=int, default=5_000)
    parser.add_argument("--connections", type=int, default=2)
    args = parser.parse_args()
    bodies = [
        orjson.dumps({"batch": b})
        for b in Audience(buyers=args.buyers, events=args.events, seed=11).batches(100)
    ]
    with scratch_database(args.database_url, "bare") as engine:
        rows = stored_rows(bodies, workspace(engine))
        bare_s = bare_executemany(engine, rows, connections=args.connections)
    with scratch_database(args.database_url, "append") as engine:
        stages = validate_and_append(engine, bodies)
    print(f"backend: {make_url(args.database_url).get_backend_name()}")
    for line in report(args.events, sum(map(len, rows)), bare_s, stages):
        print(line)


if __name__ == "__main__":
    main()
