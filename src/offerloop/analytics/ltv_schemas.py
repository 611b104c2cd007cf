"""Pydantic I/O of the LTV fit."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from typing import Literal

from pydantic import BaseModel, Field

TimeUnit = Literal["day", "week", "month"]


@dataclass(frozen=True, slots=True)
class LTVOptions:
    """How to fit and what to predict: the time unit, the horizon (in time units), the discount rate per time
    unit and the currency (None: the workspace's most frequent)."""

    time_unit: TimeUnit = "week"
    horizon: int = 52
    discount_rate: float = 0.0
    currency: str | None = None


class BGNBDRead(BaseModel):
    r: float
    alpha: float
    a: float
    b: float
    log_likelihood: float


class GammaGammaRead(BaseModel):
    p: float
    q: float
    v: float = Field(description="The scale of the Gamma prior (the papers' gamma)")


class HoldoutBucket(BaseModel):
    """Buyers with ``frequency`` calibration repeat purchases (the last bucket: that many or more)."""

    frequency: int
    buyers: int
    actual: float = Field(description="Mean purchases in the holdout period")
    predicted: float = Field(description="Mean BG/NBD expectation for the holdout period")


class SegmentLTV(BaseModel):
    key: str
    buyers: int
    p_alive: float | None = Field(description="Mean P(alive) at the calibration end")
    expected_purchases: float | None = Field(description="Mean expected purchases over the horizon")
    expected_value_minor: float | None = Field(
        description="Mean discounted value over the horizon, minor units"
    )
    total_value_minor: float | None = Field(description="Sum of the discounted values over the horizon")


class LTVRead(BaseModel):
    bgnbd: BGNBDRead
    gamma_gamma: GammaGammaRead
    buyers: int = Field(description="Buyers whose first purchase is on or before the calibration end")
    repeat_buyers: int = Field(description="Buyers with a repeat purchase in the calibration period")
    calibration_end: date
    observation_end: date | None = Field(
        description="End of the holdout period (inclusive), when there is one"
    )
    time_unit: TimeUnit
    horizon: int
    discount_rate: float
    currency: str
    holdout: list[HoldoutBucket] = Field(description="Predicted vs actual holdout purchases by frequency")
    by_persona: list[SegmentLTV]
    by_channel: list[SegmentLTV] = Field(description="By the channel of the buyer's first touchpoint")
    warnings: list[str] = Field(
        default_factory=list,
        description="Parameters the optimiser left at a bound (the fit is then a limit model)",
    )


class LTVRefreshRead(LTVRead):
    written: int = Field(description="Buyers whose ltv_* features were written")
    features: list[str]
