"""Regret of the next-best-action policies on the seeded simulator (``offerloop.sim.environment``).

    python bench/regret.py                  # 50,000 rounds
    python bench/regret.py --rounds 5000
    python bench/regret.py --only linucb vw_epsilon   # a subset, by policy name

Every policy plays the same stream (a fresh ``Environment`` with the same seed per policy): 2,000
buyers of the synthetic audience, the 40-item demo catalog, 20 eligible items a round, persona
signals with noise 0.1. It shows one item a round, sampled from its pmf, and learns from the reward.
Regret is measured against the expected reward of each round's best eligible item.
"""

from __future__ import annotations

import argparse
import importlib
import os
import platform
import sys
from pathlib import Path
from typing import Any

from offerloop.sim.environment import Environment, RunResult, compare, demo_catalog


def machine() -> str:
    cpu = platform.processor() or "unknown cpu"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"{cpu}, {os.cpu_count()} cores, {platform.system()} {platform.release()}, Python {platform.python_version()}"


def build_policies() -> list[Any]:
    try:
        policies = importlib.import_module("offerloop.ml.policies")
    except ImportError as exc:
        sys.exit(
            f"bench/regret.py: cannot import offerloop.ml.policies ({exc}); the policies are needed to run."
        )
    try:
        return [
            policies.VWContextualBandit(exploration="epsilon", epsilon=0.1, seed=0),
            policies.RandomPolicy(seed=0),
            policies.PopularityPolicy(seed=0),
            policies.RulesOnlyPolicy(),
            policies.EpsilonGreedyPolicy(epsilon=0.1, seed=0),
            policies.LinUCBPolicy(alpha=1.0, seed=0),
        ]
    except (AttributeError, TypeError) as exc:
        sys.exit(f"bench/regret.py: offerloop.ml.policies does not provide the expected policies ({exc}).")


def table(results: list[RunResult]) -> str:
    rows = [
        "| policy | total reward | cumulative regret | regret / 1k rounds (last 10k) | time (s) | in policy (s) |",
        "|---|---:|---:|---:|---:|---:|",
    ]
    for r in results:
        rows.append(
            f"| {r.policy} | {r.total_reward:,.1f} | {r.cumulative_regret:,.1f} | {r.regret_per_1k(10_000):.2f} "
            f"| {r.seconds:.1f} | {r.policy_seconds:.1f} |"
        )
    return "\n".join(rows)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--rounds", type=int, default=50_000)
    parser.add_argument("--seed", type=int, default=0, help="environment, catalog and sampling seed")
    parser.add_argument("--catalog", type=int, default=40, help="demo catalog size (1..200)")
    parser.add_argument("--candidates", type=int, default=20, help="eligible items per round")
    parser.add_argument("--noise", type=float, default=0.1, help="noise of the persona signals")
    parser.add_argument("--only", nargs="+", metavar="NAME", help="run only the policies of these names")
    args = parser.parse_args()

    policies = [p for p in build_policies() if not args.only or p.name in args.only]
    catalog = demo_catalog(args.catalog, seed=args.seed)

    def env_factory() -> Environment:
        return Environment(catalog=catalog, seed=args.seed, candidates=args.candidates, noise=args.noise)

    results = compare(policies, env_factory, rounds=args.rounds, seed=args.seed)
    env = env_factory()
    best_total = sum(max(env.expected_rewards(env.next_round())) for _ in range(args.rounds))

    print(
        f"Regret over {args.rounds:,} rounds: {args.catalog}-item catalog, {args.candidates} candidates a round, "
        f"noise {args.noise}, seed {args.seed}; expected reward of always showing the best item: {best_total:,.1f}"
    )
    print()
    print(table(results))
    print()
    print(f"Machine: {machine()}")


if __name__ == "__main__":
    main()
