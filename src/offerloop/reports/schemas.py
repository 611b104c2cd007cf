"""Each report's parameters (their canonical JSON is the snapshot's key) and results."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field

from offerloop.analytics.ltv_schemas import TimeUnit
from offerloop.analytics.schemas import CohortBy
from offerloop.attribution.schemas import AttributionRead, Model


class Params(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class VelocityParams(Params):
    kind: Literal["velocity"] = "velocity"


class PersonaTimelineParams(Params):
    kind: Literal["personas"] = "personas"
    bucket: Literal["day", "week"] = "week"
    periods: int = Field(default=12, ge=1, le=366)


class EvaluationParams(Params):
    kind: Literal["evaluation"] = "evaluation"
    placement: str | None = Field(default=None, min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$")
    days: int = Field(default=28, ge=1, le=365)


class AttributionParams(Params):
    kind: Literal["attribution"] = "attribution"
    model: Model = "markov"
    start: date | None = None
    end: date | None = None


class CohortParams(Params):
    kind: Literal["cohorts"] = "cohorts"
    by: CohortBy = "first_purchase_month"
    periods: int = Field(default=12, ge=1, le=24)


class LTVParams(Params):
    kind: Literal["ltv"] = "ltv"
    calibration_end: date
    observation_end: date | None = None
    time_unit: TimeUnit = "week"


AnyParams = Annotated[
    VelocityParams | PersonaTimelineParams | EvaluationParams | AttributionParams | CohortParams | LTVParams,
    Field(discriminator="kind"),
]


class AttributionPair(BaseModel):
    """One model's credit over [start, end), by channel and by post (content)."""

    start: date
    end: date
    channel: AttributionRead
    content: AttributionRead
