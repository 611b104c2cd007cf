"""Intervals that respect the reward bounds and do not collapse when nothing matched (issue 9, item 10)."""

from __future__ import annotations

import math
from statistics import NormalDist

import numpy as np
import pytest

from offerloop.ml import estimators
from offerloop.ml.estimators import LoggedDecision, evaluate_all, ips, snips

Z95 = NormalDist().inv_cdf(0.975)


def _approx(x: float) -> object:
    return pytest.approx(x, rel=1e-12, abs=1e-12)


def _sparse_log(n: int, matched_rewards: int, seed: int) -> list[LoggedDecision]:
    """Uniform logging over 4 actions; the target always plays action 0; ``matched_rewards`` of the
    decisions that showed action 0 were rewarded (and a few others were, which the target never sees)."""
    rng = np.random.default_rng(seed)
    shown = rng.integers(0, 4, size=n)
    hits = set(np.flatnonzero(shown == 0)[:matched_rewards].tolist())
    others = set(np.flatnonzero(shown != 0)[:5].tolist())
    return [
        LoggedDecision(
            reward=1.0 if i in hits or i in others else 0.0,
            propensity=0.25,
            target_prob=1.0 if a == 0 else 0.0,
        )
        for i, a in enumerate(shown)
    ]


def test_no_matched_success_does_not_collapse_to_zero() -> None:
    log = _sparse_log(400, matched_rewards=0, seed=3)
    for est in evaluate_all(log).values():
        # normal approximation: value 0, stderr 0 -> [0, 0], as if the log proved the policy worth nothing
        assert est.value == 0.0
        assert est.ci_low == 0.0
        assert est.ci_high > 0.0
    # SNIPS: Wilson on ESS (exactly the ~100 decisions that showed action 0): upper end z^2 / (n + z^2)
    est = snips(log)
    n = sum(1 for d in log if d.target_prob == 1.0)
    assert est.effective_sample_size == _approx(n)
    assert est.ci_high == _approx(Z95**2 / (n + Z95**2))


def test_sparse_rewards_interval_stays_inside_the_reward_range() -> None:
    log = _sparse_log(400, matched_rewards=2, seed=4)
    for est in evaluate_all(log).values():
        assert est.value - Z95 * est.stderr < 0.0  # the normal interval would go below 0 here
        assert 0.0 <= est.ci_low <= est.ci_high <= 1.0
        assert est.ci_low < 0.02 < est.ci_high


def test_empirical_bernstein_hand_computation() -> None:
    terms = np.array([0.0, 1.0] * 500, dtype=np.float64)  # mean 0.5, sample variance 1000 / (4 * 999)
    low, high = estimators.empirical_bernstein_interval(terms, 1.0, level=0.95, bounds=(0.0, 1.0))
    log_term = math.log(80.0)
    half = math.sqrt(2 * (250 / 999) * log_term / 1000) + 7 * log_term / (3 * 999)
    assert (low, high) == (_approx(0.5 - half), _approx(0.5 + half))
    # fewer than two terms: the bounds
    assert estimators.empirical_bernstein_interval(terms[:1], 1.0, bounds=(0.0, 3.0)) == (0.0, 3.0)


def test_wilson_edges() -> None:
    assert estimators.wilson_interval(0.0, 100) == (0.0, _approx(Z95**2 / (100 + Z95**2)))
    low, high = estimators.wilson_interval(1.0, 100)
    assert (low, high) == (_approx(100 / (100 + Z95**2)), 1.0)
    assert estimators.wilson_interval(0.3, 0.0) == (0.0, 1.0)


def test_reward_range_is_honoured_and_checked() -> None:
    log = [LoggedDecision(reward=r, propensity=0.5, target_prob=1.0) for r in (0.0, 2.0, 4.0, 0.0)]
    est = snips(log)  # default range (0, max(1, 4)) = (0, 4)
    assert 0.0 <= est.ci_low < est.value == 1.5 < est.ci_high <= 4.0
    with pytest.raises(ValueError, match="outside reward_range"):
        ips(log, reward_range=(0.0, 1.0))
    with pytest.raises(ValueError, match="low < high"):
        ips(log, reward_range=(1.0, 1.0))


def test_difference_interval_newcombe() -> None:
    diff, low, high = estimators.difference_interval((0.5, 100), (0.3, 100))
    l1, u1 = estimators.wilson_interval(0.5, 100)
    l2, u2 = estimators.wilson_interval(0.3, 100)
    assert diff == _approx(0.2)
    assert low == _approx(0.2 - math.hypot(0.5 - l1, u2 - 0.3))
    assert high == _approx(0.2 + math.hypot(u1 - 0.5, 0.3 - l2))
    assert 0.0 < low < high
    # neither group had a success: no evidence either way, and not a [0, 0] interval
    diff, low, high = estimators.difference_interval((0.0, 40), (0.0, 40))
    assert diff == 0.0
    assert low == _approx(-(Z95**2) / (40 + Z95**2))
    assert high == _approx(Z95**2 / (40 + Z95**2))
    # amounts: rescaled by the range and back
    diff, low, high = estimators.difference_interval((5.0, 100), (3.0, 100), reward_range=(0.0, 10.0))
    assert (diff, low, high) == (_approx(2.0), _approx(10 * (0.2 - math.hypot(0.5 - l1, u2 - 0.3))),
                                 _approx(10 * (0.2 + math.hypot(u1 - 0.5, 0.3 - l2))))  # fmt: skip


def test_coverage_on_sparse_rewards_beats_the_normal_interval() -> None:
    """Seeded simulation: the target's true value is 0.01 (sparse). The bounded intervals cover it about as
    often as they claim; the normal interval (which collapses on zero successes) covers it 60 % of the time."""
    rng = np.random.default_rng(9)
    covered = {"ips": 0, "snips": 0, "dr": 0}
    normal_covered = 0
    reps, n = 300, 400
    for _ in range(reps):
        shown = rng.integers(0, 4, size=n)
        rewards = (rng.random(n) < np.where(shown == 0, 0.01, 0.05)).astype(float)
        log = [
            LoggedDecision(reward=float(r), propensity=0.25, target_prob=1.0 if a == 0 else 0.0)
            for a, r in zip(shown, rewards, strict=True)
        ]
        for name, est in evaluate_all(log).items():
            covered[name] += est.ci_low <= 0.01 <= est.ci_high
        s = snips(log)
        normal_covered += s.value - Z95 * s.stderr <= 0.01 <= s.value + Z95 * s.stderr
    # Empirical Bernstein is a finite-sample bound; Wilson on the ESS is approximate (measured 281/300).
    assert covered == {"ips": 300, "snips": 281, "dr": 300}
    assert normal_covered == 180  # ~100 matched decisions at 1 %: a third have no success at all
