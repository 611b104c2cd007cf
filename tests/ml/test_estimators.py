"""Off-policy estimators: exact values on a hand-computed log, edge cases, and a seeded simulation."""

from __future__ import annotations

import math
from functools import partial
from statistics import NormalDist

import numpy as np
import pytest

from offerloop.ml.estimators import (
    Estimate,
    LoggedDecision,
    bootstrap_ci,
    doubly_robust,
    evaluate_all,
    ips,
    lift,
    snips,
    wilson_interval,
)

Z95 = NormalDist().inv_cdf(0.975)  # 1.959963984540054

# The hand-computed log. w = target_prob / propensity (all quotients exact in binary floating point).
#
#   i  reward  propensity  target_prob  w   w*r  predicted_chosen  predicted_target
#   0   1.0      0.5         1.0        2    2        0.5              0.5
#   1   0.0      0.25        0.5        2    0        0.25             0.5
#   2   1.0      0.5         0.0        0    0        0.75             0.5
#   3   0.0      0.4         0.4        1    0        0.5              0.25
#   4   1.0      0.25        0.75       3    3        0.5              0.75
#
# n = 5, sum w = 8, sum w^2 = 4 + 4 + 0 + 1 + 9 = 18, sum w*r = 5.
LOG = [
    # LoggedDecision(reward, propensity, target_prob, predicted_chosen, predicted_target)
    LoggedDecision(1.0, 0.5, 1.0, 0.5, 0.5),
    LoggedDecision(0.0, 0.25, 0.5, 0.25, 0.5),
    LoggedDecision(1.0, 0.5, 0.0, 0.75, 0.5),
    LoggedDecision(0.0, 0.4, 0.4, 0.5, 0.25),
    LoggedDecision(1.0, 0.25, 0.75, 0.5, 0.75),
]


def _approx(x: float) -> object:
    return pytest.approx(x, rel=1e-12, abs=1e-12)


# --- point estimates and standard errors -------------------------------------------------------------


def test_ips_value_and_stderr() -> None:
    est = ips(LOG)
    # w*r = [2, 0, 0, 0, 3]; mean = 5/5 = 1.0
    assert est.estimator == "ips"
    assert est.value == _approx(1.0)
    # deviations from 1: [1, -1, -1, -1, 2]; squares sum to 1+1+1+1+4 = 8; sample var = 8/4 = 2
    # stderr = sqrt(2) / sqrt(5) = sqrt(0.4) = 0.6324555...
    assert est.stderr == _approx(math.sqrt(0.4))
    # Empirical Bernstein with spread W (high - low) = 3 (the largest weight) on 5 decisions covers all of [0, 1].
    assert (est.ci_low, est.ci_high, est.interval) == (0.0, 1.0, "empirical-bernstein")
    assert est.n == 5


def test_snips_value_and_stderr() -> None:
    est = snips(LOG)
    # V = sum w*r / sum w = 5 / 8 = 0.625
    assert est.estimator == "snips"
    assert est.value == _approx(0.625)
    # r - V = [0.375, -0.625, 0.375, -0.625, 0.375]
    # w (r - V) = [0.75, -1.25, 0, -0.625, 1.125]
    # squares: 0.5625 + 1.5625 + 0 + 0.390625 + 1.265625 = 3.78125
    # stderr = sqrt(n/(n-1) * 3.78125) / sum w = sqrt(1.25 * 3.78125) / 8 = sqrt(4.7265625) / 8 = 0.27176...
    assert est.stderr == _approx(math.sqrt(4.7265625) / 8)
    # Wilson on Kish's ESS = 64 / 18: centre (p + z^2/2n) / (1 + z^2/n), half z/(1+z^2/n) sqrt(p(1-p)/n + z^2/4n^2)
    n, p = 64 / 18, 0.625
    centre = (p + Z95**2 / (2 * n)) / (1 + Z95**2 / n)
    half = Z95 / (1 + Z95**2 / n) * math.sqrt(p * (1 - p) / n + Z95**2 / (4 * n * n))
    assert (est.ci_low, est.ci_high) == (_approx(centre - half), _approx(centre + half))
    assert est.interval == "wilson-ess"


