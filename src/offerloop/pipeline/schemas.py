"""The pipeline's HTTP answers."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

from offerloop.core.pages import Page


class ConsumerStatus(BaseModel):
    name: str
    stage: Literal["identity", "buyer"]
    head_seq: int = Field(description="The workspace's last appended sequence number")
    checkpoint: int = Field(description="Every event of the workspace up to here is done by this consumer")
    lag: int = Field(description="Events appended but not yet done by this consumer")
    parked: int = Field(description="Events this consumer parked (open)")


class PipelineStatus(BaseModel):
    head_seq: int
    consumers: list[ConsumerStatus]


class ParkedRead(BaseModel):
    id: int
    consumer: str
    seq: int
    message_id: str
    error: str
    attempts: int
    parked_at: datetime
    status: Literal["parked", "replayed"]
    resolved_at: datetime | None


class ParkedPage(Page[ParkedRead]):
    """Parked events, newest first."""


class ParkedReplay(BaseModel):
    id: int
    status: Literal["parked", "replayed"]
    error: str | None = Field(
        default=None, description="Why the replay failed again (the event stays parked)"
    )
