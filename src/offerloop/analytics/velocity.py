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
from datetime import date, datetime
from typing import Final

import polars as pl
from sqlalchemy.orm import Session

from offerloop.analytics import repository
from offerloop.analytics.schemas import OfferLift, PersonaVelocity, SurvivalPoint, Velocity
from offerloop.analytics.service import purchases
from offerloop.core.clock import utcnow
from offerloop.offers import service as offers_service
from offerloop.offers.exceptions import OfferNotFound

Z95: Final = 1.959963984540054


def kaplan_meier(durations: Sequence[int], purchased: Sequence[bool]) -> list[SurvivalPoint]:
    """The product-limit estimate: at each distinct time t, S(t) = S(t-) * (1 - d_t / n_t), where n_t counts
    the subjects whose time is >= t (those censored at t are still at risk at t)."""
    events: dict[int, list[int]] = {}
    for t, hit in zip(durations, purchased, strict=True):
        pair = events.setdefault(int(t), [0, 0])
        pair[0 if hit else 1] += 1
    at_risk = len(durations)
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
    kinds: dict[str, bool] = {}
    keys = decisions["chosen_key"].unique().to_list()
    try:
        catalog = offers_service.catalog_for(session=session, workspace_id=workspace_id) if keys else None
    except OfferNotFound:  # no catalog loaded: no decision showed an offer
        catalog = None
    for key in keys:
        found = offers_service.from_action(catalog, key) if catalog is not None else None
        if found is not None:
            kinds[key] = bool(found[0].persona_fit)
    table = pl.DataFrame(
        {"chosen_key": list(kinds), "specific": list(kinds.values())},
        schema={"chosen_key": pl.String, "specific": pl.Boolean},
    )
    counts = (
        decisions.join(table, on="chosen_key")
        .group_by("specific")
        .agg(pl.len().alias("n"), pl.col("converted").sum().alias("k"))
    )
    got = {s: (int(n), int(k)) for s, n, k in counts.iter_rows()}
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
    assigned = repository.first_assignments(session, workspace_id)
    lift = offer_lift(session=session, workspace_id=workspace_id, now=now)
    if assigned.is_empty():
        return Velocity(as_of=as_of, personas=[], offer_lift=lift)
    bought = purchases(session=session, workspace_id=workspace_id)
    if as_of is None:
        last = [assigned["assigned_at"].max(), bought["at"].max() if not bought.is_empty() else None]
        as_of = max(d for d in last if isinstance(d, datetime)).date()
    end = pl.lit(as_of, dtype=pl.Date)
    assigned = assigned.with_columns(pl.col("assigned_at").dt.date().alias("from")).filter(
        pl.col("from") <= end
    )
    after = assigned.join(bought, on="buyer_id").filter(
        (pl.col("at") >= pl.col("assigned_at")) & (pl.col("at").dt.date() <= end)
    )
    first = after.group_by("buyer_id", "persona").agg(pl.col("at").min().dt.date().alias("bought"))
    spans = assigned.join(first, on=["buyer_id", "persona"], how="left").with_columns(
        pl.col("bought").is_not_null().alias("hit"),
        (pl.coalesce("bought", end) - pl.col("from")).dt.total_days().alias("days"),
    )
    money = after.group_by("persona", "currency").agg(pl.col("amount_minor").sum().alias("revenue"))
    revenue: dict[str, dict[str, int]] = {}
    for persona, currency, amount in money.sort("currency").iter_rows():
        revenue.setdefault(persona, {})[currency] = int(amount)
    out = []
    for (persona,), group in spans.sort("persona").group_by(["persona"], maintain_order=True):
        curve = kaplan_meier(group["days"].to_list(), group["hit"].to_list())
        buyers = group.height
        spent = revenue.get(str(persona), {})
        row = PersonaVelocity(
            persona=str(persona), buyers=buyers, purchased=int(group["hit"].sum()),
            median_days=quantile_day(curve, 0.5), p75_days=quantile_day(curve, 0.25), survival=curve,
            ltv_minor={c: v // buyers for c, v in spent.items()}, revenue_minor=spent,
        )  # fmt: skip
        out.append(row)
    return Velocity(as_of=as_of, personas=out, offer_lift=lift)