def test_doubly_robust_value_and_stderr() -> None:
    est = doubly_robust(LOG)
    # terms = predicted_target + w (r - predicted_chosen):
    #   0: 0.5  + 2 * (1 - 0.5)   =  1.5
    #   1: 0.5  + 2 * (0 - 0.25)  =  0.0
    #   2: 0.5  + 0 * (1 - 0.75)  =  0.5
    #   3: 0.25 + 1 * (0 - 0.5)   = -0.25
    #   4: 0.75 + 3 * (1 - 0.5)   =  2.25
    # mean = 4.0 / 5 = 0.8
    assert est.estimator == "dr"
    assert est.value == _approx(0.8)
    # deviations: [0.7, -0.8, -0.3, -1.05, 1.45]; squares: 0.49 + 0.64 + 0.09 + 1.1025 + 2.1025 = 4.425
    # sample var = 4.425 / 4 = 1.10625; stderr = sqrt(1.10625 / 5) = sqrt(0.22125) = 0.47037...
    assert est.stderr == _approx(math.sqrt(0.22125))


def test_weight_diagnostics() -> None:
    for est in evaluate_all(LOG).values():
        # ESS = (sum w)^2 / sum w^2 = 64 / 18 = 3.5555...; max w = 3
        assert est.effective_sample_size == _approx(64 / 18)
        assert est.max_weight == 3.0
        assert est.n == 5


def test_evaluate_all_matches_individual_estimators() -> None:
    results = evaluate_all(LOG, level=0.9, clip=2.5)
    assert set(results) == {"ips", "snips", "dr"}
    assert results["ips"] == ips(LOG, level=0.9, clip=2.5)
    assert results["snips"] == snips(LOG, level=0.9, clip=2.5)
    assert results["dr"] == doubly_robust(LOG, level=0.9, clip=2.5)


def test_level_sets_interval_width() -> None:
    wide, narrow = snips(LOG, level=0.95), snips(LOG, level=0.9)
    assert wide.ci_low < narrow.ci_low < 0.625 < narrow.ci_high < wide.ci_high
    z90 = NormalDist().inv_cdf(0.95)  # 1.6448536...
    centre = (0.25 + z90**2 / 200) / (1 + z90**2 / 100)
    half = z90 / (1 + z90**2 / 100) * math.sqrt(0.25 * 0.75 / 100 + z90**2 / 40_000)
    assert wilson_interval(0.25, 100, level=0.9) == (_approx(centre - half), _approx(centre + half))


# --- clipping -----------------------------------------------------------------------------------------


def test_clipping() -> None:
    est = ips(LOG, clip=2.5)
    # clipped w = [2, 2, 0, 1, 2.5]; w*r = [2, 0, 0, 0, 2.5]; mean = 4.5 / 5 = 0.9
    assert est.value == _approx(0.9)
    # deviations: [1.1, -0.9, -0.9, -0.9, 1.6]; squares: 1.21 + 0.81 * 3 + 2.56 = 6.2
    # sample var = 6.2 / 4 = 1.55; stderr = sqrt(1.55 / 5) = sqrt(0.31)
    assert est.stderr == _approx(math.sqrt(0.31))
    assert est.max_weight == 2.5
    # ESS = 7.5^2 / (4 + 4 + 0 + 1 + 6.25) = 56.25 / 15.25
    assert est.effective_sample_size == _approx(56.25 / 15.25)
    # SNIPS with clipping: 4.5 / 7.5 = 0.6
    assert snips(LOG, clip=2.5).value == _approx(0.6)
    # DR with clipping: only decision 4 changes, 0.75 + 2.5 * 0.5 = 2.0; terms sum 1.5+0+0.5-0.25+2 = 3.75
    assert doubly_robust(LOG, clip=2.5).value == _approx(0.75)


