"""Pydantic I/O of the delivery domain."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

Channel = Literal["email", "push", "webhook", "inapp"]
MessageStatus = Literal["queued", "sending", "sent", "read", "failed", "suppressed", "skipped"]
RunState = Literal["active", "completed", "converted", "exited", "failed"]


class JourneyIn(BaseModel):
    """A journey as YAML text, or as its JSON definition (exactly one)."""

    model_config = ConfigDict(extra="forbid")
    yaml: str | None = Field(default=None, max_length=200_000, description="The journey in YAML")
    definition: dict[str, Any] | None = Field(default=None, description="The journey as JSON")


class JourneyRead(BaseModel):
    name: str
    version: int
    paused: bool
    category: str
    trigger: str = Field(description="The event name of an event trigger; the other kinds in a few words")
    content_version: str
    created_at: datetime
    definition: dict[str, Any]


class StepCount(BaseModel):
    state: RunState
    step: str | None
    runs: int


class JourneyDetail(JourneyRead):
    runs: list[StepCount]


class RunRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    journey: str
    version: int
    buyer_id: str
    occurrence: int
    state: RunState
    step: str | None
    due_at: datetime | None
    started_at: datetime
    ended_at: datetime | None
    end_reason: str | None
    trigger_message_id: str | None


class MessageRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    journey: str | None
    step: str | None
    buyer_id: str
    channel: Channel
    category: Literal["transactional", "marketing"]
    status: MessageStatus
    message_id: str
    recipient: str | None
    subject: str | None
    attempts: int
    detail: str | None
    created_at: datetime
    not_before: datetime | None
    sent_at: datetime | None
    read_at: datetime | None


class MessageDetail(MessageRead):
    body: dict[str, Any]


class SuppressionIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    channel: Channel = "email"
    address: str = Field(min_length=1, max_length=320)
    scope: Literal["marketing", "all"] = "all"
    reason: str = Field(default="added by the creator", min_length=1, max_length=200)


class SuppressionRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    channel: Channel
    address: str
    scope: Literal["marketing", "all"]
    reason: str
    created_at: datetime


class InboxTokenIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    user_id: str | None = Field(default=None, max_length=200)
    anonymous_id: str | None = Field(default=None, max_length=200)
    ttl_s: int = Field(default=86400, ge=60, le=30 * 86400)


class InboxToken(BaseModel):
    token: str
    expires_at: datetime


class InboxItem(BaseModel):
    id: int
    title: str | None
    text: str
    url: str | None
    journey: str | None
    sent_at: datetime | None
    read_at: datetime | None


class UnsubscribeResult(BaseModel):
    unsubscribed: bool
    channel: Channel
