"""Pydantic I/O of the webhook channel: endpoints (the secret shown at creation and rotation only), deliveries
and their attempts."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal

from pydantic import BaseModel, ConfigDict, Field, StringConstraints

EventType = Annotated[
    str,
    StringConstraints(min_length=1, max_length=120, pattern=r"^[A-Za-z0-9_.:-]+(\.\*)?$|^\*$"),
]
DeliveryStatus = Literal["pending", "delivered", "failed"]


class EndpointCreate(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: str = Field(max_length=2048, description="http(s) URL that receives the POSTs; no credentials in it")
    description: str = Field(default="", max_length=500)
    enabled: bool = True
    event_types: list[EventType] = Field(
        default_factory=list, max_length=100,
        description="Event types to send (`order.paid`, or a prefix like `order.*`); empty or `*`: all",
    )  # fmt: skip


class EndpointUpdate(BaseModel):
    """Only the fields given change."""

    model_config = ConfigDict(extra="forbid")

    url: str | None = Field(default=None, max_length=2048)
    description: str | None = Field(default=None, max_length=500)
    enabled: bool | None = None
    event_types: list[EventType] | None = Field(default=None, max_length=100)


class EndpointRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    url: str
    description: str
    enabled: bool
    event_types: list[str]
    disabled_reason: str | None = Field(
        description="Why offerloop disabled it (e.g. the receiver answered 410)"
    )
    created_at: datetime
    updated_at: datetime


class EndpointWithSecret(EndpointRead):
    """An endpoint with its signing secret: answered only at creation and on rotation."""

    secret: str = Field(description="`whsec_…`: HMAC-SHA256 key of the `Offerloop-Signature` header")


class AttemptRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    number: int
    trigger: Literal["schedule", "replay"]
    at: datetime
    duration_ms: int
    status_code: int | None
    response_excerpt: str | None = Field(
        description="The start of the receiver's answer (at most 500 characters)"
    )
    error: str | None
    succeeded: bool


class DeliveryRead(BaseModel):
    id: str
    endpoint_id: str
    event_id: str = Field(
        description="Sent as `Offerloop-Event-Id` and as the body's `id`; the same on replay"
    )
    event_type: str
    idempotency_key: str
    status: DeliveryStatus
    attempts: int
    created_at: datetime
    first_attempt_at: datetime | None
    next_attempt_at: datetime | None
    delivered_at: datetime | None
    last_status_code: int | None
    last_error: str | None
    log: list[AttemptRead] = Field(description="The latest attempts, newest first (at most 50)")


class ReplayQueued(BaseModel):
    delivery_id: str
    event_id: str
    queued: bool = True