def test_clip_above_every_weight_changes_nothing() -> None:
    assert ips(LOG, clip=3.0) == ips(LOG)
    assert ips(LOG, clip=math.inf) == ips(LOG)


# --- identities between estimators -------------------------------------------------------------------


def test_snips_equals_ips_when_weights_sum_to_n() -> None:
    # w = [2, 0.5, 0.5, 1, 1], sum w = 5 = n; r = [1, 0, 1, 0.5, 0]
    # w*r = [2, 0, 0.5, 0.5, 0], sum = 3 -> IPS = 3/5 = 0.6, SNIPS = 3/5 = 0.6
    log = [
        LoggedDecision(reward=1.0, propensity=0.5, target_prob=1.0),
        LoggedDecision(reward=0.0, propensity=1.0, target_prob=0.5),
        LoggedDecision(reward=1.0, propensity=0.5, target_prob=0.25),
        LoggedDecision(reward=0.5, propensity=0.75, target_prob=0.75),
        LoggedDecision(reward=0.0, propensity=0.2, target_prob=0.2),
    ]
    assert ips(log).value == _approx(0.6)
    assert snips(log).value == _approx(0.6)


def test_snips_and_ips_coincide_entirely_when_every_weight_is_one() -> None:
    # On-policy log: w = 1 everywhere, so both are the plain mean of r = [1, 0, 1, 1] = 0.75 with the
    # standard error of the mean: sample var = (3 * 0.0625 + 0.5625) / 3 = 0.25, stderr = sqrt(0.25/4) = 0.25
    log = [LoggedDecision(reward=r, propensity=0.3, target_prob=0.3) for r in (1.0, 0.0, 1.0, 1.0)]
    a, b = ips(log), snips(log)
    assert a.value == b.value == _approx(0.75)
    assert a.stderr == _approx(0.25)
    assert b.stderr == _approx(0.25)
    assert a.effective_sample_size == _approx(4.0)


def test_dr_equals_ips_with_zero_reward_model() -> None:
    log = [LoggedDecision(reward=d.reward, propensity=d.propensity, target_prob=d.target_prob) for d in LOG]
    dr, base = doubly_robust(log), ips(log)
    assert dr.value == _approx(base.value)
    assert dr.stderr == _approx(base.stderr)
    assert dr.value == _approx(1.0)  # the IPS value of LOG, computed above


def test_dr_equals_model_estimate_with_zero_weights() -> None:
    # target_prob = 0 everywhere -> w = 0, DR terms are just predicted_target = [0.5, 0.5, 0.5, 0.25, 0.75]
    log = [
        LoggedDecision(
            reward=d.reward,
            propensity=d.propensity,
            target_prob=0.0,
            predicted_chosen=d.predicted_chosen,
            predicted_target=d.predicted_target,
        )
        for d in LOG
    ]
    est = doubly_robust(log)
    # mean = 2.5 / 5 = 0.5; deviations [0, 0, 0, -0.25, 0.25]; sample var = 0.125 / 4 = 0.03125
    # stderr = sqrt(0.03125 / 5) = sqrt(0.00625)
    assert est.value == _approx(0.5)
    assert est.stderr == _approx(math.sqrt(0.00625))
    assert est.effective_sample_size == 0.0
    assert est.max_weight == 0.0


# --- degenerate logs ----------------------------------------------------------------------------------


def test_snips_all_zero_weights_is_zero_with_infinite_stderr() -> None:
    log = [LoggedDecision(reward=1.0, propensity=0.5, target_prob=0.0) for _ in range(3)]
    est = snips(log)
    assert est.value == 0.0
    assert est.stderr == math.inf
    # the log says nothing about this policy: its interval is every value a policy can have
    assert (est.ci_low, est.ci_high) == (0.0, 1.0)
    assert est.effective_sample_size == 0.0
    assert est.max_weight == 0.0
    # IPS of the same log is a well-defined 0 with zero spread.
    assert ips(log).value == 0.0
    assert ips(log).stderr == 0.0


