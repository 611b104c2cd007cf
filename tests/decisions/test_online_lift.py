"""The online lift claims only what the data support (issue 9, item 10)."""

from __future__ import annotations

import random

from offerloop.cli.common import lift_lines
from offerloop.decisions import evaluation
from offerloop.ml.base import Action
from offerloop.ml.estimators import difference_interval

ACTIONS = [Action(id="a0", features={}), Action(id="a1", features={})]


def _row(policy: str, persona: str, reward: float, version: int = 1) -> evaluation.LoggedRow:
    return evaluation.LoggedRow(
        context={}, actions=ACTIONS, chosen=0, propensity=1.0, reward=reward, policy=policy,
        holdout=policy == "rules", persona=persona, model_version=version if policy == "model" else 0,
    )  # fmt: skip


def _group(policy: str, persona: str, n: int, successes: int, version: int = 1) -> list[evaluation.LoggedRow]:
    return [_row(policy, persona, 1.0 if i < successes else 0.0, version) for i in range(n)]


def test_significant_small_and_inconclusive_groups():
    rows = (
        # a large persona with a real difference: 120/400 vs 20/200
        _group("model", "big", 400, 120) + _group("rules", "big", 200, 20)
        # the demo's case: a persona with 40 model buyers and 5 in the holdout
        + _group("model", "small", 40, 30) + _group("rules", "small", 5, 0)
        # enough buyers, no difference: 20/100 vs 10/50
        + _group("model", "flat", 100, 20) + _group("rules", "flat", 50, 10)
        # nobody converted in either group: not a [0, 0] interval, and no claim
        + _group("model", "none", 60, 0) + _group("rules", "none", 40, 0)
        # cold start (model_version 0) is uniform exploration, not the model: left out
        + _group("model", "cold", 50, 50, version=0) + _group("rules", "cold", 50, 0)
    )  # fmt: skip
    random.Random(1).shuffle(rows)
    online = evaluation.online_lift(rows)
    big, small, flat, none, cold = (online["by_persona"][p] for p in ("big", "small", "flat", "none", "cold"))

    assert big["verdict"] == "significant"
    # five personas at once: each at the Bonferroni level 1 - 0.05 / 5
    assert online["persona_level"] == 1 - 0.05 / 5
    diff, low, high = difference_interval((0.3, 400), (0.1, 200), level=1 - 0.05 / 5)
    assert (big["lift"], big["ci_low"], big["ci_high"]) == (diff, low, high)
    assert 0.0 < big["ci_low"] < 0.2 < big["ci_high"]

    assert (small["verdict"], small["lift"], small["model_n"], small["holdout_n"]) == (
        "not enough data",
        None,
        40,
        5,
    )
    assert small["reason"] == "fewer than 30 decisions in a group"

    assert flat["verdict"] == "not enough data"
    assert flat["ci_low"] < 0.0 < flat["ci_high"]
    assert flat["reason"] == "the 99% interval (Bonferroni over 5 personas) includes 0"

    assert none["verdict"] == "not enough data"
    assert none["ci_low"] < 0.0 < none["ci_high"]  # the normal interval would be [0, 0]

    assert (cold["model_n"], cold["verdict"]) == (0, "not enough data")
    overall = online["overall"]
    assert overall["model_n"] == 400 + 40 + 100 + 60
    assert overall["reason"] == "the 95% interval excludes 0"
    assert online["min_group"] == 30

    lines = dict(zip(["overall", "big", "cold", "flat", "none", "small"], lift_lines(online), strict=True))
    assert lines["big"].endswith("SIGNIFICANT")
    assert "lift +0.2000" in lines["big"]
    assert lines["small"].strip() == (
        "small                        model n=40, holdout n=5: not enough data (fewer than 30 decisions in a group)"
    )
    for name in ("flat", "none", "cold", "small"):
        assert "not enough data" in lines[name]
        assert (
            "lift" not in lines[name] and "SIGNIFICANT" not in lines[name]
        )  # no point estimate as a finding


def test_amount_rewards_use_their_range():
    # rewards are order totals / 100: 0 or 4.0; the interval is on that scale and stays within +/- 4
    rows = _group("model", "p", 100, 0) + _group("rules", "p", 100, 0)
    rows += [_row("model", "p", 4.0) for _ in range(30)] + [_row("rules", "p", 4.0) for _ in range(5)]
    online = evaluation.online_lift(rows)
    row = online["overall"]
    assert row["lift"] == 4.0 * 30 / 130 - 4.0 * 5 / 105
    assert -4.0 <= row["ci_low"] < row["lift"] < row["ci_high"] <= 4.0
