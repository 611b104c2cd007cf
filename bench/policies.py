"""Latency / throughput of the next-best-action policies: ``python bench/policies.py``.

Workload: 50 candidate actions with 8 features each (6 numeric, 1 categorical, 1 bool) and a context of
20 features (13 numeric, 4 categorical, 1 bool, 2 ``persona*``), the product's decision shape. Each
policy is first trained on ``--warmup`` rewards, then timed on ``rank`` (one call = one decision, p50 /
p99 / mean) and on ``learn_one`` (rewards per second). For the VW policy the rank time is also split
into building the VW text, VW's own parse + predict, and the rest (pmf / score read-out, ranking).
"""

from __future__ import annotations

import argparse
import random
import statistics
import time
from collections.abc import Callable, Sequence

from _common import machine

from offerloop.ml.base import Action, Features, Policy
from offerloop.ml.policies import (
    EpsilonGreedyPolicy,
    LinUCBPolicy,
    PopularityPolicy,
    RandomPolicy,
    RulesOnlyPolicy,
    VWContextualBandit,
    _vw_predict,
    _vw_text,
)

Event = tuple[Features, list[Action], int, float, float]


def make_actions(rng: random.Random, n: int = 50) -> list[Action]:
    kinds = ["lesson", "offer", "coaching_slot", "bundle"]
    return [
        Action(
            f"action-{j}",
            {
                **{f"a_num{i}": round(rng.random(), 4) for i in range(6)},
                "kind": rng.choice(kinds),
                "paid": rng.random() < 0.5,
            },
        )
        for j in range(n)
    ]


def make_context(rng: random.Random) -> Features:
    context: dict[str, float | int | str | bool] = {
        f"u_num{i}": round(rng.random() * 10, 3) for i in range(13)
    }
    context["country"] = rng.choice(["US", "FR", "DE", "BR", "IN"])
    context["channel"] = rng.choice(["organic", "ads", "referral"])
    context["device"] = rng.choice(["ios", "android", "web"])
    context["plan"] = rng.choice(["free", "pro"])
    context["is_member"] = rng.random() < 0.5
    context["persona"] = rng.choice(["hobbyist", "pro", "student", "lurker"])
    context["persona_confidence"] = round(rng.random(), 3)
    return context


def make_events(seed: int, n: int, actions: list[Action]) -> list[Event]:
    rng = random.Random(seed)
    return [
        (
            make_context(rng),
            actions,
            rng.randrange(len(actions)),
            1.0 / len(actions),
            float(rng.random() < 0.1),
        )
        for _ in range(n)
    ]


def _timed(fn: Callable[[], object], repeat: int) -> list[float]:
    out = []
    for _ in range(repeat):
        t0 = time.perf_counter_ns()
        fn()
        out.append((time.perf_counter_ns() - t0) / 1e6)
    return out


def _percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def bench(policy: Policy, warmup: int, calls: int, seed: int = 0) -> dict[str, float]:
    actions = make_actions(random.Random(seed))
    for event in make_events(seed + 1, warmup, actions):
        policy.learn_one(*event)
    contexts = [e[0] for e in make_events(seed + 2, calls, actions)]
    it = iter(contexts)
    rank_ms = _timed(lambda: policy.rank(next(it), actions), calls)
    learn_events = make_events(seed + 3, calls, actions)
    t0 = time.perf_counter()
    for event in learn_events:
        policy.learn_one(*event)
    learn_s = time.perf_counter() - t0
    result = {
        "rank_p50_ms": _percentile(rank_ms, 0.5),
        "rank_p99_ms": _percentile(rank_ms, 0.99),
        "rank_mean_ms": statistics.fmean(rank_ms),
        "learn_per_s": calls / learn_s,
    }
    if isinstance(policy, VWContextualBandit):
        context = contexts[0]
        text = _vw_text(context, actions, None)
        result["vw_text_ms"] = statistics.median(_timed(lambda: _vw_text(context, actions, None), calls))
        result["vw_parse_predict_ms"] = statistics.median(
            _timed(lambda: _vw_predict(policy._workspace, text, len(actions)), calls)
        )
        lines = text.split("\n")
        result["pyvw_public_predict_ms"] = statistics.median(
            _timed(lambda: policy._workspace.predict(lines), min(calls, 500))
        )
    return result


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    print(f"machine: {machine()}")
    parser.add_argument("--warmup", type=int, default=2000)
    parser.add_argument("--calls", type=int, default=2000)
    args = parser.parse_args(argv)
    policies: list[Policy] = [
        VWContextualBandit(exploration="epsilon"),
        VWContextualBandit(exploration="squarecb"),
        VWContextualBandit(exploration="softmax", softmax_lambda=10.0),
        VWContextualBandit(exploration="bag", bag=5),
        VWContextualBandit(exploration="cover", cover=5),
        LinUCBPolicy(),
        EpsilonGreedyPolicy(),
        PopularityPolicy(),
        RandomPolicy(),
        RulesOnlyPolicy(),
    ]
    for policy in policies:
        result = bench(policy, args.warmup, args.calls)
        print(f"{policy.name:16s} " + "  ".join(f"{k}={v:.3f}" for k, v in result.items()), flush=True)


if __name__ == "__main__":
    main()