def test_single_decision_has_infinite_stderr() -> None:
    log = [LoggedDecision(reward=1.0, propensity=0.5, target_prob=1.0)]
    for est in evaluate_all(log).values():
        assert est.n == 1
        assert est.stderr == math.inf
        assert (est.ci_low, est.ci_high) == (0.0, 1.0)
    assert ips(log).value == 2.0
    assert snips(log).value == 1.0


# --- validation ---------------------------------------------------------------------------------------


@pytest.mark.parametrize("estimator", [ips, snips, doubly_robust, evaluate_all])
def test_empty_log_rejected(estimator: object) -> None:
    with pytest.raises(ValueError, match="log is empty"):
        estimator([])  # type: ignore[operator]


@pytest.mark.parametrize(
    ("field", "bad", "message"),
    [
        ("propensity", 0.0, r"log\[3\]: propensity must be in \(0, 1\]"),
        ("propensity", -0.1, r"log\[3\]: propensity must be in \(0, 1\]"),
        ("propensity", 1.2, r"log\[3\]: propensity must be in \(0, 1\]"),
        ("propensity", math.nan, r"log\[3\]: propensity must be in \(0, 1\]"),
        ("target_prob", -0.1, r"log\[3\]: target_prob must be in \[0, 1\]"),
        ("target_prob", 1.1, r"log\[3\]: target_prob must be in \[0, 1\]"),
        ("reward", math.nan, r"log\[3\]: reward must be finite"),
        ("predicted_chosen", math.inf, r"log\[3\]: predicted_chosen must be finite"),
        ("predicted_target", math.nan, r"log\[3\]: predicted_target must be finite"),
    ],
)
@pytest.mark.parametrize("estimator", [ips, snips, doubly_robust])
def test_invalid_decision_rejected_naming_index(
    estimator: object, field: str, bad: float, message: str
) -> None:
    fields = {"reward": 0.5, "propensity": 0.5, "target_prob": 0.5}
    fields[field] = bad
    log = [*LOG[:3], LoggedDecision(**fields), LOG[4]]
    with pytest.raises(ValueError, match=message):
        estimator(log)  # type: ignore[operator]


def test_first_invalid_index_is_reported() -> None:
    log = [LOG[0], LoggedDecision(1.0, 0.0, 0.5), LoggedDecision(1.0, 2.0, 0.5)]
    with pytest.raises(ValueError, match=r"log\[1\]"):
        ips(log)


@pytest.mark.parametrize("level", [0.0, 1.0, -0.5, 1.5, math.nan])
def test_bad_level_rejected(level: float) -> None:
    with pytest.raises(ValueError, match="level"):
        ips(LOG, level=level)
    with pytest.raises(ValueError, match="level"):
        lift(ips(LOG), snips(LOG), level=level)


@pytest.mark.parametrize("clip", [0.0, -1.0, math.nan])
def test_bad_clip_rejected(clip: float) -> None:
    with pytest.raises(ValueError, match="clip"):
        snips(LOG, clip=clip)


# --- bootstrap ----------------------------------------------------------------------------------------


def test_bootstrap_ci_is_deterministic_and_contains_point_estimate() -> None:
    first = bootstrap_ci(LOG, ips, n_boot=500, seed=7)
    assert bootstrap_ci(LOG, ips, n_boot=500, seed=7) == first
    assert bootstrap_ci(LOG, ips, n_boot=500, seed=8) != first
    low, high = first
    assert low <= 1.0 <= high  # IPS point estimate of LOG
    for estimator in (snips, doubly_robust, partial(ips, clip=2.5)):
        point = estimator(LOG).value
        lo, hi = bootstrap_ci(LOG, estimator, seed=3)
        assert lo <= point <= hi


def test_bootstrap_ci_narrows_with_level() -> None:
    lo95, hi95 = bootstrap_ci(LOG, doubly_robust, level=0.95, seed=1)
    lo50, hi50 = bootstrap_ci(LOG, doubly_robust, level=0.5, seed=1)
    assert lo95 <= lo50 <= hi50 <= hi95


