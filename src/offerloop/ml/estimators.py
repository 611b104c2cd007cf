"""Off-policy evaluation of a target policy from logged contextual-bandit decisions.

Each :class:`LoggedDecision` is one round the logging policy played: the reward it observed, the logging
propensity of the action it showed, and the target policy's probability of that same action. Optional
reward-model predictions enable the doubly robust estimator.

Importance weights are ``w_i = target_prob_i / propensity_i``, clipped from above at ``clip`` when given
(clipping trades a downward bias for lower variance). Three estimators of the target policy's expected
reward per decision are provided:

* :func:`ips` -- inverse propensity scoring, ``mean(w_i r_i)``. Unbiased (unclipped) but high variance.
* :func:`snips` -- self-normalised IPS, ``sum(w_i r_i) / sum(w_i)``. Slightly biased, usually much lower
  variance, and always inside the range of the observed rewards.
* :func:`doubly_robust` -- ``mean(predicted_target_i + w_i (r_i - predicted_chosen_i))``. Unbiased when
  the propensities are right; low variance when the reward model is good.

Every estimate carries its normal-approximation standard error ``stderr`` (delta method for SNIPS), a
confidence interval ``[ci_low, ci_high]`` at ``level`` that respects the bounds of the rewards (see
:func:`wilson_interval` and :func:`empirical_bernstein_interval` for which interval and why), and diagnostics
of the weights: the effective sample size ``(sum w)^2 / sum w^2`` (0 when every weight is 0) and the
largest weight.

Rewards are taken to lie in ``reward_range = (low, high)``; by default ``(min(0, min r), max(1, max r))``
-- offerloop's rewards are in [0, 1], or non-negative amounts. Every policy's true value lies in that range,
so no interval leaves it: a normal interval ``value +/- z * stderr`` goes below 0 on sparse rewards, and
collapses to ``[0, 0]`` when no logged reward matches the target policy, as if that proved the value were 0.

Conventions for degenerate logs:

* An empty log raises :class:`ValueError`.
* A log of one decision has no sample variance: ``stderr`` is ``inf`` and the interval is the whole reward
  range.
* SNIPS with every weight 0 (the target policy puts no mass on any logged action, so the log says nothing
  about it) returns ``value = 0.0`` with ``stderr = inf`` and the whole reward range as its interval.

Pure numpy + stdlib: no database, no web imports.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from statistics import NormalDist

import numpy as np
import numpy.typing as npt

__all__ = [
    "Estimate",
    "LoggedDecision",
    "bootstrap_ci",
    "difference_interval",
    "doubly_robust",
    "empirical_bernstein_interval",
    "evaluate_all",
    "ips",
    "lift",
    "snips",
    "wilson_interval",
]

FloatArray = npt.NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class LoggedDecision:
    """One logged bandit decision, seen from a target policy."""

    reward: float
    propensity: float  # logging policy's probability of the chosen action, in (0, 1]
    target_prob: float  # target policy's probability of the chosen action, in [0, 1]
    predicted_chosen: float = 0.0  # reward model's prediction for the chosen action (for DR)
    predicted_target: float = 0.0  # E_{a ~ target}[reward model(a)] for this context (for DR)


@dataclass(frozen=True, slots=True)
class Estimate:
    """A point estimate of the target policy's value with its standard error and weight diagnostics."""

    estimator: str  # "ips" | "snips" | "dr"
    value: float
    stderr: float
    ci_low: float
    ci_high: float  # confidence interval at `level`
    n: int
    effective_sample_size: float  # (sum w)^2 / sum w^2
    max_weight: float
    interval: str = "normal"  # how [ci_low, ci_high] was computed: "empirical-bernstein" | "wilson-ess"


@dataclass(frozen=True, slots=True)
class _Prepared:
    rewards: FloatArray
    weights: FloatArray
    predicted_chosen: FloatArray
    predicted_target: FloatArray
    z: float
    level: float
    low: float  # reward range: every policy's value lies in [low, high]
    high: float
    weight_bound: float  # max(1, largest weight): the plug-in bound of the terms' spread


