"""An experiment's results from the rows its repository read (no SQL here).

Per exposed buyer, measured from their first exposure ``t``:

- converted: a conversion event (name and conditions) in ``[t, t + window_days]``; revenue: the sum of
  its numeric revenue property over those events (minor units; zeros for everyone else);
- retained: any event at or after ``t + retention_days`` (only buyers exposed that long ago count);
- guardrail: an event of the guardrail's name and conditions in the conversion window;
- covariate (CUPED): in ``[t - pre_period_days, t)``, the revenue as above or the number of events.

Each variant is compared with the control (the first arm); p-values of one metric are Holm-adjusted over
the variants.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import numpy as np

from offerloop.core import money
from offerloop.experiments.schemas import (
    ArmResult,
    BayesRead,
    CupedRead,
    Difference,
    ExperimentRead,
    ExperimentResults,
    GuardrailIn,
    GuardrailResult,
    Metrics,
    PersonaArm,
    PersonaResult,
    SampleRatioRead,
    VariantResult,
)
from offerloop.ml import experiments as stats

ALPHA = 0.05


@dataclass
class _Buyer:
    arm: str
    exposed_at: datetime
    persona: str | None
    converted: bool = False
    revenue: float = 0.0
    pre: float = 0.0
    retained: bool | None = None
    guards: set[str] = field(default_factory=set)


def window(first: datetime, latest: datetime, metrics: Metrics) -> tuple[datetime, datetime]:
    """The span of event times any exposed buyer's metrics can read."""
    return (
        first - timedelta(days=metrics.pre_period_days),
        latest + timedelta(days=metrics.conversion.window_days),
    )


def _number(properties: dict[str, Any], name: str) -> float:
    """An order's revenue in minor units, read as attribution reads it (``core.money.reported_number``): a
    finite number within ±10^15, rounded to a whole minor unit; anything else, or a negative total, is 0."""
    return float(money.reported_minor(money.reported_number(properties.get(name))))


def _buyers(
    metrics: Metrics, guardrails: list[GuardrailIn], exposed: Sequence[tuple[str, str, datetime, str | None]],
    events: Sequence[tuple[str, str, datetime, dict[str, Any] | None]], last_event: dict[str, datetime],
    pre_events: Sequence[tuple[str, datetime]], now: datetime,
) -> dict[str, _Buyer]:  # fmt: skip
    buyers = {b: _Buyer(arm, at, persona) for b, arm, at, persona in exposed}
    conv = metrics.conversion
    span, pre = timedelta(days=conv.window_days), timedelta(days=metrics.pre_period_days)
    for buyer_id, name, at, properties in events:
        buyer = buyers.get(buyer_id)
        if buyer is None:
            continue
        props = properties or {}
        start = buyer.exposed_at
        if name == conv.event and conv.where.holds(props):
            if start <= at <= start + span:
                buyer.converted = True
                buyer.revenue += _number(props, metrics.revenue_property)
            elif metrics.covariate == "revenue" and start - pre <= at < start:
                buyer.pre += _number(props, metrics.revenue_property)
        for guard in guardrails:
            if name == guard.event and start <= at <= start + span and guard.where.holds(props):
                buyer.guards.add(guard.key)
    for buyer_id, at in pre_events:
        buyer = buyers.get(buyer_id)
        if buyer is not None and buyer.exposed_at - pre <= at < buyer.exposed_at:
            buyer.pre += 1
    keep = timedelta(days=metrics.retention_days)
    for buyer_id, buyer in buyers.items():
        if buyer.exposed_at + keep <= now:
            latest = last_event.get(buyer_id)
            buyer.retained = latest is not None and latest >= buyer.exposed_at + keep
    return buyers


def _diff(c: stats.Comparison | None) -> Difference | None:
    if c is None:
        return None
    return Difference(control=c.control, variant=c.variant, difference=c.difference, relative=c.relative,
                      ci_low=c.low, ci_high=c.high, p_value=c.p_value)  # fmt: skip


def _holm(diffs: list[Difference | None]) -> None:
    """Holm-adjust the p-values of one metric over the variants, in place."""
    present = [d for d in diffs if d is not None]
    for d, adjusted in zip(present, stats.holm([d.p_value for d in present]), strict=True):
        d.p_value_holm = adjusted
        d.significant = adjusted < ALPHA


def _bayes(b: stats.Bayes) -> BayesRead:
    return BayesRead(chance_to_beat_control=b.chance_to_beat_control,
                     expected_loss_variant=b.expected_loss_variant, expected_loss_control=b.expected_loss_control)  # fmt: skip


def _rate(hits: int, n: int) -> float | None:
    return hits / n if n else None


class _Arm:
    """One arm's buyers as arrays."""

    def __init__(self, buyers: list[_Buyer]) -> None:
        self.n = len(buyers)
        self.converted = np.array([b.converted for b in buyers], dtype=float)
        self.revenue = np.array([b.revenue for b in buyers], dtype=float)
        self.pre = np.array([b.pre for b in buyers], dtype=float)
        eligible = [b for b in buyers if b.retained is not None]
        self.eligible, self.retained = len(eligible), sum(1 for b in eligible if b.retained)
        self._buyers = buyers
        self.conversions = int(self.converted.sum())

    def guards(self, key: str) -> int:
        return sum(1 for b in self._buyers if key in b.guards)

    def result(self, arm: str) -> ArmResult:
        return ArmResult(
            arm=arm, exposed=self.n, conversions=self.conversions, conversion_rate=_rate(self.conversions, self.n),
            revenue_minor=round(float(self.revenue.sum())),
            revenue_per_buyer=float(self.revenue.mean()) if self.n else None,
            retention_eligible=self.eligible, retained=self.retained, retention_rate=_rate(self.retained, self.eligible),
        )  # fmt: skip