def test_bootstrap_ci_collapses_on_a_constant_log() -> None:
    # Every decision identical: every resample gives exactly w*r = 2 * 0.5 = 1.0.
    log = [LoggedDecision(reward=0.5, propensity=0.5, target_prob=1.0)] * 6
    assert bootstrap_ci(log, ips, n_boot=50) == (1.0, 1.0)


def test_bootstrap_ci_validates() -> None:
    with pytest.raises(ValueError, match="log is empty"):
        bootstrap_ci([], ips)
    with pytest.raises(ValueError, match="n_boot"):
        bootstrap_ci(LOG, ips, n_boot=0)
    with pytest.raises(ValueError, match="level"):
        bootstrap_ci(LOG, ips, level=1.0)
    with pytest.raises(ValueError, match=r"log\[1\]"):
        bootstrap_ci([LOG[0], LoggedDecision(1.0, 0.0, 1.0)], ips)


# --- lift ---------------------------------------------------------------------------------------------


def _est(value: float, stderr: float) -> Estimate:
    return Estimate("ips", value, stderr, value - stderr, value + stderr, 10, 10.0, 1.0)


def test_lift_arithmetic() -> None:
    # difference = 0.8 - 0.5 = 0.3; stderr = sqrt(0.3^2 + 0.4^2) = 0.5; half-width = 1.959964 * 0.5
    diff, low, high = lift(_est(0.8, 0.3), _est(0.5, 0.4))
    assert diff == _approx(0.3)
    assert low == _approx(0.3 - Z95 * 0.5)  # -0.679982
    assert high == _approx(0.3 + Z95 * 0.5)  #  1.279982
    # At level 0.9: z = 1.6448536..., half-width = 0.5 * z = 0.8224268...
    z90 = NormalDist().inv_cdf(0.95)
    diff, low, high = lift(_est(0.8, 0.3), _est(0.5, 0.4), level=0.9)
    assert (diff, low, high) == (_approx(0.3), _approx(0.3 - 0.5 * z90), _approx(0.3 + 0.5 * z90))


def test_lift_of_estimates_from_one_log() -> None:
    # DR - SNIPS on LOG: 0.8 - 0.625 = 0.175
    diff, low, high = lift(doubly_robust(LOG), snips(LOG))
    se = math.sqrt(0.22125 + 4.7265625 / 64)
    assert diff == _approx(0.175)
    assert (low, high) == (_approx(0.175 - Z95 * se), _approx(0.175 + Z95 * se))


# --- simulation ---------------------------------------------------------------------------------------


def test_simulation_recovers_true_value_of_always_action_2() -> None:
    rng = np.random.default_rng(20240611)
    means = np.array([0.2, 0.5, 0.8])
    rounds = 20_000
    actions = rng.integers(0, 3, size=rounds)  # uniform-random logging policy over 3 actions
    rewards = (rng.random(rounds) < means[actions]).astype(float)  # Bernoulli(mean of the shown action)
    log = [
        LoggedDecision(
            reward=float(r),
            propensity=1 / 3,
            target_prob=1.0 if a == 2 else 0.0,  # target: always action 2
            predicted_chosen=float(means[a]),  # reward model = the true means
            predicted_target=0.8,  # E_{a ~ target}[model(a)] = model(2)
        )
        for a, r in zip(actions, rewards, strict=True)
    ]
    results = evaluate_all(log)
    for est in results.values():
        assert est.n == rounds
        assert abs(est.value - 0.8) < 3 * est.stderr, est
    # Weights are 3 on about a third of the log, 0 elsewhere: ESS ~ rounds / 3.
    assert results["ips"].max_weight == pytest.approx(3.0)
    assert results["ips"].effective_sample_size == pytest.approx(rounds / 3, rel=0.05)
    # The reward model removes most of the variance: Var(IPS term) = 1.76, Var(DR term) = 0.48.
    assert results["dr"].stderr < results["ips"].stderr