def _z(level: float) -> float:
    """Two-sided normal critical value for a confidence ``level`` in (0, 1)."""
    if not (isinstance(level, int | float) and 0.0 < level < 1.0):
        raise ValueError(f"level must be in (0, 1), got {level!r}")
    return NormalDist().inv_cdf(0.5 + level / 2.0)


def _reward_range(rewards: FloatArray, reward_range: tuple[float, float] | None) -> tuple[float, float]:
    if reward_range is None:
        return min(0.0, float(rewards.min())), max(1.0, float(rewards.max()))
    low, high = (float(x) for x in reward_range)
    if not (math.isfinite(low) and math.isfinite(high) and low < high):
        raise ValueError(f"reward_range must be finite with low < high, got {reward_range!r}")
    outside = (rewards < low) | (rewards > high)
    if outside.any():
        i = int(np.flatnonzero(outside)[0])
        raise ValueError(f"log[{i}]: reward {float(rewards[i])!r} is outside reward_range {reward_range!r}")
    return low, high


def _prepare(
    log: Sequence[LoggedDecision],
    level: float,
    clip: float | None,
    reward_range: tuple[float, float] | None = None,
) -> _Prepared:
    z = _z(level)
    if clip is not None and not clip > 0.0:  # also rejects NaN
        raise ValueError(f"clip must be > 0 (or None for no clipping), got {clip!r}")
    n = len(log)
    if n == 0:
        raise ValueError("log is empty: off-policy estimation needs at least one logged decision")
    table = np.array(
        [(d.reward, d.propensity, d.target_prob, d.predicted_chosen, d.predicted_target) for d in log],
        dtype=np.float64,
    ).reshape(n, 5)
    rewards, propensity, target_prob, predicted_chosen, predicted_target = table.T

    # Comparisons with NaN are False, so NaN fails every range check below.
    checks: list[tuple[npt.NDArray[np.bool_], str, FloatArray]] = [
        (~((propensity > 0.0) & (propensity <= 1.0)), "propensity must be in (0, 1]", propensity),
        (~((target_prob >= 0.0) & (target_prob <= 1.0)), "target_prob must be in [0, 1]", target_prob),
        (~np.isfinite(rewards), "reward must be finite", rewards),
        (~np.isfinite(predicted_chosen), "predicted_chosen must be finite", predicted_chosen),
        (~np.isfinite(predicted_target), "predicted_target must be finite", predicted_target),
    ]
    for bad, message, column in checks:
        if bad.any():
            i = int(np.flatnonzero(bad)[0])
            raise ValueError(f"log[{i}]: {message}, got {float(column[i])!r}")

    weights = target_prob / propensity
    if clip is not None:
        weights = np.minimum(weights, clip)
    low, high = _reward_range(rewards, reward_range)
    bound = max(1.0, float(weights.max()))
    return _Prepared(rewards, weights, predicted_chosen, predicted_target, z, level, low, high, bound)


def wilson_interval(mean: float, n: float, *, level: float = 0.95) -> tuple[float, float]:
    """Wilson score interval for a mean in [0, 1] from ``n`` (possibly fractional, effective) observations.

    Why Wilson: it stays inside [0, 1], and with a mean of exactly 0 (no successes) its upper end is
    ``z^2 / (n + z^2)`` -- about 3.8 / n at 95 % -- instead of the normal interval's ``[0, 0]``. For rewards in
    [0, 1] that are not 0/1, a Bernoulli variable has the largest variance of any [0, 1] variable with the
    same mean, so the interval is conservative. It is an approximation, not a bound: near 0 its coverage
    dips a little below ``level`` (93.7 % measured at a 1 % rate on ~100 matched decisions, where the normal
    interval covers 60 %). ``n <= 0`` (no information) gives ``(0, 1)``.
    """
    z = _z(level)
    if not n > 0.0:
        return 0.0, 1.0
    p = min(max(mean, 0.0), 1.0)
    z2n = z * z / n
    centre = (p + z2n / 2.0) / (1.0 + z2n)
    half = z / (1.0 + z2n) * math.sqrt(p * (1.0 - p) / n + z2n / (4.0 * n))
    return max(0.0, centre - half), min(1.0, centre + half)


