"""Markov and heuristic attribution on 10,000 distinct synthetic paths: offerloop vs ChannelAttribution.

    python bench/attribution.py [--paths 10000] [--seed 0] [--repeat 5] [--converge 1e7] [--append]

Both run on the same paths in the same process. offerloop solves the absorbing chain exactly; ChannelAttribution
(the `bench` extra) simulates walks, so its seed-0 Markov result is compared per channel with the exact one.
Timings are the median of ``--repeat`` runs, from the path strings (split, count, solve) for both.
``--append`` adds the printed section to bench/RESULTS.md.
"""

from __future__ import annotations

import argparse
import contextlib
import io
import statistics
import sys
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import load_average, machine

from offerloop.attribution.models import PathSet, attribute, heuristic, markov

ROOT = Path(__file__).resolve().parent.parent
CHANNELS = ("facebook", "instagram", "tiktok", "youtube", "google", "email", "push", "in_app", "referral",
            "direct", "podcast", "affiliate")  # fmt: skip


def synthetic(n: int, seed: int) -> tuple[list[str], np.ndarray, np.ndarray, np.ndarray]:
    """``n`` distinct paths ("a > b > c"), each walked 1 + Poisson(4) times; a walk converts with a probability
    that grows with the channels it touched (each channel has its own lift)."""
    rng = np.random.default_rng(seed)
    k = len(CHANNELS)
    start = rng.dirichlet(np.ones(k))
    lift = rng.uniform(0.0, 0.5, size=k)
    seen: dict[str, None] = {}
    rows: list[tuple[str, float]] = []
    while len(rows) < n:
        length = 1 + int(rng.geometric(0.3))
        path = [int(rng.choice(k, p=start))]
        path += [int(c) for c in rng.integers(0, k, size=length - 1)]
        text = " > ".join(CHANNELS[c] for c in path)
        if text in seen:
            continue
        seen[text] = None
        p = 1.0 - np.exp(-0.15 - lift[sorted(set(path))].sum())
        rows.append((text, float(min(p, 0.95))))
    walks = 1 + rng.poisson(4, size=n)
    conv = rng.binomial(walks, [p for _, p in rows])
    value = conv * rng.choice([19.0, 49.0, 99.0, 249.0], size=n)
    return [t for t, _ in rows], conv.astype(float), value, (walks - conv).astype(float)


def _timed(fn: Callable[[], Any], repeat: int) -> tuple[float, Any]:
    result = fn()  # warm-up (imports, allocator, caches)
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - t0)
    return statistics.median(times), result


