"""The statistics of A/B/n experiments: pure functions over per-buyer arrays (no database, no web).

Every function is deterministic: closed forms where they exist, no random draws.

- ``welch``: difference in means (variant - control), Welch's t interval and two-sided p-value.
- ``proportions``: difference in conversion rates; Wald interval (unpooled standard error) and the pooled
  two-proportion z test's p-value (the usual pairing: the test assumes no difference, the interval does not).
- ``cuped``: CUPED (Deng, Xu, Kohavi & Walker 2013): ``theta = cov(Y, X) / var(X)`` pooled over both arms,
  ``Y' = Y - theta (X - mean X)``, then ``welch`` on ``Y'``.
- ``beta_binomial``: Beta(1, 1) priors on each arm's rate; exact P(variant > control) and expected losses.
- ``normal_means``: a normal approximation for a mean such as revenue per buyer (flat prior: each arm's
  mean ~ N(sample mean, s^2 / n)); P(variant > control) and expected losses in closed form.
- ``srm``: sample-ratio mismatch, chi-square goodness of fit against the planned weights.
- ``holm``: Holm's step-down adjustment of the p-values of the variants compared with the control.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike
from scipy import special, stats

SRM_ALPHA = 0.001  # a mismatch is flagged below this p-value (the usual, conservative choice)


@dataclass(frozen=True)
class Comparison:
    """variant - control: the difference, its interval at ``level``, and the two-sided p-value."""

    control: float  # the control's mean (or rate)
    variant: float
    difference: float
    low: float
    high: float
    p_value: float
    level: float = 0.95

    @property
    def relative(self) -> float | None:
        """The difference as a share of the control's mean (None when that is 0)."""
        return self.difference / self.control if self.control else None


@dataclass(frozen=True)
class Bayes:
    """P(variant > control) and the expected loss of choosing each: E[max(other - chosen, 0)]."""

    chance_to_beat_control: float
    expected_loss_variant: float
    expected_loss_control: float


@dataclass(frozen=True)
class SampleRatio:
    observed: tuple[int, ...]
    expected: tuple[float, ...]
    chi2: float
    p_value: float
    mismatch: bool


def _z(level: float) -> float:
    return float(stats.norm.ppf(0.5 + level / 2))


def welch(control: ArrayLike, variant: ArrayLike, *, level: float = 0.95) -> Comparison | None:
    """Welch's unequal-variance t test of mean(variant) - mean(control); None with fewer than 2 per arm."""
    a, b = np.asarray(control, dtype=float), np.asarray(variant, dtype=float)
    if a.size < 2 or b.size < 2:
        return None
    ma, mb = float(a.mean()), float(b.mean())
    va, vb = float(a.var(ddof=1)) / a.size, float(b.var(ddof=1)) / b.size
    diff = mb - ma
    se = math.sqrt(va + vb)
    if se == 0.0:  # both arms constant: the difference is known exactly
        return Comparison(ma, mb, diff, diff, diff, 1.0 if diff == 0 else 0.0, level)
    # Welch-Satterthwaite degrees of freedom
    df = (va + vb) ** 2 / ((va**2 / (a.size - 1) if va else 0.0) + (vb**2 / (b.size - 1) if vb else 0.0))
    t = diff / se
    p = float(2 * stats.t.sf(abs(t), df))
    half = float(stats.t.ppf(0.5 + level / 2, df)) * se
    return Comparison(ma, mb, diff, diff - half, diff + half, p, level)


def proportions(
    control_conversions: int, control_n: int, variant_conversions: int, variant_n: int, *, level: float = 0.95
) -> Comparison | None:
    """Rate(variant) - rate(control): Wald interval with the unpooled standard error, p-value of the pooled
    two-proportion z test. None when an arm has no one."""
    if control_n <= 0 or variant_n <= 0:
        return None
    pa, pb = control_conversions / control_n, variant_conversions / variant_n
    diff = pb - pa
    se = math.sqrt(pa * (1 - pa) / control_n + pb * (1 - pb) / variant_n)
    pooled = (control_conversions + variant_conversions) / (control_n + variant_n)
    se0 = math.sqrt(pooled * (1 - pooled) * (1 / control_n + 1 / variant_n))
    p = 1.0 if diff == 0 else (0.0 if se0 == 0 else float(2 * stats.norm.sf(abs(diff) / se0)))
    half = _z(level) * se
    return Comparison(pa, pb, diff, diff - half, diff + half, p, level)


def cuped_theta(y: ArrayLike, x: ArrayLike) -> float:
    """cov(Y, X) / var(X) over the given buyers (0 when X does not vary)."""
    ya, xa = np.asarray(y, dtype=float), np.asarray(x, dtype=float)
    if xa.size < 2:
        return 0.0
    var = float(xa.var(ddof=1))
    if var == 0.0:
        return 0.0
    return float(np.cov(ya, xa, ddof=1)[0, 1]) / var