def empirical_bernstein_interval(
    terms: FloatArray, spread: float, *, level: float = 0.95, bounds: tuple[float, float]
) -> tuple[float, float]:
    """Two-sided empirical-Bernstein interval for the mean of i.i.d. ``terms`` known to span at most
    ``spread`` (max - min of their possible values), intersected with ``bounds``.

    Maurer & Pontil (2009, Theorem 4): with probability at least ``1 - delta``,
    ``E[X] <= mean + sqrt(2 V ln(2/delta) / n) + 7 spread ln(2/delta) / (3 (n - 1))`` with ``V`` the sample
    variance (ddof = 1); each side is taken at ``delta = (1 - level) / 2``.

    Why this bound for IPS and DR: their per-decision terms are bounded (rewards lie in the reward range,
    weights are bounded by the largest seen -- a plug-in, at least 1), and the bound holds for any such
    distribution at any n -- no normal approximation, which fails exactly when it matters (sparse rewards,
    heavy weights). The
    range term keeps the interval open when every term is 0 (no matched success): the data then say the
    value is small, not that it is 0. The price is width when weights are large; SNIPS (a weighted mean)
    gets the tighter :func:`wilson_interval` on its effective sample size. ``n < 2`` gives ``bounds``.
    """
    _z(level)
    low, high = bounds
    n = terms.size
    if n < 2:
        return low, high
    mean = float(terms.mean())
    log_term = math.log(4.0 / (1.0 - level))  # ln(2 / delta) with delta = (1 - level) / 2 per side
    variance = float(terms.var(ddof=1))
    half = math.sqrt(2.0 * variance * log_term / n) + 7.0 * spread * log_term / (3.0 * (n - 1))
    return max(low, min(high, mean - half)), min(high, max(low, mean + half))


def difference_interval(
    treatment: tuple[float, float],
    control: tuple[float, float],
    *,
    level: float = 0.95,
    reward_range: tuple[float, float] = (0.0, 1.0),
) -> tuple[float, float, float]:
    """``(difference, ci_low, ci_high)`` of two independent groups' mean rewards, each given as
    ``(mean, n)``: Newcombe's hybrid score interval (Newcombe 1998, method 10).

    Each mean is rescaled to [0, 1] by ``reward_range`` and gets its :func:`wilson_interval`; the
    difference's interval combines the two Wilson half-widths on each side. Unlike ``difference +/- z *
    stderr`` it never leaves ``[-(high - low), high - low]`` and does not collapse to ``[0, 0]`` when neither
    group has a success (two groups of 40 buyers without a purchase do not show that the model changes
    nothing). A group with ``n <= 0`` gives the whole range.
    """
    low, high = reward_range
    if not (math.isfinite(low) and math.isfinite(high) and low < high):
        raise ValueError(f"reward_range must be finite with low < high, got {reward_range!r}")
    span = high - low
    (m1, n1), (m2, n2) = treatment, control
    p1, p2 = (m1 - low) / span, (m2 - low) / span
    l1, u1 = wilson_interval(p1, n1, level=level)
    l2, u2 = wilson_interval(p2, n2, level=level)
    p1, p2 = min(max(p1, 0.0), 1.0), min(max(p2, 0.0), 1.0)
    diff = p1 - p2
    below = math.hypot(p1 - l1, u2 - p2)
    above = math.hypot(u1 - p1, p2 - l2)
    return (m1 - m2, max(-1.0, diff - below) * span, min(1.0, diff + above) * span)


def _mean_stderr(terms: FloatArray) -> tuple[float, float]:
    """Mean of ``terms`` and its standard error ``std(terms, ddof=1) / sqrt(n)`` (inf when n == 1)."""
    n = terms.size
    mean = float(terms.mean())
    if n < 2:
        return mean, math.inf
    return mean, float(terms.std(ddof=1)) / math.sqrt(n)


