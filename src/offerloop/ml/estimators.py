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

Every estimate carries a normal-approximation confidence interval ``value +/- z * stderr`` with
``z = Phi^-1((1 + level) / 2)``, plus diagnostics of the weights: the effective sample size
``(sum w)^2 / sum w^2`` (0 when every weight is 0) and the largest weight.

Conventions for degenerate logs:

* An empty log raises :class:`ValueError`.
* A log of one decision has no sample variance: ``stderr`` is ``inf`` and the interval is unbounded.
* SNIPS with every weight 0 (the target policy puts no mass on any logged action, so the log says nothing
  about it) returns ``value = 0.0`` with ``stderr = inf`` and an unbounded interval.

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
    "doubly_robust",
    "evaluate_all",
    "ips",
    "lift",
    "snips",
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


@dataclass(frozen=True, slots=True)
class _Prepared:
    rewards: FloatArray
    weights: FloatArray
    predicted_chosen: FloatArray
    predicted_target: FloatArray
    z: float


def _z(level: float) -> float:
    """Two-sided normal critical value for a confidence ``level`` in (0, 1)."""
    if not (isinstance(level, int | float) and 0.0 < level < 1.0):
        raise ValueError(f"level must be in (0, 1), got {level!r}")
    return NormalDist().inv_cdf(0.5 + level / 2.0)


def _prepare(log: Sequence[LoggedDecision], level: float, clip: float | None) -> _Prepared:
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
    return _Prepared(rewards, weights, predicted_chosen, predicted_target, z)


def _mean_stderr(terms: FloatArray) -> tuple[float, float]:
    """Mean of ``terms`` and its standard error ``std(terms, ddof=1) / sqrt(n)`` (inf when n == 1)."""
    n = terms.size
    mean = float(terms.mean())
    if n < 2:
        return mean, math.inf
    return mean, float(terms.std(ddof=1)) / math.sqrt(n)


def _estimate(name: str, value: float, stderr: float, p: _Prepared) -> Estimate:
    w = p.weights
    sum_w = float(w.sum())
    sum_w2 = float(np.dot(w, w))
    ess = sum_w * sum_w / sum_w2 if sum_w2 > 0.0 else 0.0
    half_width = p.z * stderr
    return Estimate(
        estimator=name,
        value=value,
        stderr=stderr,
        ci_low=value - half_width,
        ci_high=value + half_width,
        n=int(w.size),
        effective_sample_size=ess,
        max_weight=float(w.max()),
    )


def ips(log: Sequence[LoggedDecision], *, level: float = 0.95, clip: float | None = None) -> Estimate:
    """Inverse propensity scoring: ``mean(w_i r_i)``; stderr = sample std of ``w_i r_i`` / sqrt(n)."""
    p = _prepare(log, level, clip)
    value, stderr = _mean_stderr(p.weights * p.rewards)
    return _estimate("ips", value, stderr, p)


def snips(log: Sequence[LoggedDecision], *, level: float = 0.95, clip: float | None = None) -> Estimate:
    """Self-normalised IPS: ``sum(w_i r_i) / sum(w_i)``.

    Standard error by the delta method. ``V = mean(w r) / mean(w)`` is a ratio of means; linearising it
    around the true means gives the influence terms ``d_i = w_i (r_i - V) / mean(w)``, which average to
    exactly zero at the estimate. Taking their sample variance (ddof = 1, as for IPS and DR):

        stderr = sqrt( n / (n - 1) * sum_i w_i^2 (r_i - V)^2 ) / sum_i w_i

    With every weight equal to 1 this is the plain standard error of the mean reward, as for IPS.

    If every weight is 0 the ratio is 0/0: the target policy gives zero probability to every logged
    action, so the log carries no information about it. The estimate is then ``value = 0.0`` with
    ``stderr = inf`` (an unbounded interval) and ``effective_sample_size = 0.0``, rather than an error.
    """
    p = _prepare(log, level, clip)
    w, r = p.weights, p.rewards
    n = w.size
    sum_w = float(w.sum())
    if sum_w == 0.0:
        return _estimate("snips", 0.0, math.inf, p)
    value = float(np.dot(w, r)) / sum_w
    if n < 2:
        return _estimate("snips", value, math.inf, p)
    influence = w * (r - value)
    stderr = math.sqrt(n / (n - 1) * float(np.dot(influence, influence))) / sum_w
    return _estimate("snips", value, stderr, p)


def doubly_robust(
    log: Sequence[LoggedDecision], *, level: float = 0.95, clip: float | None = None
) -> Estimate:
    """Doubly robust: ``mean(predicted_target_i + w_i (r_i - predicted_chosen_i))``.

    stderr = sample std of those per-decision terms / sqrt(n). With an all-zero reward model this is
    IPS; with all-zero weights it is the reward model's own estimate ``mean(predicted_target_i)``.
    """
    p = _prepare(log, level, clip)
    terms = p.predicted_target + p.weights * (p.rewards - p.predicted_chosen)
    value, stderr = _mean_stderr(terms)
    return _estimate("dr", value, stderr, p)


def evaluate_all(
    log: Sequence[LoggedDecision], *, level: float = 0.95, clip: float | None = None
) -> dict[str, Estimate]:
    """All three estimators on one log, keyed ``"ips"``, ``"snips"``, ``"dr"``."""
    return {
        "ips": ips(log, level=level, clip=clip),
        "snips": snips(log, level=level, clip=clip),
        "dr": doubly_robust(log, level=level, clip=clip),
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
