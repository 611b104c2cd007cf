"""Pydantic I/O of the analytics domain (shares are floats in [0, 1]; money is integer minor units)."""

from __future__ import annotations

from datetime import date, datetime
from typing import Literal

from pydantic import BaseModel, Field

CohortBy = Literal["first_purchase_month", "first_touch_channel", "persona"]


class Summary(BaseModel):
    """Buyers who purchased in [start, end), their revenue in one currency, and revenue per buyer."""

    buyers: int
    revenue_minor: int
    arpu_minor: int = Field(description="revenue_minor // buyers (rounded down); 0 without buyers")
    currency: str | None = Field(description="ISO 4217; null when the workspace has no purchases")
    start: datetime | None
    end: datetime | None = Field(description="exclusive")


class Retention(BaseModel):
    """Share of buyers who bought again within N days (day N included) of their first purchase."""

    repeat_within: dict[str, float | None] = Field(
        description="N -> repeaters / eligible; null when no buyer is eligible for N"
    )
    eligible: dict[str, int] = Field(description="N -> buyers whose first purchase is >= N days before as_of")
    repeaters: dict[str, int]
    buyers: int = Field(description="every buyer with a purchase up to as_of")
    as_of: date | None = Field(description="the data's end (inclusive): the last purchase day unless given")


class HoldoutGroup(BaseModel):
    buyers: int
    repeat_within: dict[str, float | None]
    eligible: dict[str, int]
    repeaters: dict[str, int]


class HoldoutRetention(BaseModel):
    """Retention of buyers the decision engine personalizes for vs its holdout group (the same stable
    per-buyer draw as /v1/decide), and the difference personalized - holdout per N."""

    personalized: HoldoutGroup
    holdout: HoldoutGroup
    delta: dict[str, float | None]
    holdout_share: float
    as_of: date | None


class Cohort(BaseModel):
    cohort: str = Field(description="first purchase month, YYYY-MM")
    segment: str | None = Field(
        description="first-touch channel or persona when grouped by one (unknown: none recorded); else null"
    )
    size: int
    active: list[float | None] = Field(
        description="share of the cohort who purchased in month 1..N after its first; null past the data's end"
    )
    revenue_minor: dict[str, int] = Field(
        description="currency -> revenue of the cohort's buyers, all months"
    )


class Cohorts(BaseModel):
    by: CohortBy
    periods: int
    as_of: date | None
    cohorts: list[Cohort]


class SurvivalPoint(BaseModel):
    days: int
    at_risk: int
    purchased: int
    censored: int
    survival: float


class PersonaVelocity(BaseModel):
    persona: str
    buyers: int = Field(description="buyers ever assigned to the persona (by their first assignment)")
    purchased: int = Field(description="of whom purchased on or after that assignment, by as_of")
    median_days: int | None = Field(
        description="first day the Kaplan-Meier survival is <= 0.5; null if never"
    )
    p75_days: int | None = Field(
        description="first day the survival is <= 0.25 (75% purchased); null if never"
    )
    survival: list[SurvivalPoint]
    ltv_minor: dict[str, int] = Field(
        description="currency -> revenue after the first assignment per assigned buyer (rounded down)"
    )
    revenue_minor: dict[str, int]


class OfferLift(BaseModel):
    """Conversion of decisions that showed persona-specific offers (persona_fit not empty) vs generic ones."""

    persona_specific_shown: int
    persona_specific_converted: int
    generic_shown: int
    generic_converted: int
    persona_specific_rate: float | None
    generic_rate: float | None
    lift: float | None = Field(description="persona_specific_rate - generic_rate")
    ci95: list[float] | None = Field(description="Wald 95% interval of the lift")


class Velocity(BaseModel):
    as_of: date | None
    personas: list[PersonaVelocity]
    offer_lift: OfferLift
