"""Experiment results and assignment with many exposed buyers in the store.

    python bench/experiments.py                  # SQLite, 50,000 exposed buyers, 4 events each
    python bench/experiments.py --buyers 200000 --database-url postgresql+psycopg://postgres@127.0.0.1:5432/test

Measured in-process (service calls, one unit of work each, as a request has): GET results (the whole
computation: exposures, the event log reads, every statistic) and assign (a buyer already exposed, and a
first exposure). No target in the issue; recorded so a regression shows.
"""

from __future__ import annotations

import argparse
import random
import shutil
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from _common import load, machine, percentile
from sqlalchemy import delete, insert

from offerloop.db import migrate
from offerloop.db.engine import make_engine
from offerloop.db.uow import Database
from offerloop.experiments import service
from offerloop.experiments.schemas import ExperimentCreate
from offerloop.models import Buyer, Event, Exposure, Workspace

KEY = "bench"
ARMS = [{"key": "control", "weight": 1}, {"key": "treatment", "weight": 1}]


def fill(db: Database, workspace_id: str, n: int, seed: int) -> dict[str, tuple[int, int]]:
    """n buyers exposed 40 days ago, each with a pre-period visit, a visit 35 days after and, for 10% / 12%
    of them, an order in the window (plus one before exposure for a fifth of everyone). Returns the
    (exposed, converted) counts per arm, which the results must reproduce."""
    counts: dict[str, list[int]] = {str(a["key"]): [0, 0] for a in ARMS}
    rng = random.Random(seed)
    t0 = datetime.now(UTC) - timedelta(days=40)
    chunk = 10_000
    with db.write() as session:
        session.add(Workspace(id=workspace_id, name="bench", created_at=t0))
        session.flush()
        service.create(session=session, workspace_id=workspace_id, now=t0 - timedelta(days=1),
                       experiment_in=ExperimentCreate.model_validate({"key": KEY, "subject": "offer",
                                                                      "subject_id": "x", "arms": ARMS}))  # fmt: skip
        seq = 0
        for start in range(0, n, chunk):
            buyers, exposures, events = [], [], []
            for i in range(start, min(n, start + chunk)):
                bid = f"byr_bench{i:012d}"
                arm = service.bucket(workspace_id, KEY, bid, ARMS)
                buyers.append({"id": bid, "workspace_id": workspace_id, "user_id": f"u{i}", "created_at": t0,
                               "first_seen_at": t0, "last_seen_at": t0, "traits": {}, "trait_times": {}})  # fmt: skip
                exposures.append({"workspace_id": workspace_id, "experiment_key": KEY, "buyer_id": bid, "arm": arm,
                                  "exposed_at": t0})  # fmt: skip
                rate = 0.12 if arm == "treatment" else 0.10
                plan: list[tuple[str, datetime, dict[str, int] | None]] = [
                    ("Page Viewed", t0 - timedelta(days=5), None),
                    ("Page Viewed", t0 + timedelta(days=35), None),
                ]
                counts[arm][0] += 1
                if rng.random() < rate:
                    counts[arm][1] += 1
                    plan.append(
                        ("Order Completed", t0 + timedelta(days=2), {"total_minor": rng.choice((900, 2900))})
                    )
                if rng.random() < 0.2:
                    plan.append(("Order Completed", t0 - timedelta(days=9), {"total_minor": 1900}))
                for name, at, props in plan:
                    seq += 1
                    events.append({"workspace_id": workspace_id, "message_id": f"m{seq}", "type": "track",
                                   "name": name, "buyer_id": bid, "timestamp": at, "received_at": at,
                                   "properties": props, "weight": 1.0, "confidence": 1.0, "high_signal": False,
                                   "suppressed": False})  # fmt: skip
            session.execute(insert(Buyer), buyers)
            session.execute(insert(Exposure), exposures)
            session.execute(insert(Event), events)
    return {arm: (exposed, converted) for arm, (exposed, converted) in counts.items()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--buyers", type=int, default=50_000)
    parser.add_argument("--results", type=int, default=5, help="results computations timed")
    parser.add_argument("--assigns", type=int, default=2000)
    parser.add_argument("--database-url", default=None)
    args = parser.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="offerloop-bench-expts-"))
    url = args.database_url or f"sqlite:///{tmp / 'bench.db'}"
    engine = make_engine(url)
    migrate.upgrade(engine)
    workspace_id = f"ws_bench_expts_{int(time.time())}"
    db = Database(engine)
    try:
        t = time.perf_counter()
        made = fill(db, workspace_id, args.buyers, seed=1)
        print(f"loaded {args.buyers:,} exposed buyers in {time.perf_counter() - t:.1f} s")
        timings = []
        for _ in range(args.results):
            t = time.perf_counter()
            with db.read() as session:
                out = service.get_results(session=session, workspace_id=workspace_id, key=KEY)
            timings.append(time.perf_counter() - t)
        assert {a.arm: (a.exposed, a.conversions) for a in out.arms} == made, (out.arms, made)
        conv = out.variants[0].conversion
        assert conv is not None
        print(f"results: median {percentile(timings, 50):.3f} s, max {max(timings):.3f} s "
              f"(exposed {out.exposed:,}; conversion diff {conv.difference:+.4f} "
              f"[{conv.ci_low:+.4f}, {conv.ci_high:+.4f}])")  # fmt: skip
        for label, prefix in (
            ("assign, already exposed", "byr_bench"),
            ("assign, first exposure", "byr_new"),
        ):
            timings = []
            for i in range(args.assigns):
                t = time.perf_counter()
                with db.write() as session:
                    service.arm_for(
                        session=session, workspace_id=workspace_id, key=KEY, buyer_id=f"{prefix}{i:012d}"
                    )
                timings.append(time.perf_counter() - t)
            print(
                f"{label}: p50 {percentile(timings, 50) * 1000:.2f} ms, p99 {percentile(timings, 99) * 1000:.2f} ms"
            )
        print(f"{machine()}; {load()}")
    finally:
        if db.dialect == "postgresql":  # the bench's rows go with its workspace (ON DELETE CASCADE)
            with db.write() as session:
                session.execute(delete(Workspace).where(Workspace.id == workspace_id))
        engine.dispose()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
