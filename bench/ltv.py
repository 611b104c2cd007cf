"""BG/NBD + Gamma-Gamma on 2.36M CDNOW-like customers: offerloop's fit vs lifetimes', same data, same run.

    python bench/ltv.py                       # 1,000 copies of the CDNOW sample (2,357,000 customers), seed 7
    python bench/ltv.py --copies 100 --skip-lifetimes

The data: the CDNOW sample's 39-week calibration summary, built from tests/data/cdnow/CDNOW_sample.txt by
offerloop.ml.ltv.rfm_summary (2,357 customers), tiled ``--copies`` times; each copy is perturbed (seeded): each
customer's acquisition moves 0-6 days earlier (T grows by that many sevenths of a week, x and t_x stay) and each
repeat customer's average spend is scaled by a log-normal factor (sigma 0.1) and rounded to cents.

Timed: offerloop's ``fit_bgnbd`` + ``fit_gamma_gamma`` from the per-customer arrays (the grouping into distinct
``(x, t_x, T)`` rows is inside the timing), then lifetimes' ``BetaGeoFitter().fit`` + ``GammaGammaFitter().fit``
on the same arrays (lifetimes needs ``pip install -e '.[bench]'``; it takes tens of seconds, run once).

Target (issue 13): <= 2 s for offerloop on 2.36M customers.

    python bench/ltv.py --store 40            # GET /v1/analytics/ltv's work on a SQLite store (in-process)

``--store K`` instead writes K copies of the CDNOW transactions (K x 2,357 buyers, K x 6,919 ``Order Completed``
events, straight into the tables) to a fresh SQLite file (or ``--database-url``) and times ``analytics.ltv.fit``
(read, summarise, fit, segment) as the endpoint runs it.
"""

from __future__ import annotations

import argparse
import time
import warnings
from datetime import date
from pathlib import Path

import numpy as np
from _common import load, machine

from offerloop.ml import ltv

CDNOW = Path(__file__).resolve().parents[1] / "tests" / "data" / "cdnow" / "CDNOW_sample.txt"
EPOCH = date(1970, 1, 1)


def cdnow_summary() -> ltv.RFMSummary:
    customer, day, value = [], [], []
    for line in CDNOW.read_text().splitlines():
        _, cust, ymd, _, amount = line.split()
        customer.append(int(cust))
        day.append((date(int(ymd[:4]), int(ymd[4:6]), int(ymd[6:])) - EPOCH).days)
        value.append(float(amount))
    return ltv.rfm_summary(
        customer, day, value, calibration_end=(date(1997, 9, 30) - EPOCH).days, unit_days=7.0
    )


def tiled(summary: ltv.RFMSummary, copies: int, seed: int) -> tuple[np.ndarray, ...]:
    rng = np.random.default_rng(seed)
    n = summary.x.shape[0] * copies
    x = np.tile(summary.x, copies)
    t_x = np.tile(summary.t_x, copies)
    T = np.tile(summary.T, copies) + rng.integers(0, 7, n) / 7.0
    m = np.tile(summary.monetary, copies)
    m = np.where(x > 0, np.round(m * rng.lognormal(0.0, 0.1, n), 2), 0.0)
    return x, t_x, T, m


