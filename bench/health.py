"""Model and data health at scale: the cost of /v1/health/drift, /models, /alerts and of a /metrics scrape.

    python bench/health.py                          # 50,000 buyers a window, 50,000 decisions, SQLite
    python bench/health.py --buyers 10000 --decisions 20000
    python bench/health.py --database-url postgresql+psycopg://postgres@127.0.0.1:5432/bench_health

One workspace with the default feature spec: ``--buyers`` buyers last updated in the reference window (8-35
days ago) and as many in the current one (the last 7 days), each with a persona, and ``--decisions`` rewarded
decisions of one placement over the last 28 days (10% holdout, two candidates, propensity 1/2). Rows are
written with bulk INSERTs (seeded), then each service call is timed in-process (best of ``--repeat``).
"""

from __future__ import annotations

import argparse
import random
import tempfile
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

from _common import load, machine
from sqlalchemy import insert

from offerloop.analytics import health
from offerloop.cli.common import database
from offerloop.config import Settings
from offerloop.core.clock import utcnow
from offerloop.features.state import new_state
from offerloop.models import Buyer, BuyerFeatures, BuyerPersona, Decision
from offerloop.workspaces import service as workspace_service

PERSONAS = ["bargain", "collector", "learner", "gifter", "lurker"]


def seed(db: Any, workspace_id: str, buyers: int, decisions: int, rng: random.Random) -> None:
    now = utcnow()
    for window, (low, high) in enumerate(((8, 35), (0, 7))):
        for start in range(0, buyers, 5000):
            people, states, personas = [], [], []
            for i in range(start, min(buyers, start + 5000)):
                at = now - timedelta(days=rng.uniform(low, high))
                buyer_id = f"byr_{window}{i:025d}"
                people.append({"id": buyer_id, "workspace_id": workspace_id, "created_at": at, "first_seen_at": at,
                               "last_seen_at": at, "traits": {}, "trait_times": {}, "event_count": 1})  # fmt: skip
                state = new_state()
                shift = 1.5 if window else 1.0  # the current window buys a little more
                state["f"] = {"orders:count": rng.expovariate(1 / shift) // 0.5,
                              "drop_views:count": float(rng.randrange(20)),
                              "coupon_attempts:count": float(rng.randrange(3))}  # fmt: skip
                states.append({"buyer_id": buyer_id, "workspace_id": workspace_id, "state": state,
                               "spec_version": 0, "updated_at": at, "applied_seq": 0, "rebuild": False})  # fmt: skip
                persona = rng.choices(PERSONAS, weights=[3, 2, 2, 1, 2] if window else [2, 2, 2, 2, 2])[0]
                personas.append({"buyer_id": buyer_id, "workspace_id": workspace_id, "persona": persona,
                                 "confidence": 0.8, "posterior": {persona: 0.8}, "reasons": [],
                                 "templates_version": 1, "updated_at": at})  # fmt: skip
            with db.write() as session:
                session.execute(insert(Buyer), people)
                session.execute(insert(BuyerFeatures), states)
                session.execute(insert(BuyerPersona), personas)
    candidates = [{"id": "a0", "features": {}}, {"id": "a1", "features": {}}]
    for start in range(0, decisions, 5000):
        rows = []
        for i in range(start, min(decisions, start + 5000)):
            at = now - timedelta(days=28) + timedelta(seconds=i * 28 * 86400 / decisions)
            holdout = rng.random() < 0.1
            chosen = rng.randrange(2)
            rows.append({
                "id": f"dec_{i:026d}", "workspace_id": workspace_id, "buyer_id": None, "placement": "home",
                "created_at": at, "policy": "rules" if holdout else "model", "holdout": holdout,
                "model_version": 0 if holdout else 1, "persona": None, "context": {}, "candidates": candidates,
                "items": [], "excluded": [], "chosen_key": f"a{chosen}", "chosen_index": chosen, "propensity": 0.5,
                "reward": float(rng.random() < (0.1 + 0.05 * chosen)), "reward_at": at,
            })  # fmt: skip
        with db.write() as session:
            session.execute(insert(Decision), rows)


def timed(repeat: int, call: Any) -> float:
    best = float("inf")
    for _ in range(repeat):
        started = time.perf_counter()
        call()
        best = min(best, time.perf_counter() - started)
    return best


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--buyers", type=int, default=50_000, help="buyers per window")
    parser.add_argument("--decisions", type=int, default=50_000)
    parser.add_argument("--repeat", type=int, default=2)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--database-url", default=None)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        url = args.database_url or f"sqlite:///{Path(tmp) / 'health.db'}"
        with database(Settings(database_url=url)) as db:
            with db.write() as session:
                ws = workspace_service.create_workspace(session=session, name="health bench").id
            started = time.perf_counter()
            seed(db, ws, args.buyers, args.decisions, random.Random(args.seed))
            seeded = time.perf_counter() - started

            def call(fn: Any, **kw: Any) -> Any:
                with db.read() as session:
                    return fn(session=session, workspace_id=ws, **kw)

            figures = {
                "drift (defaults: at most 5,000 buyers a window)": timed(args.repeat, lambda: call(health.drift)),
                "drift, max_buyers=1,000": timed(args.repeat, lambda: call(health.drift, max_buyers=1000)),
                "models (14 days, with OPE)": timed(args.repeat, lambda: call(health.models_health, placement="home")),
                "alerts (drift + reward + OPE per placement)": timed(args.repeat, lambda: call(health.check)),
            }  # fmt: skip
            health.forget_cache()
            figures["/metrics refresh, cold (starts the background sweep)"] = timed(
                1, lambda: health.refresh_metrics(db)
            )
            figures["... the sweep, waited for (one workspace)"] = timed(1, health.wait_for_sweep)
            figures["/metrics refresh, cached"] = timed(args.repeat, lambda: health.refresh_metrics(db))
            report = call(health.drift)
    print(f"machine: {machine()}")
    print(f"{load()}; {url.split(':', 1)[0]}; {args.buyers:,} buyers a window, {args.decisions:,} decisions; "
          f"seeded in {seeded:.1f} s")  # fmt: skip
    orders = next(f for f in report.features if f.feature == "orders")
    print(f"orders PSI {orders.psi:.4f}, persona mix PSI {report.persona_mix.psi:.4f}\n")
    print("| call | best of runs |\n|---|---:|")
    for name, seconds in figures.items():
        print(f"| {name} | {seconds * 1000:.0f} ms |")


if __name__ == "__main__":
    main()
