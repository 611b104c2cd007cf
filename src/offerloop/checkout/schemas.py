"""Pydantic I/O of the checkout domain: checkout requests, orders, their payments and fulfilment."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from offerloop.core.identifiers import normalize_email

OrderStatus = Literal["pending", "paid", "partially_refunded", "refunded", "canceled", "unpaid"]


class CheckoutIn(BaseModel):
    user_id: str | None = Field(default=None, max_length=200)
    anonymous_id: str | None = Field(default=None, max_length=200)
    email: str | None = Field(default=None, max_length=320)
    offer: str = Field(max_length=120)
    variant: str | None = Field(
        default=None,
        max_length=40,
        description="The offer's variant to buy (GET /v1/offers names the one chosen); omitted with a "
        "decision_id: the variant that decision presented",
    )
    currency: str = Field(default="USD", min_length=3, max_length=3)
    coupon: str | None = Field(default=None, max_length=64)
    bumps: list[str] = Field(default_factory=list, max_length=10)
    quantity: int = Field(default=1, ge=1, le=100)
    provider: Literal["manual", "stripe"] = "manual"
    decision_id: str | None = Field(
        default=None, max_length=40, description="The /v1/offers decision that presented it"
    )
    success_url: str = Field(default="https://example.invalid/thanks", max_length=2000)
    cancel_url: str = Field(default="https://example.invalid/cancel", max_length=2000)

    @field_validator("email")
    @classmethod
    def _email(cls, value: str | None) -> str | None:  # the one e-mail rule (core.identifiers)
        if value is not None and normalize_email(value) is None:
            raise ValueError(f"{value[:80]!r} is not an e-mail address")
        return None if value is None else normalize_email(value)

    @model_validator(mode="after")
    def _someone(self) -> CheckoutIn:
        if not (self.user_id or self.anonymous_id or self.email):
            raise ValueError("give user_id, anonymous_id or email")
        return self


class PaidIn(BaseModel):
    processor_fee: int | None = Field(default=None, ge=0, lt=2**62)
    reference: str | None = Field(default=None, max_length=200, description="Invoice or bank reference")


class RefundIn(BaseModel):
    amount: int | None = Field(
        default=None, ge=1, lt=2**62, description="Minor units; omit for a full refund"
    )
    reason: str | None = Field(default=None, max_length=2000)


class OrderLine(BaseModel):
    """One charged line: the offer (or a bump), its quantity and amounts in minor units."""

    model_config = ConfigDict(extra="allow")
    offer_key: str
    title: str
    role: str = Field(description="offer | bump")
    unit_amount: int
    quantity: int
    subtotal: int
    discount: int
    total: int
    interval: Literal["month", "year"] | None = Field(default=None, description="A plan's billing interval")
    trial_days: int | None = Field(default=None, description="A plan with a trial: charged at its end")
    after_trial: int | None = Field(default=None, description="What the trial turns into (minor units)")
    subscription_id: str | None = Field(default=None, description="A renewal or plan-change charge")
    reason: str | None = Field(
        default=None,
        description="first_period | renewal | proration | plan_change | paid_while_canceled (a provider's charge "
        "of a subscription canceled here: booked, granting nothing; refund it) | paid_while_paused",
    )
    variant: str | None = Field(default=None, description="The offer's variant sold (its price and bundle)")
    bundle: list[dict[str, Any]] | None = Field(default=None, description="The variant's extra components")


class OrderRead(BaseModel):
    """An order: its quote, status and payment reference. Amounts are minor units of ``currency``."""

    id: str
    buyer_id: str
    status: OrderStatus
    provider: str = Field(description="manual | stripe")
    currency: str
    subtotal: int
    discount: int
    tax: int
    total: int
    refunded: int
    coupon: str | None
    lines: list[OrderLine]
    decision_id: str | None
    checkout_url: str | None = Field(description="Stripe: the hosted checkout page to send the buyer to")
    provider_ref: str | None
    formatted_total: str
    created_at: datetime
    paid_at: datetime | None


class FulfilmentRead(BaseModel):
    """The delivery of one component of an order."""

    component: str
    ref: str
    status: str = Field(description="pending | done | canceled | failed")
    attempts: int
    last_error: str | None
    result: dict[str, Any] | None


class UpsellRead(BaseModel):
    """An offer to present next, once the order is paid."""

    model_config = ConfigDict(from_attributes=True)
    key: str
    kind: str
    title: str
    description: str | None = None
    price: int
    currency: str
    formatted: str
    interval: str | None = None
    trial_days: int | None = None


class OrderDetail(OrderRead):
    """An order with the state of each component's fulfilment and what to offer next."""

    fulfilment: list[FulfilmentRead]
    upsells: list[UpsellRead]


class PaymentEventRead(BaseModel):
    """A provider event about an order and what it did (``outcome``: paid, duplicate, amount_mismatch…)."""

    id: int
    provider: str
    provider_event_id: str
    type: str
    outcome: str
    occurred_at: datetime
    received_at: datetime


class RetryQueued(BaseModel):
    """A failed component queued again."""

    component: str
    ref: str
    status: str


class WebhookReceived(BaseModel):
    """Stripe's delivery was verified; ``outcome`` says what it did (``duplicate`` when seen before)."""

    received: bool = True
    outcome: str
    type: str
