"""Pydantic I/O of the attribution domain."""

from __future__ import annotations

from datetime import date
from typing import Literal

from pydantic import BaseModel, Field

Model = Literal["first", "last", "linear", "time_decay", "position", "markov", "shapley"]
Key = Literal["channel", "source", "campaign", "content"]
CreditKey = Literal["channel", "source", "campaign", "content", "persona"]


class ChannelCredit(BaseModel):
    channel: str = Field(description="The value of the grouping key (a channel, source, campaign or content)")
    conversions: float
    value: float = Field(description="Credited value, in minor units of the result's currency")
    removal_effect: float | None = Field(
        description="Markov only: 1 - P(conversion without it) / P(conversion)"
    )


class AttributionRead(BaseModel):
    model: Model
    key: Key
    currency: str | None = Field(description="The currency of `value` (conversions in others count, value 0)")
    conversions: int = Field(description="Conversions matched in the period")
    null_paths: int = Field(description="Buyers' touch sequences in the period that ended without one")
    channels: list[ChannelCredit]


class RefreshRead(BaseModel):
    models: list[Model]
    conversion: str
    start: date
    end: date
    conversions: int
    rows: int = Field(description="Credit rows written (replacing those of the same models and period)")


class CreditSum(BaseModel):
    key: str
    currency: str | None
    conversions: float
    value_minor: float


class CreditsRead(BaseModel):
    model: Model
    by: CreditKey
    credits: list[CreditSum]
