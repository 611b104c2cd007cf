"""Issue 9 item 11: the reward a policy reports is a calibrated estimate, and LinUCB's exploration scales
with the rewards.

A seeded sparse stream (true success rates 0.3-0.6%, :class:`offerloop.sim.sparse.SparseStream`) is
played on-policy; the ground truth is known, so calibration is checked against the true rates.
"""

from __future__ import annotations

import json
import math
import random
from typing import Any

import pytest

from offerloop.ml.base import Scored, load_policy, sample
from offerloop.ml.calibration import RewardCalibrator
from offerloop.ml.policies import LinUCBPolicy, VWContextualBandit
from offerloop.sim.sparse import SparseStream

RATES = [[0.003, 0.006, 0.0045]]  # per action; what a click-rate catalog looks like
ROUNDS = 30_000


def _play(policy: Any, stream: SparseStream, rounds: int, rng: random.Random) -> list[float]:
    rewards = []
    for _ in range(rounds):
        rnd = stream.next_round()
        shown = sample(policy.rank(rnd.context, rnd.actions), rng)
        reward = stream.reward(rnd, shown.index)
        policy.learn_one(rnd.context, rnd.actions, shown.index, shown.probability, reward)
        rewards.append(reward)
    return rewards


def _held_out(policy: Any, stream: SparseStream, rounds: int) -> tuple[list[Scored], list[float]]:
    ranked: list[Scored] = []
    truth: list[float] = []
    for _ in range(rounds):
        rnd = stream.next_round()
        for scored in policy.rank(rnd.context, rnd.actions):
            ranked.append(scored)
            truth.append(rnd.rates[scored.index])
    return ranked, truth


@pytest.fixture(scope="module", params=["vw", "linucb"])
def trained(request: pytest.FixtureRequest) -> tuple[Any, SparseStream, float]:
    policy: Any = (
        VWContextualBandit(exploration="epsilon", epsilon=0.1, seed=0)
        if request.param == "vw"
        else LinUCBPolicy(alpha=1.0)
    )
    stream = SparseStream(seed=0, rates=RATES)
    rewards = _play(policy, stream, ROUNDS, random.Random(1))
    return policy, stream, sum(rewards) / len(rewards)


def test_expected_reward_is_calibrated_on_sparse_rewards(trained: tuple[Any, SparseStream, float]) -> None:
    policy, stream, base_rate = trained
    assert 0.003 <= base_rate <= 0.006
    ranked, truth = _held_out(policy, stream, 2_000)
    expected = [s.expected_reward for s in ranked]
    assert all(e is not None and 0.0 <= e <= 1.0 for e in expected)
    values = [float(e) for e in expected if e is not None]
    mean_true = sum(truth) / len(truth)
    # the mean estimate is the rate, not the -0.03 the raw VW regressor predicts
    assert abs(sum(values) / len(values) - mean_true) <= 0.001
    # and it carries information: closer to the true rates than the constant base rate is
    error = sum((e - t) ** 2 for e, t in zip(values, truth, strict=True)) / len(truth)
    constant = sum((base_rate - t) ** 2 for t in truth) / len(truth)
    assert error < 0.9 * constant


def test_ranking_score_is_not_the_estimate(trained: tuple[Any, SparseStream, float]) -> None:
    """The ranking score is kept (it drives the order); expected_reward is a separate field."""
    policy, stream, _ = trained
    rnd = stream.next_round()
    ranked = policy.rank(rnd.context, rnd.actions)
    assert [s.score for s in ranked] == sorted((s.score for s in ranked), reverse=True)
    assert any(s.score != s.expected_reward for s in ranked)


def test_no_estimate_before_any_reward() -> None:
    stream = SparseStream(seed=0, rates=RATES)
    rnd = stream.next_round()
    for policy in (VWContextualBandit(seed=0), LinUCBPolicy()):
        assert [s.expected_reward for s in policy.rank(rnd.context, rnd.actions)] == [None] * 3