def store(copies: int, database_url: str | None, repeat: int) -> None:
    import tempfile
    from datetime import UTC, datetime
    from datetime import time as clock_time

    from sqlalchemy import insert

    from offerloop.analytics import ltv as ltv_service
    from offerloop.cli.common import database
    from offerloop.config import Settings
    from offerloop.models import Buyer, Event
    from offerloop.workspaces import service as workspace_service

    rows = [line.split() for line in CDNOW.read_text().splitlines()]
    url = database_url or f"sqlite:///{tempfile.mkdtemp(prefix='ltv-bench-')}/ltv.db"
    cfg = Settings(environment="development", database_url=url)
    now = datetime.now(UTC)
    with database(cfg) as db:
        with db.write() as session:
            ws = workspace_service.create_workspace(session=session, name="ltv bench").id
        start = time.perf_counter()
        for k in range(copies):
            buyers = {f"b{k}-{cust}" for _, cust, *_ in rows}
            events = [
                {"workspace_id": ws, "message_id": f"m{k}-{n}", "type": "track", "name": "Order Completed",
                 "buyer_id": f"b{k}-{cust}", "user_id": f"u{k}-{cust}", "received_at": now,
                 "timestamp": datetime.combine(date(int(ymd[:4]), int(ymd[4:6]), int(ymd[6:])), clock_time(12), UTC),
                 "properties": {"order_id": f"o{k}-{n}", "total_minor": round(float(amount) * 100),
                                "currency": "USD"}}
                for n, (_, cust, ymd, _, amount) in enumerate(rows)
            ]  # fmt: skip
            with db.write() as session:
                session.execute(insert(Buyer), [
                    {"id": b, "workspace_id": ws, "created_at": now, "first_seen_at": now, "last_seen_at": now}
                    for b in sorted(buyers)
                ])  # fmt: skip
                session.execute(insert(Event), events)
        print(f"store: {url}; wrote {copies * 2357:,} buyers and {copies * len(rows):,} orders "
              f"in {time.perf_counter() - start:.1f} s")  # fmt: skip
        print(load())
        times = []
        for _ in range(repeat):
            start = time.perf_counter()
            with db.read() as session:
                read = ltv_service.fit(session=session, workspace_id=ws, calibration_end=date(1997, 9, 30),
                                       observation_end=date(1998, 6, 30))  # fmt: skip
            times.append(time.perf_counter() - start)
        print(f"analytics.ltv.fit: best {min(times):.3f} s of {repeat} ({', '.join(f'{t:.3f}' for t in times)}); "
              f"buyers {read.buyers:,}, r={read.bgnbd.r:.4f} alpha={read.bgnbd.alpha:.4f} "
              f"a={read.bgnbd.a:.4f} b={read.bgnbd.b:.4f}")  # fmt: skip
        print(load())


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--copies", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--repeat", type=int, default=3, help="offerloop fits to time (the best is reported)")
    parser.add_argument("--skip-lifetimes", action="store_true")
    parser.add_argument(
        "--store", type=int, default=0, help="time the endpoint's work on K copies in a store"
    )
    parser.add_argument("--database-url", default=None)
    args = parser.parse_args()
    if args.store:
        store(args.store, args.database_url, args.repeat)
        return

    x, t_x, T, m = tiled(cdnow_summary(), args.copies, args.seed)
    distinct = ltv.compress(x, t_x, T)[0].shape[0]
    print(f"machine: {machine()}")
    print(f"customers: {x.shape[0]:,} ({args.copies} copies of the CDNOW sample, seed {args.seed}); "
          f"distinct (x, t_x, T): {distinct:,}; repeat customers: {int((x > 0).sum()):,}")  # fmt: skip
    print(load())

    times = []
    for _ in range(args.repeat):
        start = time.perf_counter()
        bg = ltv.fit_bgnbd(x, t_x, T)
        mid = time.perf_counter()
        gg = ltv.fit_gamma_gamma(x, m)
        end = time.perf_counter()
        times.append((end - start, mid - start, end - mid))
    best = min(times)
    print(f"offerloop: {best[0]:.3f} s (BG/NBD {best[1]:.3f} s + Gamma-Gamma {best[2]:.3f} s; best of {args.repeat}, "
          f"all: {', '.join(f'{t[0]:.3f}' for t in times)})")  # fmt: skip
    print(f"  BG/NBD r={bg.r:.6f} alpha={bg.alpha:.6f} a={bg.a:.6f} b={bg.b:.6f} LL={bg.log_likelihood:.2f}")
    print(f"  Gamma-Gamma p={gg.p:.6f} q={gg.q:.6f} v={gg.v:.6f} LL={gg.log_likelihood:.2f}")
    print(load())
    if args.skip_lifetimes:
        return

    import pandas as pd
    from lifetimes import BetaGeoFitter, GammaGammaFitter

    warnings.simplefilter("ignore")
    repeat = x > 0
    start = time.perf_counter()
    lbg = BetaGeoFitter().fit(pd.Series(x), pd.Series(t_x), pd.Series(T))
    mid = time.perf_counter()
    lgg = GammaGammaFitter().fit(pd.Series(x[repeat]), pd.Series(m[repeat]))
    end = time.perf_counter()
    print(
        f"lifetimes: {end - start:.3f} s (BetaGeoFitter {mid - start:.3f} s + GammaGammaFitter {end - mid:.3f} s)"
    )
    p = lbg.params_
    q = lgg.params_
    print(f"  BG/NBD r={p['r']:.6f} alpha={p['alpha']:.6f} a={p['a']:.6f} b={p['b']:.6f} "
          f"LL={ltv.bgnbd_log_likelihood(ltv.BGNBDParams(p['r'], p['alpha'], p['a'], p['b']), x, t_x, T):.2f}")  # fmt: skip
    print(f"  Gamma-Gamma p={q['p']:.6f} q={q['q']:.6f} v={q['v']:.6f} "
          f"LL={ltv.gamma_gamma_log_likelihood(ltv.GammaGammaParams(q['p'], q['q'], q['v']), x, m):.2f}")  # fmt: skip
    print(f"speed-up: {(end - start) / best[0]:.1f}x")
    print(load())


if __name__ == "__main__":
    main()
