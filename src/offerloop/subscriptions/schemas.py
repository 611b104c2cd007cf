"""Pydantic I/O of the subscriptions domain."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

Status = Literal["incomplete", "trialing", "active", "past_due", "paused", "canceled"]
Action = Literal["renew", "payment_failed", "payment_succeeded", "pause", "resume", "cancel", "change_plan"]


class SubscriptionActionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    action: Action
    plan: str | None = Field(
        default=None, max_length=120, description="change_plan: the new plan's offer key"
    )
    at_period_end: bool = Field(default=True, description="cancel: at the period's end (else now)")
    at: AwareDatetime | None = Field(
        default=None,
        description="When it happens (default: now). Not before the subscription's last recorded change, nor "
        "after both now and the current period's end (422)",
    )


class SubscriptionState(BaseModel):
    """The lifecycle state (``subscriptions.lifecycle.Subscription``): period, trial, retries, quotas."""

    plan: str
    currency: str
    amount: int = Field(description="Per interval, minor units")
    interval: str
    state: Status
    started_at: datetime | None = None
    current_period_start: datetime | None = None
    current_period_end: datetime | None = None
    anchor_day: int | None = None
    trial_end: datetime | None = None
    failed_attempts: int = 0
    past_due_since: datetime | None = None
    next_retry_at: datetime | None = None
    cancel_at_period_end: bool = False
    paused_at: datetime | None = None
    paused_by: Literal["creator", "buyer"] | None = Field(
        default=None, description="Who paused it: a creator's pause is resumed by the creator only"
    )
    paused_from: Status | None = Field(
        default=None,
        description="The state a pause the payment provider reported was made in, when not active",
    )
    canceled_at: datetime | None = None
    quotas: dict[str, int] = Field(default_factory=dict)
    quota_used: dict[str, int] = Field(default_factory=dict)
    retry_days: list[int] = Field(default_factory=list)


class SubscriptionRead(BaseModel):
    """A buyer's subscription to a plan and its lifecycle state."""

    id: str
    buyer_id: str
    order_id: str = Field(description="The checkout that started it")
    offer_key: str = Field(description="The plan it is on now")
    status: Status
    state: SubscriptionState
    provider_subscription_id: str | None
    created_at: datetime
