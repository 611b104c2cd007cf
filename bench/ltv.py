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


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--copies", type=int, default=1000)
    parser.add_argument("--seed", type=int, default=7)
    parser.add_argument("--repeat", type=int, default=3, help="offerloop fits to time (the best is reported)")
    parser.add_argument("--skip-lifetimes", action="store_true")
    args = parser.parse_args()

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
