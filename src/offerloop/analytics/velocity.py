"""Persona conversion velocity: from a buyer's FIRST assignment to a persona to their first purchase after it.

Per persona: the Kaplan-Meier survival curve of "not purchased yet" over whole UTC days since the
assignment (a purchase on the day of the assignment is day 0; a buyer who has not purchased by ``as_of`` is
censored at ``as_of``), its median and 75th percentile (the first day the survival drops to 0.5, resp.
0.25), and persona LTV (revenue of purchases on or after the assignment, per assigned buyer). Across
personas: the lift of persona-specific offers (``persona_fit`` not empty) over generic ones, as the
difference of the conversion rates of the decisions that showed them, with a Wald 95% interval.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from datetime import date, datetime, timedelta
from typing import Final

import polars as pl
from sqlalchemy.orm import Session

from offerloop.analytics import repository
from offerloop.analytics.schemas import OfferLift, PersonaVelocity, SurvivalPoint, Velocity
from offerloop.core.clock import utcnow
from offerloop.offers import service as offers_service
from offerloop.offers.exceptions import OfferNotFound

Z95: Final = 1.959963984540054
EPOCH: Final = date(1970, 1, 1)


def kaplan_meier(
    durations: Sequence[int], purchased: Sequence[bool], counts: Sequence[int] | None = None
) -> list[SurvivalPoint]:
    """The product-limit estimate: at each distinct time t, S(t) = S(t-) * (n_t - d_t) / n_t, where n_t counts
    the subjects whose time is >= t (those censored at t are still at risk at t). ``counts``: how many
    subjects each (duration, purchased) row stands for (1 each by default)."""
    events: dict[int, list[int]] = {}
    weights = counts if counts is not None else [1] * len(durations)
    for t, hit, k in zip(durations, purchased, weights, strict=True):
        pair = events.setdefault(int(t), [0, 0])
        pair[0 if hit else 1] += int(k)
    at_risk = sum(int(k) for k in weights)
    survival = 1.0
    out: list[SurvivalPoint] = []
    for t in sorted(events):
        d, c = events[t]
        if d:
            survival *= (at_risk - d) / at_risk
        out.append(SurvivalPoint(days=t, at_risk=at_risk, purchased=d, censored=c, survival=survival))
        at_risk -= d + c
    return out


def quantile_day(curve: Sequence[SurvivalPoint], level: float) -> int | None:
    """The first day the survival is at or below ``level`` (0.5: the median time to purchase)."""
    # a tolerance, so 1 - 1/2 computed through a product still counts as 0.5
    return next((p.days for p in curve if p.survival <= level + 1e-12), None)


def offer_lift(*, session: Session, workspace_id: str, now: datetime | None = None) -> OfferLift:
    """Conversion of decisions that showed a persona-specific offer vs a generic one."""
    decisions = repository.offer_decisions(session, workspace_id, now or utcnow())
    keys = decisions["chosen_key"].to_list()
    try:
        catalog = offers_service.catalog_for(session=session, workspace_id=workspace_id) if keys else None
    except OfferNotFound:  # no catalog loaded: no decision showed an offer
        catalog = None
    got: dict[bool, tuple[int, int]] = {}
    for key, shown, converted in decisions.iter_rows():
        found = offers_service.from_action(catalog, key) if catalog is not None else None
        if found is not None:
            n, k = got.get(bool(found[0].persona_fit), (0, 0))
            got[bool(found[0].persona_fit)] = (n + shown, k + converted)
    (ns, ks), (ng, kg) = got.get(True, (0, 0)), got.get(False, (0, 0))
    rs, rg = (ks / ns if ns else None), (kg / ng if ng else None)
    lift = ci = None
    if rs is not None and rg is not None:
        lift = rs - rg
        half = Z95 * math.sqrt(rs * (1 - rs) / ns + rg * (1 - rg) / ng)
        ci = [lift - half, lift + half]
    return OfferLift(
        persona_specific_shown=ns, persona_specific_converted=ks, generic_shown=ng, generic_converted=kg,
        persona_specific_rate=rs, generic_rate=rg, lift=lift, ci95=ci,
    )  # fmt: skip


def velocity(
    *, session: Session, workspace_id: str, as_of: date | None = None, now: datetime | None = None
) -> Velocity:
    """Per persona: time to first purchase after the first assignment (KM), LTV; and the offer lift."""
    lift = offer_lift(session=session, workspace_id=workspace_id, now=now)
    if not repository.any_assignment(session, workspace_id):
        return Velocity(as_of=as_of, personas=[], offer_lift=lift)
    if as_of is None:
        last = [repository.last_persona_change(session, workspace_id)]
        last_day = repository.last_day(session, workspace_id)
        days = [d.date() for d in last if isinstance(d, datetime)]
        days += [EPOCH + timedelta(days=last_day)] if last_day is not None else []
        as_of = max(days)
    end_day = (as_of - EPOCH).days
    rows = repository.assignment_spans(session, workspace_id, end_day)
    spans = (
        pl.DataFrame(rows, schema={"persona": pl.String, "days": pl.Int64, "hit": pl.Boolean, "n": pl.Int64},
                     orient="row")
        .group_by("persona", "days", "hit")
        .agg(pl.col("n").sum())
    )  # fmt: skip
    revenue: dict[str, dict[str, int]] = {}
    for persona, currency, amount in sorted(repository.persona_revenue(session, workspace_id, end_day)):
        revenue.setdefault(persona, {})[currency] = int(amount)
    out = []
    for (persona,), group in spans.sort("persona", "days").group_by(["persona"], maintain_order=True):
        curve = kaplan_meier(group["days"].to_list(), group["hit"].to_list(), group["n"].to_list())
        buyers = int(group["n"].sum())
        spent = revenue.get(str(persona), {})
        row = PersonaVelocity(
            persona=str(persona), buyers=buyers, purchased=int(group.filter(pl.col("hit"))["n"].sum()),
            median_days=quantile_day(curve, 0.5), p75_days=quantile_day(curve, 0.25), survival=curve,
            ltv_minor={c: v // buyers for c, v in spent.items()}, revenue_minor=spent,
        )  # fmt: skip
        out.append(row)
    return Velocity(as_of=as_of, personas=out, offer_lift=lift)
