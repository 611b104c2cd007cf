"""The experiment statistics against values worked out by hand (the working is in each comment)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from offerloop.ml import experiments as ex


def phi(z: float) -> float:
    """Standard normal CDF by the error function (independent of scipy)."""
    return 0.5 * (1 + math.erf(z / math.sqrt(2)))


def test_welch_on_equal_spread_arms() -> None:
    # control 1,2,3 and variant 3,4,5: difference 2; each variance 1, so se^2 = 1/3 + 1/3, se = sqrt(2/3).
    # Welch df = (2/3)^2 / (2 * (1/3)^2 / 2) = 4; t = 2 / sqrt(2/3) = sqrt(6).
    # Student t with 4 df in closed form: with w = 1 + t^2/4 = 2.5,
    # F(t) = 1/2 + (3/8) (t / sqrt(w)) (1 - t^2 / (12 w)) = 1/2 + .375 * sqrt(2.4) * .8
    f = 0.5 + 0.375 * math.sqrt(2.4) * 0.8
    c = ex.welch([1, 2, 3], [3, 4, 5])
    assert c is not None
    assert c.difference == 2.0
    assert c.p_value == pytest.approx(2 * (1 - f), abs=1e-12)  # 0.070484...
    # t(0.975, 4) = 2.7764451 (tables); half width = 2.7764451 * sqrt(2/3)
    half = 2.7764451052 * math.sqrt(2 / 3)
    assert (c.low, c.high) == pytest.approx((2 - half, 2 + half), abs=1e-9)
    assert c.relative == 1.0  # 2 over the control's mean 2


def test_welch_degenerate_inputs() -> None:
    assert ex.welch([1], [1, 2]) is None
    same = ex.welch([2, 2], [2, 2])
    assert same is not None and (same.difference, same.low, same.high, same.p_value) == (0.0, 0.0, 0.0, 1.0)
    apart = ex.welch([1, 1], [3, 3])
    assert apart is not None and (apart.difference, apart.low, apart.high, apart.p_value) == (
        2.0,
        2.0,
        2.0,
        0.0,
    )


def test_proportions_ten_versus_fifteen_percent() -> None:
    # 10/100 vs 15/100: difference .05; se = sqrt(.1*.9/100 + .15*.85/100) = sqrt(.002175)
    # pooled rate .125: se0 = sqrt(.125 * .875 * (2/100)) = sqrt(.0021875); p = erfc(z0 / sqrt 2)
    c = ex.proportions(10, 100, 15, 100)
    assert c is not None
    assert c.difference == pytest.approx(0.05, abs=1e-15)
    half = 1.959963984540054 * math.sqrt(0.002175)
    assert (c.low, c.high) == pytest.approx((0.05 - half, 0.05 + half), abs=1e-12)
    assert c.p_value == pytest.approx(math.erfc(0.05 / math.sqrt(0.0021875) / math.sqrt(2)), abs=1e-12)
    assert c.p_value == pytest.approx(0.28505, abs=1e-5)
    assert ex.proportions(0, 0, 1, 2) is None
    none = ex.proportions(0, 10, 0, 10)
    assert none is not None and none.p_value == 1.0 and none.difference == 0.0


def test_cuped_removes_the_covariates_share() -> None:
    # Pooled: y = 1,2,3,3,4,5 and x = 1,2,3,1,2,3; mean x 2, mean y 3.
    # sum dx*dy = (-1)(-2) + 0 + 0 + (-1)(0) + 0 + (1)(2) = 4, sum dx^2 = 4: theta = 1.
    # Adjusted control 1-(-1), 2-0, 3-1 = 2,2,2; variant 3+1, 4, 5-1 = 4,4,4: the difference 2 exactly.
    c, theta = ex.cuped([1, 2, 3], [1, 2, 3], [3, 4, 5], [1, 2, 3])
    assert theta == 1.0
    assert c is not None and (c.difference, c.low, c.high, c.p_value) == (2.0, 2.0, 2.0, 0.0)
    # A covariate that does not vary leaves Welch as it was
    plain, theta0 = ex.cuped([1, 2, 3], [7, 7, 7], [3, 4, 5], [7, 7, 7])
    assert theta0 == 0.0 and plain == ex.welch([1, 2, 3], [3, 4, 5])


def test_cuped_narrows_the_interval_on_correlated_data() -> None:
    rng = np.random.default_rng(7)
    x = rng.normal(10, 3, 2000)
    y = x + rng.normal(0, 1, 2000)
    y[1000:] += 0.5
    plain = ex.welch(y[:1000], y[1000:])
    adjusted, theta = ex.cuped(y[:1000], x[:1000], y[1000:], x[1000:])
    assert plain is not None and adjusted is not None
    assert 0.9 < theta < 1.1
    assert (adjusted.high - adjusted.low) < (plain.high - plain.low) / 2
    assert adjusted.low < 0.5 < adjusted.high


def test_beta_binomial_by_hand() -> None:
    # control 0/1 -> Beta(1,2), density 2(1-a); variant 1/1 -> Beta(2,1), density 2b.
    # P(B > A) = int_0^1 2(1-a) (1 - a^2) da = 2 (1 - 1/2 - 1/3 + 1/4) = 5/6.
    # E[max(A - B, 0)] = int 4(1-a) int_0^a (a-b) b db da = int 4(1-a) a^3/6 da = (2/3)(1/4 - 1/5) = 1/30.
    # E[max(B - A, 0)] = E[B - A] + 1/30 = (2/3 - 1/3) + 1/30 = 11/30.
    b = ex.beta_binomial(0, 1, 1, 1)
    assert b.chance_to_beat_control == pytest.approx(5 / 6, abs=1e-12)
    assert b.expected_loss_variant == pytest.approx(1 / 30, abs=1e-12)
    assert b.expected_loss_control == pytest.approx(11 / 30, abs=1e-12)
    # Two uniforms: 1/2, and E[max(U1 - U2, 0)] = 1/6
    even = ex.beta_binomial(0, 0, 0, 0)
    assert even.chance_to_beat_control == pytest.approx(0.5, abs=1e-12)
    assert even.expected_loss_variant == pytest.approx(1 / 6, abs=1e-12)


def test_beta_binomial_agrees_with_draws_at_scale() -> None:
    rng = np.random.default_rng(0)
    a = rng.beta(1 + 100, 1 + 900, 400_000)
    b = rng.beta(1 + 130, 1 + 870, 400_000)
    exact = ex.beta_binomial(100, 1000, 130, 1000)
    assert exact.chance_to_beat_control == pytest.approx(float((b > a).mean()), abs=0.003)
    assert exact.expected_loss_variant == pytest.approx(float(np.maximum(a - b, 0).mean()), abs=1e-4)
    assert exact.expected_loss_control == pytest.approx(float(np.maximum(b - a, 0).mean()), abs=1e-4)


def test_normal_means_by_hand() -> None:
    # a = 0,2 and b = 1,3: d = 1, s^2 = 2/2 + 2/2 = 2; z = 1/sqrt 2.
    # P = Phi(z); loss of B = s phi(z) - d Phi(-z); loss of A = s phi(z) + d Phi(z).
    z = 1 / math.sqrt(2)
    dens = math.exp(-z * z / 2) / math.sqrt(2 * math.pi)
    n = ex.normal_means([0, 2], [1, 3])
    assert n is not None
    assert n.chance_to_beat_control == pytest.approx(phi(z), abs=1e-12)  # 0.760250
    assert n.expected_loss_variant == pytest.approx(math.sqrt(2) * dens - phi(-z), abs=1e-12)
    assert n.expected_loss_control == pytest.approx(math.sqrt(2) * dens + phi(z), abs=1e-12)
    assert ex.normal_means([1], [1, 2]) is None


def test_srm() -> None:
    # 5,500 / 4,500 planned 50/50: expected 5,000 each, chi2 = 2 * 500^2 / 5000 = 100, 1 dof:
    # p = P(Z^2 > 100) = erfc(sqrt(50))
    s = ex.srm([5500, 4500], [0.5, 0.5])
    assert s is not None
    assert s.chi2 == 100.0 and s.expected == (5000.0, 5000.0)
    assert s.p_value == pytest.approx(math.erfc(math.sqrt(50)), rel=1e-9)
    assert s.mismatch
    fine = ex.srm([5050, 4950], [1, 1])  # chi2 = 1: p = erfc(1/sqrt 2) = 0.3173
    assert fine is not None and not fine.mismatch
    assert fine.p_value == pytest.approx(math.erfc(1 / math.sqrt(2)), rel=1e-9)
    # three arms 20/30/50 against the plan exactly
    exact = ex.srm([200, 300, 500], [2, 3, 5])
    assert exact is not None and exact.chi2 == 0.0 and exact.p_value == 1.0
    assert ex.srm([0, 0], [1, 1]) is None
    off_plan = ex.srm([10, 1], [1, 0])
    assert off_plan is not None and off_plan.mismatch


def test_holm() -> None:
    # sorted .01 (x3 = .03), .03 (x2 = .06), .04 (x1 = .04, raised to .06 to stay monotone)
    assert ex.holm([0.01, 0.04, 0.03]) == pytest.approx([0.03, 0.06, 0.06], abs=1e-15)
    assert ex.holm([0.5]) == [0.5]
    assert ex.holm([0.6, 0.7]) == [1.0, 1.0]
    assert ex.holm([]) == []
