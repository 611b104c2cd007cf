"""Real-time persona inference: a posterior over a workspace's persona templates for one buyer.

The model (everything below is exact; a result can be reproduced by hand):

1. **Match degree.** Each signal's condition gives ``m`` in [0, 1] for the buyer's feature value ``x``.
   With ``s`` the signal's softness (default ``max(0.5, 0.1 * |t|)`` for threshold ``t``) and
   ``sigma(z) = 1 / (1 + exp(-z))``, the numeric conditions are logistic ramps of slope ``4 / s``::

       gte t:  m = sigma(2 + 4 (x - t) / s)      lte t:  m = sigma(2 + 4 (t - x) / s)
       gt  t:  m = sigma(-2 + 4 (x - t) / s)     lt  t:  m = sigma(-2 + 4 (t - x) / s)
       between [a, b]:  m = sigma(2 + 4 (x - a) / s_a) * sigma(2 + 4 (b - x) / s_b)

   so an inclusive condition scores sigma(2) = 0.881 exactly at its threshold and sigma(-2) = 0.119
   one softness on the wrong side; a strict one scores 0.119 at its threshold and 0.881 one softness
   past it. ``eq``, ``in`` and ``is`` are exact: ``m`` is 1 or 0. Bools count as 1/0 in numeric
   conditions; for ``is``, numbers are true when non-zero and the strings true/false/yes/no/1/0 are read
   as bools. A **missing** feature (absent or ``None``, or one of the signal's ``missing`` values such as
   the -1 the feature engine reads out for a delay it never observed), or a value the condition cannot
   read (text under ``gte``, NaN), gives ``m = 0.5``, which contributes exactly 0: missing evidence is
   neutral.

2. **Log score** of persona ``t`` with effective prior ``pi_t`` (see ``PersonaSet.priors``: priors
   normalised, raised to ``prior_strength``, renormalised) and signal confidence ``c`` in [0, 1]::

       log_score_t = log pi_t + sum over t's signals of  c * w * (log(EPS + m) - log(EPS + 0.5))

   with ``EPS = 0.05``. A perfect match (m = 1) adds ``w * log(1.05 / 0.55) = +0.647 w``; a clear
   miss (m = 0) adds ``w * log(0.05 / 0.55) = -2.398 w``: a persona is ruled out by contradicting
   evidence faster than it is ruled in. ``c`` is the share of the buyer's evidence that comes from
   non-suppressed signals; it shrinks every evidence term toward 0, so at ``c = 0`` the posterior is
   the prior.

3. **Posterior** = softmax of the log scores over the personas. The buyer gets the persona with the
   highest posterior (ties go to the persona listed first) when that posterior is at least the
   templates' ``threshold``, else ``"unassigned"``. ``confidence`` is that highest posterior.

The reasons (``contributions``) are the top persona's signal terms, sorted by ``|log_contribution|``
descending (ties keep template order); ``log_prior`` plus their sum is that persona's ``log_score``.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from typing import Any, Final

from offerloop.core.conditions import member, same
from offerloop.personas.templates import UNASSIGNED, PersonaSet, Signal

__all__ = [
    "EPSILON",
    "NEUTRAL_MATCH",
    "Contribution",
    "PersonaPosterior",
    "infer",
    "log_likelihood_ratio",
    "match_degree",
    "signal_confidence_from",
]

EPSILON: Final = 0.05
NEUTRAL_MATCH: Final = 0.5
_LOG_NEUTRAL: Final = math.log(EPSILON + NEUTRAL_MATCH)


@dataclass(frozen=True, slots=True)
class Contribution:
    """One signal's term in a persona's log score: a reason for (or against) the persona."""

    persona: str
    feature: str
    condition: str  # e.g. "drop_orders >= 1"
    value: Any  # the buyer's feature value; None when missing
    weight: float
    match: float  # m in [0, 1]
    log_contribution: float  # c * w * (log(EPS + m) - log(EPS + 0.5))


@dataclass(frozen=True, slots=True)
class PersonaPosterior:
    """The inferred persona of one buyer."""

    name: str  # the top persona, or "unassigned" when its posterior is under the threshold
    confidence: float  # the top persona's posterior
    posterior: dict[str, float]  # every persona, in template order; sums to 1
    contributions: list[Contribution]  # the top persona's reasons, by |log_contribution| descending
    top: str = ""  # the top persona even when unassigned (the persona `contributions` explain)
    log_prior: float = 0.0  # log of the top persona's effective prior
    log_score: float = 0.0  # the top persona's log score = log_prior + sum of contributions
    log_scores: dict[str, float] = field(default_factory=dict)

    @property
    def assigned(self) -> bool:
        return self.name != UNASSIGNED

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def _sigmoid(z: float) -> float:
    if z >= 0:
        return 1.0 / (1.0 + math.exp(-z))
    e = math.exp(z)
    return e / (1.0 + e)


def _as_number(value: Any) -> float | None:
    """A number the ordered tests can judge; booleans and text are not numbers (the condition language's rule)."""
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    number = float(value)
    return number if math.isfinite(number) else None


def match_degree(signal: Signal, value: Any) -> float:
    """The degree ``m`` in [0, 1] to which ``value`` meets ``signal``'s condition (0.5 when missing)."""
    if value is None:
        return NEUTRAL_MATCH
    if type(value).__module__ == "numpy" and hasattr(value, "item"):
        value = value.item()  # numpy scalars (rows built with numpy) behave like their Python twins
    if signal.missing is not None and any(same(value, m) for m in signal.missing):
        return NEUTRAL_MATCH  # the feature engine's "never observed" value
    op, operand = signal.operator, signal.operand
    if op == "eq":
        if isinstance(value, float) and math.isnan(value):
            return NEUTRAL_MATCH
        return 1.0 if same(value, operand) else 0.0
    if op == "in":
        if isinstance(value, float) and math.isnan(value):
            return NEUTRAL_MATCH
        return 1.0 if member(value, operand) else 0.0
    if op == "is":
        if not isinstance(value, bool):
            return NEUTRAL_MATCH  # only a boolean says yes or no
        return 1.0 if value is operand else 0.0
    x = _as_number(value)
    if x is None:
        return NEUTRAL_MATCH
    if op == "between":
        low, high = operand
        return _sigmoid(2.0 + 4.0 * (x - low) / signal.softness_for(low)) * _sigmoid(
            2.0 + 4.0 * (high - x) / signal.softness_for(high)
        )
    s = signal.softness_for(operand)
    if op == "gte":
        return _sigmoid(2.0 + 4.0 * (x - operand) / s)
    if op == "gt":
        return _sigmoid(-2.0 + 4.0 * (x - operand) / s)
    if op == "lte":
        return _sigmoid(2.0 + 4.0 * (operand - x) / s)
    return _sigmoid(-2.0 + 4.0 * (operand - x) / s)  # lt


def log_likelihood_ratio(match: float) -> float:
    """``log(EPS + m) - log(EPS + 0.5)``: one unit of weight's evidence at match degree ``m``."""
    return math.log(EPSILON + match) - _LOG_NEUTRAL


def signal_confidence_from(features: Mapping[str, Any]) -> float:
    """``1 - suppressed_share`` clipped to [0, 1]; 1.0 when the buyer has no ``suppressed_share``."""
    share = _as_number(features.get("suppressed_share"))
    if share is None:
        return 1.0
    return min(1.0, max(0.0, 1.0 - share))


def infer(
    features: Mapping[str, Any], personas: PersonaSet, *, signal_confidence: float = 1.0
) -> PersonaPosterior:
    """The posterior over ``personas`` for a buyer described by ``features`` (see the module docstring)."""
    if not (0.0 <= signal_confidence <= 1.0):  # also refuses NaN
        raise ValueError(f"signal_confidence must be in [0, 1], got {signal_confidence!r}")
    log_priors = personas.log_priors()
    terms: dict[str, list[Contribution]] = {}
    log_scores: dict[str, float] = {}
    for persona in personas.personas:
        rows: list[Contribution] = []
        for signal in persona.signals:
            value = features.get(signal.feature)
            m = match_degree(signal, value)
            rows.append(
                Contribution(
                    persona=persona.name,
                    feature=signal.feature,
                    condition=signal.describe(),
                    value=value,
                    weight=signal.weight,
                    match=m,
                    log_contribution=signal_confidence * signal.weight * log_likelihood_ratio(m),
                )
            )
        terms[persona.name] = rows
        log_scores[persona.name] = log_priors[persona.name] + math.fsum(r.log_contribution for r in rows)

    best = max(log_scores.values())
    weights = {name: math.exp(score - best) for name, score in log_scores.items()}
    total = math.fsum(weights.values())
    posterior = {name: w / total for name, w in weights.items()}

    top = personas.personas[0].name
    for name, p in posterior.items():  # template order: the first of equal posteriors wins
        if p > posterior[top]:
            top = name
    confidence = posterior[top]
    reasons = sorted(terms[top], key=lambda r: -abs(r.log_contribution))
    return PersonaPosterior(
        name=top if confidence >= personas.threshold else UNASSIGNED,
        confidence=confidence,
        posterior=posterior,
        contributions=reasons,
        top=top,
        log_prior=log_priors[top],
        log_score=log_scores[top],
        log_scores=log_scores,
    )