def _quiet(fn: Callable[[], Any]) -> Callable[[], Any]:
    """ChannelAttribution prints banners on every call: kept off the report."""

    def run() -> Any:
        with contextlib.redirect_stdout(io.StringIO()):
            return fn()

    return run


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--paths", type=int, default=10_000)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument(
        "--converge", type=float, default=0, help="also run ChannelAttribution with this many walks"
    )
    parser.add_argument("--append", action="store_true", help="append the section to bench/RESULTS.md")
    args = parser.parse_args(argv)
    try:
        import pandas as pd
        from ChannelAttribution import heuristic_models, markov_model
    except ImportError:
        print("ChannelAttribution is not installed: pip install -e '.[bench]'", file=sys.stderr)
        return 2

    texts, conv, value, nulls = synthetic(args.paths, args.seed)
    df = pd.DataFrame({"path": texts, "conv": conv, "value": value, "null": nulls})

    def ours_from_strings(model: str) -> Callable[[], Any]:
        def run() -> Any:
            ps = PathSet.from_strings(texts, ">", conv, value, nulls)
            return (
                markov(ps) if model == "markov" else [heuristic(ps, m) for m in ("first", "last", "linear")]
            )

        return run

    ours_markov_s, ours_m = _timed(ours_from_strings("markov"), args.repeat)
    ours_heur_s, ours_h = _timed(ours_from_strings("heuristics"), args.repeat)
    ps = PathSet.from_strings(texts, ">", conv, value, nulls)
    solve_only_s, _ = _timed(lambda: markov(ps), args.repeat)
    others = {
        m: _timed(lambda m=m: attribute(ps, m), args.repeat)[0] for m in ("time_decay", "position", "shapley")
    }
    ca_markov_s, ca_m = _timed(
        _quiet(lambda: markov_model(df, "path", "conv", var_value="value", var_null="null", order=1, sep=">",
                                    seed=0, verbose=False, flg_pro=False)), args.repeat)  # fmt: skip
    ca_heur_s, ca_h = _timed(
        _quiet(lambda: heuristic_models(df, "path", "conv", var_value="value", sep=">", flg_pro=False)),
        args.repeat,
    )

    ca_m = ca_m.set_index("channel_name")
    rel_conv = {
        c: abs(ca_m.loc[c, "total_conversions"] - x) / x
        for c, x in zip(ours_m.channels, ours_m.conversions, strict=True)
    }
    rel_val = {
        c: abs(ca_m.loc[c, "total_conversion_value"] - x) / x
        for c, x in zip(ours_m.channels, ours_m.values, strict=True)
    }
    ca_h = ca_h.set_index("channel_name")
    heur_diff = 0.0
    for result, col in zip(ours_h, ("first_touch", "last_touch", "linear_touch"), strict=True):
        for c, x, v in zip(result.channels, result.conversions, result.values, strict=True):
            heur_diff = max(
                heur_diff, abs(ca_h.loc[c, f"{col}_conversions"] - x), abs(ca_h.loc[c, f"{col}_value"] - v)
            )
    worst = max(rel_conv, key=lambda c: rel_conv[c])
    converged = ""
    if args.converge:
        t0 = time.perf_counter()
        big = _quiet(lambda: markov_model(df, "path", "conv", var_value="value", var_null="null", order=1, sep=">",
                                          seed=0, nsim_start=args.converge, verbose=False, flg_pro=False))()  # fmt: skip
        big_s = time.perf_counter() - t0
        big = big.set_index("channel_name")
        far = max(
            abs(big.loc[c, "total_conversions"] - x) / x
            for c, x in zip(ours_m.channels, ours_m.conversions, strict=True)
        )
        converged = (
            f"- With {args.converge:,.0f} simulated walks ({big_s:.1f} s) ChannelAttribution comes to within "
            f"{far:.2%} of the exact solution on every channel."
        )

    when = datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC")
    lines = [
        "",
        f"## Issue 13 — attribution: exact Markov vs ChannelAttribution ({when})",
        "",
        f"`python bench/attribution.py --paths {args.paths} --seed {args.seed} --repeat {args.repeat}"
        f"{f' --converge {args.converge:.0e}' if args.converge else ''}` — "
        f"{args.paths:,} distinct synthetic paths ({len(CHANNELS)} channels, {int(conv.sum()):,} conversions, "
        f"{int(nulls.sum()):,} null walks), median of {args.repeat} runs after a warm-up, both in one process.",
        f"Machine: {machine()}; load average {load_average()} (a machine shared with other helpers' tests).",
        "",
        "| | offerloop | ChannelAttribution 2.2.5 |",
        "|---|---:|---:|",
        f"| Markov order 1, from the path strings | **{ours_markov_s * 1000:.0f} ms** (exact) | "
        f"{ca_markov_s * 1000:.0f} ms (simulated, seed 0) |",
        f"| first + last + linear, from the path strings | **{ours_heur_s * 1000:.0f} ms** | {ca_heur_s * 1000:.0f} ms |",
        "",
        f"- offerloop Markov alone (paths already split and indexed): {solve_only_s * 1000:.1f} ms; time decay "
        f"{others['time_decay'] * 1000:.1f} ms, position {others['position'] * 1000:.1f} ms, exact Shapley "
        f"({len(CHANNELS)} channels, {2 ** len(CHANNELS):,} coalitions) {others['shapley'] * 1000:.1f} ms.",
        f"- Heuristics: largest absolute difference from ChannelAttribution over every channel, conversions and "
        f"value: {heur_diff:.2e} (identical up to float rounding).",
        f"- ChannelAttribution's seed-0 simulated Markov vs the exact solution, per channel: max relative "
        f"difference {rel_conv[worst]:.2%} in conversions ({worst}), {max(rel_val.values()):.2%} in value; "
        f"median {statistics.median(rel_conv.values()):.2%}.",
        *([converged] if converged else []),
        "",
        "| channel | exact conversions | ChannelAttribution | rel. diff | exact removal effect |",
        "|---|---:|---:|---:|---:|",
    ]
    assert ours_m.removal_effects is not None
    for c, x, r in zip(ours_m.channels, ours_m.conversions, ours_m.removal_effects, strict=True):
        lines.append(
            f"| {c} | {x:,.2f} | {ca_m.loc[c, 'total_conversions']:,.2f} | {rel_conv[c]:.2%} | {r:.4f} |"
        )
    text = "\n".join(lines) + "\n"
    print(text)
    if args.append:
        with (ROOT / "bench" / "RESULTS.md").open("a", encoding="utf-8") as f:
            f.write(text)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