def test_linucb_bonus_scales_with_the_reward_rate(trained: tuple[Any, SparseStream, float]) -> None:
    policy, stream, base_rate = trained
    if not isinstance(policy, LinUCBPolicy):
        pytest.skip("LinUCB only")
    ratios = []
    for _ in range(200):
        rnd = stream.next_round()
        parts = policy.decompose(rnd.context, rnd.actions)
        ratios.append(sum(bonus for _, bonus in parts) / len(parts) / base_rate)
        ranked = policy.rank(rnd.context, rnd.actions)
        assert [s.score for s in ranked] == sorted((m + b for m, b in parts), reverse=True)
    # after 30k rounds at a 0.5% rate the bonus no longer dominates the estimated mean (unscaled: ~13x)
    assert sum(ratios) / len(ratios) < 1.0
    sigma = math.sqrt(base_rate * (1 - base_rate))
    assert policy.exploration_scale() == pytest.approx(sigma, rel=0.01)


def test_linucb_exploration_before_data_is_unscaled() -> None:
    """No reward seen: sigma is its prior 1, so alpha is the classic LinUCB width multiplier."""
    policy = LinUCBPolicy(alpha=0.7)
    assert policy.exploration_scale() == pytest.approx(0.7)


def _strip_calibrator(payload: dict[str, Any]) -> dict[str, Any]:
    old = json.loads(json.dumps(payload))
    del old["state"]["calibrator"]  # the payload as saved before calibration existed
    return old


@pytest.mark.parametrize("kind", ["vw", "linucb"])
def test_snapshots_round_trip_and_old_snapshots_load(kind: str) -> None:
    policy: Any = VWContextualBandit(seed=0) if kind == "vw" else LinUCBPolicy()
    stream = SparseStream(seed=3, rates=[[0.2, 0.5, 0.35]])
    _play(policy, stream, 300, random.Random(2))
    rnd = stream.next_round()
    payload = json.loads(json.dumps(policy.to_payload()))
    assert load_policy(payload).rank(rnd.context, rnd.actions) == policy.rank(rnd.context, rnd.actions)

    old = load_policy(_strip_calibrator(payload))
    ranked_old = old.rank(rnd.context, rnd.actions)
    assert [s.expected_reward for s in ranked_old] == [None] * 3
    if kind == "vw":  # same model: same order and scores
        assert [(s.index, s.score) for s in ranked_old] == [
            (s.index, s.score) for s in policy.rank(rnd.context, rnd.actions)
        ]
    # an old snapshot keeps learning and starts estimating
    _play(old, stream, 50, random.Random(4))
    assert all(s.expected_reward is not None for s in old.rank(rnd.context, rnd.actions))


def test_calibrator_is_monotone_and_clipped() -> None:
    calibrator = RewardCalibrator()
    rng = random.Random(0)
    for _ in range(5_000):  # reward falls as the raw score rises: a negative slope is refused
        raw = rng.random()
        calibrator.update(raw, "a", 1.0 if rng.random() < 0.5 * (1 - raw) else 0.0)
    _, _, _, slope_raw, slope_q = calibrator.coefficients()
    assert slope_raw == 0.0 and slope_q == 0.0
    assert calibrator.predict([-5.0, 0.0, 5.0], ["a", "a", "b"]) == [calibrator.base_rate] * 3
    up = RewardCalibrator()
    for _ in range(5_000):
        raw = rng.random()
        up.update(raw, "a", 1.0 if rng.random() < raw else 0.0)
    low, mid, high = up.predict([-100.0, 0.5, 100.0], ["a", "a", "a"])
    assert low == 0.0 and high == 1.0 and mid == pytest.approx(0.5, abs=0.03)
    assert RewardCalibrator.from_state(up.to_state()).predict([0.3], ["a"]) == up.predict([0.3], ["a"])