def _ess(w: FloatArray) -> float:
    sum_w = float(w.sum())
    sum_w2 = float(np.dot(w, w))
    return sum_w * sum_w / sum_w2 if sum_w2 > 0.0 else 0.0


def _estimate(
    name: str, value: float, stderr: float, p: _Prepared, interval: tuple[float, float], method: str
) -> Estimate:
    w = p.weights
    return Estimate(
        estimator=name,
        value=value,
        stderr=stderr,
        ci_low=interval[0],
        ci_high=interval[1],
        n=int(w.size),
        effective_sample_size=_ess(w),
        max_weight=float(w.max()),
        interval=method,
    )


def ips(
    log: Sequence[LoggedDecision],
    *,
    level: float = 0.95,
    clip: float | None = None,
    reward_range: tuple[float, float] | None = None,
) -> Estimate:
    """Inverse propensity scoring: ``mean(w_i r_i)``; stderr = sample std of ``w_i r_i`` / sqrt(n).

    Interval: :func:`empirical_bernstein_interval`; each term lies in ``[W low, W high]`` with ``W`` the
    largest weight seen, at least 1 (a plug-in for the unknown largest weight: at least 1 keeps the
    interval open when every weight is 0, i.e. when the target never matched the log).
    """
    p = _prepare(log, level, clip, reward_range)
    terms = p.weights * p.rewards
    value, stderr = _mean_stderr(terms)
    interval = empirical_bernstein_interval(
        terms, p.weight_bound * (p.high - p.low), level=level, bounds=(p.low, p.high)
    )
    return _estimate("ips", value, stderr, p, interval, "empirical-bernstein")


def snips(
    log: Sequence[LoggedDecision],
    *,
    level: float = 0.95,
    clip: float | None = None,
    reward_range: tuple[float, float] | None = None,
) -> Estimate:
    """Self-normalised IPS: ``sum(w_i r_i) / sum(w_i)``.

    Standard error by the delta method. ``V = mean(w r) / mean(w)`` is a ratio of means; linearising it
    around the true means gives the influence terms ``d_i = w_i (r_i - V) / mean(w)``, which average to
    exactly zero at the estimate. Taking their sample variance (ddof = 1, as for IPS and DR):

        stderr = sqrt( n / (n - 1) * sum_i w_i^2 (r_i - V)^2 ) / sum_i w_i

    With every weight equal to 1 this is the plain standard error of the mean reward, as for IPS.

    Interval: SNIPS is a weighted mean of rewards, so it gets the :func:`wilson_interval` of its value
    (rescaled to [0, 1] by the reward range) on Kish's effective sample size ``(sum w)^2 / sum w^2`` -- the
    number of equally weighted decisions that would be as informative (the usual treatment of weighted
    proportions in survey statistics, Korn & Graubard 1998). It stays in the reward range and keeps an
    upper end above 0 when no matched decision was rewarded.

    If every weight is 0 the ratio is 0/0: the target policy gives zero probability to every logged
    action, so the log carries no information about it. The estimate is then ``value = 0.0`` with
    ``stderr = inf``, the whole reward range as its interval and ``effective_sample_size = 0.0``, rather
    than an error.
    """
    p = _prepare(log, level, clip, reward_range)
    w, r = p.weights, p.rewards
    n = w.size
    sum_w = float(w.sum())
    if sum_w == 0.0:
        return _estimate("snips", 0.0, math.inf, p, (p.low, p.high), "wilson-ess")
    value = float(np.dot(w, r)) / sum_w
    span = p.high - p.low
    lo, hi = wilson_interval((value - p.low) / span, _ess(w) if n >= 2 else 0.0, level=level)
    interval = (p.low + lo * span, p.low + hi * span)
    if n < 2:
        return _estimate("snips", value, math.inf, p, interval, "wilson-ess")
    influence = w * (r - value)
    stderr = math.sqrt(n / (n - 1) * float(np.dot(influence, influence))) / sum_w
    return _estimate("snips", value, stderr, p, interval, "wilson-ess")