def cuped(
    control_y: ArrayLike,
    control_x: ArrayLike,
    variant_y: ArrayLike,
    variant_x: ArrayLike,
    *,
    level: float = 0.95,
) -> tuple[Comparison | None, float]:
    """Welch on the CUPED-adjusted outcomes, and theta. theta and mean(X) are pooled over both arms, so the
    adjustment is the same function for everyone and the difference stays unbiased under randomization."""
    ya, xa = np.asarray(control_y, dtype=float), np.asarray(control_x, dtype=float)
    yb, xb = np.asarray(variant_y, dtype=float), np.asarray(variant_x, dtype=float)
    y_all, x_all = np.concatenate([ya, yb]), np.concatenate([xa, xb])
    theta = cuped_theta(y_all, x_all)
    mean_x = float(x_all.mean()) if x_all.size else 0.0
    return welch(ya - theta * (xa - mean_x), yb - theta * (xb - mean_x), level=level), theta


def beta_beats(a1: float, b1: float, a2: float, b2: float) -> float:
    """P(X1 > X2) for independent X1 ~ Beta(a1, b1), X2 ~ Beta(a2, b2), with a1 a positive integer (exact:
    Evan Miller's sum, ``sum_{i<a1} B(a2+i, b1+b2) / ((b1+i) B(1+i, b1) B(a2, b2))``)."""
    i = np.arange(int(a1), dtype=float)
    log_terms = (
        special.betaln(a2 + i, b1 + b2) - np.log(b1 + i) - special.betaln(1 + i, b1) - special.betaln(a2, b2)
    )
    return float(min(1.0, max(0.0, np.exp(log_terms).sum())))


def beta_binomial(
    control_conversions: int, control_n: int, variant_conversions: int, variant_n: int
) -> Bayes:
    """Beta(1, 1) priors, binomial likelihoods. The expected loss of choosing B over A is
    E[max(pA - pB, 0)] = E[pA; pA > pB] - E[pB; pA > pB] = mean(A) P(A+ > B) - mean(B) P(A > B+), where
    A+ (B+) is A's (B's) posterior with one more success: both terms by ``beta_beats``."""
    aa, ba = 1 + control_conversions, 1 + control_n - control_conversions
    ab, bb = 1 + variant_conversions, 1 + variant_n - variant_conversions
    mean_a, mean_b = aa / (aa + ba), ab / (ab + bb)
    beat = beta_beats(ab, bb, aa, ba)
    loss_variant = mean_a * beta_beats(aa + 1, ba, ab, bb) - mean_b * beta_beats(aa, ba, ab + 1, bb)
    loss_control = mean_b * beta_beats(ab + 1, bb, aa, ba) - mean_a * beta_beats(ab, bb, aa + 1, ba)
    return Bayes(beat, max(0.0, loss_variant), max(0.0, loss_control))


def normal_means(control: ArrayLike, variant: ArrayLike) -> Bayes | None:
    """Normal approximation (flat prior): D = mean(B) - mean(A) ~ N(d, s^2), s^2 = var(A)/nA + var(B)/nB.
    P(B > A) = Phi(d / s); loss of choosing B = E[max(-D, 0)] = s phi(d/s) - d Phi(-d/s); of A, with d
    negated. None with fewer than 2 per arm."""
    a, b = np.asarray(control, dtype=float), np.asarray(variant, dtype=float)
    if a.size < 2 or b.size < 2:
        return None
    d = float(b.mean() - a.mean())
    s = math.sqrt(float(a.var(ddof=1)) / a.size + float(b.var(ddof=1)) / b.size)
    if s == 0.0:
        return Bayes(1.0 if d > 0 else (0.5 if d == 0 else 0.0), max(0.0, -d), max(0.0, d))
    z = d / s
    phi = float(stats.norm.pdf(z))
    loss_b = s * phi - d * float(stats.norm.cdf(-z))
    loss_a = s * phi + d * float(stats.norm.cdf(z))
    return Bayes(float(stats.norm.cdf(z)), loss_b, loss_a)


def srm(observed: Sequence[int], weights: Sequence[float], *, alpha: float = SRM_ALPHA) -> SampleRatio | None:
    """Chi-square goodness of fit of the exposures per arm against the planned weights; None with no one."""
    total = sum(observed)
    weight_sum = float(sum(weights))
    if total <= 0 or weight_sum <= 0 or len(observed) < 2:
        return None
    expected = [total * w / weight_sum for w in weights]
    pairs = list(zip(observed, expected, strict=True))
    if any(e == 0 and o > 0 for o, e in pairs):  # someone landed in an arm planned to get no one
        return SampleRatio(tuple(observed), tuple(expected), math.inf, 0.0, True)
    chi2 = sum((o - e) ** 2 / e for o, e in pairs if e > 0)
    dof = sum(1 for e in expected if e > 0) - 1
    p = float(stats.chi2.sf(chi2, dof)) if dof > 0 else 1.0
    return SampleRatio(tuple(observed), tuple(expected), float(chi2), p, p < alpha)


def holm(p_values: Sequence[float]) -> list[float]:
    """Holm's step-down adjusted p-values, in the order given: the k-th smallest of m is multiplied by
    (m - k + 1), then made non-decreasing, capped at 1. Rejecting where adjusted < alpha controls the
    family-wise error rate at alpha over the m comparisons."""
    m = len(p_values)
    order = sorted(range(m), key=lambda i: p_values[i])
    adjusted = [0.0] * m
    running = 0.0
    for rank, i in enumerate(order):
        running = max(running, min(1.0, (m - rank) * p_values[i]))
        adjusted[i] = running
    return adjusted
