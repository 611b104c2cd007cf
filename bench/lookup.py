"""Buyer lookup by identifier with 1,000,000 buyers (3,000,000 identifiers) in the store.

    python bench/lookup.py                       # SQLite
    python bench/lookup.py --database-url postgresql+psycopg://postgres@127.0.0.1:5432/test

Target (issue 2): p99 <= 2 ms. Measured in-process (service call, one read session per lookup, as a
request has) and over HTTP (GET /v1/buyers/lookup, one keep-alive connection).
"""

from __future__ import annotations

import argparse
import http.client
import random
import shutil
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from _common import create_workspace, load_average, machine, percentile, start_server
from sqlalchemy import delete, event, insert, text

from offerloop.db import migrate
from offerloop.db.engine import make_engine
from offerloop.db.uow import Database
from offerloop.identity import service as identity_service
from offerloop.models import Buyer, Identity, Workspace


def load(db: Database, workspace_id: str, n: int) -> None:
    base = datetime(2026, 1, 1, tzinfo=UTC)
    chunk = 20_000
    with db.write() as session:
        for start in range(0, n, chunk):
            buyers, idents = [], []
            for i in range(start, min(n, start + chunk)):
                bid = f"byr_bench{i:012d}"
                seen = base + timedelta(minutes=i % 500_000)
                buyers.append({"id": bid, "workspace_id": workspace_id, "user_id": f"u{i}", "created_at": seen,
                               "first_seen_at": seen, "last_seen_at": seen, "traits": {"plan": "pro" if i % 3 else "free"},
                               "trait_times": {}, "event_count": 1})  # fmt: skip
                idents += [
                    {"workspace_id": workspace_id, "buyer_id": bid, "kind": "user_id", "value": f"u{i}", "created_at": seen},
                    {"workspace_id": workspace_id, "buyer_id": bid, "kind": "email", "value": f"b{i}@example.com", "created_at": seen},
                    {"workspace_id": workspace_id, "buyer_id": bid, "kind": "anonymous_id", "value": f"a-{i:08x}", "created_at": seen},
                ]  # fmt: skip
            session.execute(insert(Buyer), buyers)
            session.execute(insert(Identity), idents)
        if db.dialect == "postgresql":
            session.execute(text("ANALYZE buyers"))
            session.execute(text("ANALYZE identities"))


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--buyers", type=int, default=1_000_000)
    parser.add_argument("--lookups", type=int, default=20_000)
    args = parser.parse_args()
    started_load = load_average()
    tmp = tempfile.mkdtemp(prefix="offerloop-bench-")
    url = args.database_url or f"sqlite:///{Path(tmp) / 'lookup.db'}"

    ws = create_workspace(url, "lookup-bench")
    engine = make_engine(url)
    migrate.upgrade(engine)
    db = Database(engine)
    t0 = time.perf_counter()
    load(db, ws["id"], args.buyers)
    load_s = time.perf_counter() - t0

    rng = random.Random(5)
    kinds = ("user_id", "email", "anonymous_id")

    def ask(i: int) -> tuple[str, str]:
        kind = kinds[rng.randrange(3)]
        return kind, {"user_id": f"u{i}", "email": f"b{i}@example.com", "anonymous_id": f"a-{i:08x}"}[kind]

    statements: list[str] = []

    def count(conn, cursor, statement, params, context, executemany):  # type: ignore[no-untyped-def]
        if statement.lstrip().upper().startswith("SELECT"):
            statements.append(statement)

    event.listen(engine, "before_cursor_execute", count)
    with db.read() as session:
        identity_service.lookup(session=session, workspace_id=ws["id"], user_id="u0")
    event.remove(engine, "before_cursor_execute", count)

    in_process: list[float] = []
    cpu: list[float] = []  # this thread's own CPU time: what other work on the cores does not inflate
    for _ in range(args.lookups):
        kind, value = ask(rng.randrange(args.buyers))
        t = time.perf_counter()
        c = time.thread_time()
        with db.read() as session:
            identity_service.lookup(session=session, workspace_id=ws["id"], **{kind: value})
        in_process.append(time.perf_counter() - t)
        cpu.append(time.thread_time() - c)

    server = start_server(url)
    over_http: list[float] = []
    try:
        conn = http.client.HTTPConnection("127.0.0.1", server.port)
        headers = {"Authorization": f"Bearer {ws['secret_key']}"}
        for _ in range(min(args.lookups, 5000)):
            kind, value = ask(rng.randrange(args.buyers))
            t = time.perf_counter()
            conn.request("GET", f"/v1/buyers/lookup?{kind}={value}", headers=headers)
            resp = conn.getresponse()
            resp.read()
            assert resp.status == 200, resp.status
            over_http.append(time.perf_counter() - t)
    finally:
        server.stop()
        if db.dialect == "postgresql":  # a shared database: leave it as it was
            with db.write() as session:
                session.execute(delete(Workspace).where(Workspace.id == ws["id"]))
        engine.dispose()
        shutil.rmtree(tmp, ignore_errors=True)

    print(f"machine: {machine()}; load average at the end: {load_average()} (start: {started_load})")
    print(
        f"backend: {url.split(':', 1)[0]}; {args.buyers:,} buyers, {3 * args.buyers:,} identifiers (loaded in {load_s:.0f} s)"
    )
    print(f"statements per lookup: {len(statements)}")
    print(
        f"lookup in-process, CPU time of the calling thread: p50 {percentile(cpu, 50) * 1000:.2f} ms, "
        f"p99 {percentile(cpu, 99) * 1000:.2f} ms"
    )
    for name, xs in (("in-process", in_process), ("over HTTP", over_http)):
        print(
            f"lookup {name}: p50 {percentile(xs, 50) * 1000:.2f} ms, p99 {percentile(xs, 99) * 1000:.2f} ms "
            f"({len(xs):,} lookups by user_id/email/anonymous_id)"
        )


if __name__ == "__main__":
    main()
