"""Event-log consumers, each timed over the appended log in batches of 2,000 (issue 10 item 2).

    python bench/consumers.py                                 # SQLite file
    python bench/consumers.py --database-url postgresql+psycopg://postgres@127.0.0.1:5432/bench

Appends the audience's events as acknowledge-on-append ingestion does (buyer_id NULL, signal scores set;
not timed), then runs each registered consumer over the whole log — identity stage first — calling the
consumer functions directly, one write transaction per batch. Reading a batch back is timed apart (it is
the runner's cost, shared by the consumers). Target: processed >= 10,000 events/s on SQLite, all
consumers together.
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import pstats
import shutil
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from _common import load_average, machine

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from tests.pipeline_consumers import harness
from tests.pipeline_consumers.test_equivalence import configure

from offerloop.db import migrate
from offerloop.db.engine import make_engine
from offerloop.db.uow import Database
from offerloop.pipeline import log as pipeline_log
from offerloop.sim.audience import Audience
from offerloop.workspaces import service as workspace_service


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    for flag, kind, default, about in (
        (
            "--database-url",
            str,
            None,
            "default: a fresh SQLite file (a PostgreSQL database is migrated in place)",
        ),
        ("--events", int, 200_000, "events the audience sends"),
        ("--buyers", int, 5_000, "buyers of the audience"),
        ("--batch", int, 2_000, "events per consumer call"),
        ("--profile", str, None, "name of a consumer to run under cProfile"),
    ):
        parser.add_argument(flag, type=kind, default=default, help=about)
    parser.add_argument("--sort", default="cumulative", help="the profile's order (cumulative, tottime…)")
    parser.add_argument(
        "--no-gc-freeze", action="store_true", help="leave the objects made at start-up to the collector"
    )
    args = parser.parse_args()

    tmp = tempfile.mkdtemp(prefix="offerloop-bench-")
    url = args.database_url or f"sqlite:///{Path(tmp) / 'bench.db'}"
    engine = make_engine(url)
    migrate.upgrade(engine)  # a new workspace each run: earlier runs' rows in the database do not count
    db = Database(engine)
    with db.write() as session:
        ws = workspace_service.create_workspace(session=session, name="bench").id
        configure(session, ws)

    t0 = time.perf_counter()
    start = datetime(2026, 6, 1, tzinfo=UTC)
    audience = Audience(buyers=args.buyers, events=args.events, seed=11, start=start - timedelta(days=90))
    pending: list[list[dict]] = []
    appended = 0

    def flush() -> None:
        nonlocal appended
        with db.write() as session:
            for messages in pending:
                appended += len(harness.append(session, ws, messages, start + timedelta(seconds=appended)))
        pending.clear()

    for messages in audience.batches(100):
        pending.append(messages)
        if len(pending) == 50:
            flush()
    flush()
    print(f"machine: {machine()}")
    print(
        f"backend: {engine.dialect.name}; appended {appended:,} events in {time.perf_counter() - t0:.1f} s (not timed)"
    )

    if not args.no_gc_freeze:
        gc.freeze()  # as a server or worker process does when its consumers start (pipeline.pacing.settle_heap)
    print(f"load average (1 min) before: {load_average()}")
    timings: dict[str, tuple[float, float]] = {}
    reading = [0.0, 0.0]  # wall, CPU
    for c in [*harness.stage("identity"), *harness.stage("buyer")]:
        profiler = cProfile.Profile() if args.profile == c.name else None
        spent, cpu, after, count = 0.0, 0.0, 0, 0
        while True:
            r0, rc0 = time.perf_counter(), time.process_time()
            with db.read() as session:  # the runner's reader (a partition's stage reads it once per step)
                events = pipeline_log.read(session, ws, after=after, up_to=None, part=None, limit=args.batch)
            reading[0] += time.perf_counter() - r0
            reading[1] += time.process_time() - rc0
            if not events:
                break
            c0, cc0 = time.perf_counter(), time.process_time()
            if profiler:
                profiler.enable()
            with db.write() as session:
                c.fn(session, ws, events)
            if profiler:
                profiler.disable()
            spent += time.perf_counter() - c0
            cpu += time.process_time() - cc0
            after, count = events[-1].seq, count + len(events)
        timings[c.name] = (spent, cpu)
        print(
            f"  {c.name:<10} {c.stage:<8} {count:,} events in {spent:6.2f} s = {count / spent:>9,.0f} ev/s"
            f"  (CPU {cpu:6.2f} s, {cpu / count * 1e6:6.1f} µs/event)"
        )
        if profiler:
            pstats.Stats(profiler).sort_stats(args.sort).print_stats(30)
    total, total_cpu = (sum(t[i] for t in timings.values()) for i in (0, 1))
    passes = len(timings)
    print(f"all consumers: {total:.2f} s = {appended / total:,.0f} ev/s processed "
          f"(CPU {total_cpu:.2f} s, {total_cpu / appended * 1e6:.1f} µs/event)")  # fmt: skip
    print(f"reading the log back, {passes} passes: {reading[0]:.2f} s (CPU {reading[1]:.2f} s, "
          f"{reading[1] / passes / appended * 1e6:.1f} µs/event/pass)")  # fmt: skip
    two = total + reading[0] * 2 / passes  # the runner reads twice: the identity stage, then the buyer stage
    print(f"with the runner's two reads (identity stage, buyer stage): {appended / two:,.0f} ev/s; "
          f"with one read per consumer: {appended / (total + reading[0]):,.0f} ev/s")  # fmt: skip
    print(f"load average (1 min) after: {load_average()}")
    engine.dispose()
    shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
