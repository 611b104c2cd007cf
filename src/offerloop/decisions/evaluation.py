"""Offline evaluation of candidate policies on the decision log, and the online lift over the holdout."""

from __future__ import annotations

import statistics
from collections import defaultdict
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

from offerloop.ml.base import Action, Policy
from offerloop.ml.estimators import Estimate, LoggedDecision, evaluate_all, lift


@dataclass(frozen=True, slots=True)
class LoggedRow:
    """What evaluation needs of one rewarded decision."""

    context: dict[str, Any]
    actions: list[Action]
    chosen: int
    propensity: float
    reward: float
    policy: str  # model | rules | rules_no_consent
    holdout: bool
    persona: str | None


TargetPolicy = Callable[[LoggedRow], list[float]]  # the policy's distribution over the logged candidates


def rules_only(row: LoggedRow) -> list[float]:
    return [1.0 if i == 0 else 0.0 for i in range(len(row.actions))]


def uniform(row: LoggedRow) -> list[float]:
    return [1.0 / len(row.actions)] * len(row.actions)


def popularity(rows: Sequence[LoggedRow]) -> TargetPolicy:
    """Greedy on each action's mean logged reward (a context-free baseline)."""
    means = _action_means(rows)

    def target(row: LoggedRow) -> list[float]:
        best = max(range(len(row.actions)), key=lambda i: (means.get(row.actions[i].id, 0.0), -i))
        return [1.0 if i == best else 0.0 for i in range(len(row.actions))]

    return target


def of_model(policy: Policy) -> TargetPolicy:
    def target(row: LoggedRow) -> list[float]:
        pmf = [0.0] * len(row.actions)
        for scored in policy.rank(row.context, row.actions):
            pmf[scored.index] = scored.probability
        return pmf

    return target


def _action_means(rows: Sequence[LoggedRow]) -> dict[str, float]:
    sums: dict[str, list[float]] = defaultdict(list)
    for row in rows:
        sums[row.actions[row.chosen].id].append(row.reward)
    return {k: statistics.fmean(v) for k, v in sums.items()}


def estimate(
    rows: Sequence[LoggedRow], target: TargetPolicy, *, level: float = 0.95, clip: float | None = None
) -> dict[str, Estimate]:
    """IPS, SNIPS and doubly-robust estimates of ``target``'s mean reward; DR's reward model is each
    action's mean logged reward."""
    means = _action_means(rows)
    overall = statistics.fmean(r.reward for r in rows)
    log = []
    for row in rows:
        pmf = target(row)
        predicted = [means.get(a.id, overall) for a in row.actions]
        log.append(
            LoggedDecision(
                reward=row.reward,
                propensity=row.propensity,
                target_prob=pmf[row.chosen],
                predicted_chosen=predicted[row.chosen],
                predicted_target=sum(p * q for p, q in zip(pmf, predicted, strict=True)),
            )
        )
    return evaluate_all(log, level=level, clip=clip)


def _mean(rows: Sequence[LoggedRow], level: float) -> Estimate | None:
    if len(rows) < 2:
        return None
    # The online groups are on-policy: a plain mean, as IPS with all weights 1.
    log = [LoggedDecision(reward=r.reward, propensity=1.0, target_prob=1.0) for r in rows]
    return evaluate_all(log, level=level)["ips"]


def online_lift(rows: Sequence[LoggedRow], *, level: float = 0.95) -> dict[str, Any]:
    """Mean reward of model-served vs holdout buyers, overall and by persona, with the difference's interval."""

    def compare(group: Sequence[LoggedRow]) -> dict[str, Any]:
        treated = _mean([r for r in group if r.policy == "model"], level)
        held = _mean([r for r in group if r.holdout], level)
        out: dict[str, Any] = {
            "model": treated.value if treated else None,
            "model_n": treated.n if treated else 0,
            "holdout": held.value if held else None,
            "holdout_n": held.n if held else 0,
        }
        if treated and held:
            diff, lo, hi = lift(treated, held, level=level)
            out.update(lift=diff, ci_low=lo, ci_high=hi)
        return out

    by_persona: dict[str, list[LoggedRow]] = defaultdict(list)
    for row in rows:
        by_persona[row.persona or "unknown"].append(row)
    return {"overall": compare(rows), "by_persona": {p: compare(g) for p, g in sorted(by_persona.items())}}