def doubly_robust(
    log: Sequence[LoggedDecision],
    *,
    level: float = 0.95,
    clip: float | None = None,
    reward_range: tuple[float, float] | None = None,
) -> Estimate:
    """Doubly robust: ``mean(predicted_target_i + w_i (r_i - predicted_chosen_i))``.

    stderr = sample std of those per-decision terms / sqrt(n). With an all-zero reward model this is
    IPS; with all-zero weights it is the reward model's own estimate ``mean(predicted_target_i)``.

    Interval: :func:`empirical_bernstein_interval`, the terms' spread bounded from the reward range, the
    predictions' range and the largest possible weight.
    """
    p = _prepare(log, level, clip, reward_range)
    terms = p.predicted_target + p.weights * (p.rewards - p.predicted_chosen)
    value, stderr = _mean_stderr(terms)
    predictions = np.concatenate([p.predicted_target, p.predicted_chosen])
    pred_low, pred_high = min(p.low, float(predictions.min())), max(p.high, float(predictions.max()))
    correction = max(0.0, p.high - pred_low) - min(0.0, p.low - pred_high)
    spread = (pred_high - pred_low) + p.weight_bound * correction
    interval = empirical_bernstein_interval(terms, spread, level=level, bounds=(p.low, p.high))
    return _estimate("dr", value, stderr, p, interval, "empirical-bernstein")


def evaluate_all(
    log: Sequence[LoggedDecision],
    *,
    level: float = 0.95,
    clip: float | None = None,
    reward_range: tuple[float, float] | None = None,
) -> dict[str, Estimate]:
    """All three estimators on one log, keyed ``"ips"``, ``"snips"``, ``"dr"``."""
    return {
        "ips": ips(log, level=level, clip=clip, reward_range=reward_range),
        "snips": snips(log, level=level, clip=clip, reward_range=reward_range),
        "dr": doubly_robust(log, level=level, clip=clip, reward_range=reward_range),
    }


def bootstrap_ci(
    log: Sequence[LoggedDecision],
    estimator: Callable[..., Estimate],
    *,
    level: float = 0.95,
    n_boot: int = 1000,
    seed: int = 0,
) -> tuple[float, float]:
    """Percentile bootstrap interval for ``estimator(log).value``.

    Draws ``n_boot`` resamples of the log (n decisions with replacement, from ``numpy`` generator
    ``default_rng(seed)``), calls ``estimator(resample)`` on each and returns the ``(1 - level) / 2`` and
    ``(1 + level) / 2`` quantiles (linear interpolation) of the resampled values. The same log, estimator,
    ``n_boot`` and ``seed`` always give the same interval. Pass options through ``functools.partial``,
    e.g. ``bootstrap_ci(log, partial(ips, clip=10.0))``.
    """
    _z(level)  # validates level
    if isinstance(n_boot, bool) or not isinstance(n_boot, int) or n_boot < 1:
        raise ValueError(f"n_boot must be a positive integer, got {n_boot!r}")
    n = len(log)
    if n == 0:
        raise ValueError("log is empty: off-policy estimation needs at least one logged decision")
    estimator(log)  # validates the log once, naming the offending index, before any resampling
    rng = np.random.default_rng(seed)
    indices = rng.integers(0, n, size=(n_boot, n))
    values = np.array([estimator([log[i] for i in row]).value for row in indices], dtype=np.float64)
    alpha = 1.0 - level
    low, high = np.quantile(values, [alpha / 2.0, 1.0 - alpha / 2.0])
    return float(low), float(high)


def lift(treatment: Estimate, control: Estimate, *, level: float = 0.95) -> tuple[float, float, float]:
    """``(difference, ci_low, ci_high)`` of ``treatment.value - control.value``.

    Treats the two estimates as independent and normal: the difference has standard error
    ``sqrt(treatment.stderr^2 + control.stderr^2)`` and interval ``difference +/- z * stderr``.
    """
    z = _z(level)
    difference = treatment.value - control.value
    stderr = math.hypot(treatment.stderr, control.stderr)
    half_width = z * stderr
    return difference, difference - half_width, difference + half_width