def _guardrail(guard: GuardrailIn, control: _Arm, variant: _Arm) -> GuardrailResult:
    hits_c, hits_v = control.guards(guard.key), variant.guards(guard.key)
    diff = _diff(stats.proportions(hits_c, control.n, hits_v, variant.n))
    change = 0.0 if diff is None else diff.difference
    worse_by = change if guard.worse == "higher" else -change
    return GuardrailResult(
        key=guard.key, event=guard.event, worse=guard.worse, threshold=guard.threshold,
        control_rate=_rate(hits_c, control.n) or 0.0, variant_rate=_rate(hits_v, variant.n) or 0.0,
        difference=diff, breached=worse_by > guard.threshold,
    )  # fmt: skip


def _srm(arms: list[str], weights: list[float], groups: dict[str, _Arm]) -> SampleRatioRead | None:
    s = stats.srm([groups[a].n for a in arms], weights)
    if s is None:
        return None
    return SampleRatioRead(
        observed=dict(zip(arms, s.observed, strict=True)), expected=dict(zip(arms, s.expected, strict=True)),
        chi2=s.chi2 if np.isfinite(s.chi2) else None, p_value=s.p_value, mismatch=s.mismatch,
    )  # fmt: skip


def _personas(arms: list[str], buyers: dict[str, _Buyer]) -> list[PersonaResult]:
    by_persona: dict[str | None, dict[str, list[_Buyer]]] = defaultdict(lambda: {a: [] for a in arms})
    for buyer in buyers.values():
        by_persona[buyer.persona][buyer.arm].append(buyer)
    out = []
    for persona in sorted(by_persona, key=lambda p: (p is None, p or "")):
        groups = {a: _Arm(bs) for a, bs in by_persona[persona].items()}
        control = groups[arms[0]]
        out.append(PersonaResult(
            persona=persona,
            arms=[PersonaArm(arm=a, exposed=g.n, conversions=g.conversions, conversion_rate=_rate(g.conversions, g.n),
                             revenue_per_buyer=float(g.revenue.mean()) if g.n else None) for a, g in groups.items()],
            conversion={a: _diff(stats.proportions(control.conversions, control.n, groups[a].conversions, groups[a].n))
                        for a in arms[1:]},
        ))  # fmt: skip
    return out


def compute(
    *, experiment: ExperimentRead, metrics: Metrics, guardrails: list[GuardrailIn],
    exposed: Sequence[tuple[str, str, datetime, str | None]],
    events: Sequence[tuple[str, str, datetime, dict[str, Any] | None]], last_event: dict[str, datetime],
    pre_events: Sequence[tuple[str, datetime]], now: datetime,
) -> ExperimentResults:  # fmt: skip
    arms = [a.key for a in experiment.arms]
    buyers = _buyers(metrics, guardrails, exposed, events, last_event, pre_events, now)
    by_arm: dict[str, list[_Buyer]] = {a: [] for a in arms}
    for buyer in buyers.values():
        by_arm.setdefault(buyer.arm, []).append(buyer)  # an arm since removed still shows
    groups = {a: _Arm(bs) for a, bs in by_arm.items()}
    control = groups[arms[0]]
    variants: list[VariantResult] = []
    theta_conv: dict[str, float] = {}
    theta_rev: dict[str, float] = {}
    for arm in arms[1:]:
        v = groups[arm]
        conv_cuped, theta_conv[arm] = stats.cuped(control.converted, control.pre, v.converted, v.pre)
        rev_cuped, theta_rev[arm] = stats.cuped(control.revenue, control.pre, v.revenue, v.pre)
        revenue_bayes = stats.normal_means(control.revenue, v.revenue)
        variants.append(VariantResult(
            arm=arm,
            conversion=_diff(stats.proportions(control.conversions, control.n, v.conversions, v.n)),
            conversion_cuped=_diff(conv_cuped),
            revenue_per_buyer=_diff(stats.welch(control.revenue, v.revenue)),
            revenue_per_buyer_cuped=_diff(rev_cuped),
            retention=_diff(stats.proportions(control.retained, control.eligible, v.retained, v.eligible)),
            bayes_conversion=_bayes(stats.beta_binomial(control.conversions, control.n, v.conversions, v.n))
            if control.n and v.n else None,  # an arm nobody saw: its posterior is the prior, no evidence
            bayes_revenue_per_buyer=_bayes(revenue_bayes) if revenue_bayes is not None else None,
            guardrails=[_guardrail(g, control, v) for g in guardrails],
        ))  # fmt: skip
    for metric in (
        "conversion",
        "conversion_cuped",
        "revenue_per_buyer",
        "revenue_per_buyer_cuped",
        "retention",
    ):
        _holm([getattr(v, metric) for v in variants])
    return ExperimentResults(
        experiment=experiment.key, status=experiment.status, control=arms[0], computed_at=now,
        exposed=len(buyers), arms=[g.result(a) for a, g in groups.items()], variants=variants,
        srm=_srm(arms, [a.weight for a in experiment.arms], groups),
        cuped=CupedRead(covariate=metrics.covariate, pre_period_days=metrics.pre_period_days,
                        theta_conversion=theta_conv, theta_revenue=theta_rev),
        personas=_personas(arms, buyers),
    )  # fmt: skip
