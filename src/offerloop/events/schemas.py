from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, Field

from offerloop.core.pages import Page


@dataclass(slots=True)
class ItemResult:
    index: int
    status: Literal["accepted", "duplicate", "quarantined"]
    message_id: str | None
    code: str | None = None
    message: str | None = None
    quarantine_id: str | None = None


@dataclass(slots=True)
class IngestResult:
    items: list[ItemResult] = field(default_factory=list)
    accepted: int = 0
    duplicates: int = 0
    quarantined: int = 0
    merges: int = 0
    conflicts: int = 0
    suppressed: int = 0


class ItemError(BaseModel):
    index: int = Field(description="Position of the event in the batch")
    messageId: str | None
    code: str
    message: str
    quarantine_id: str | None


class IngestResponse(BaseModel):
    success: bool = True
    accepted: int
    duplicates: int
    quarantined: int
    errors: list[ItemError] = Field(default_factory=list, description="One entry per refused event")

    model_config = {
        "json_schema_extra": {
            "examples": [
                {
                    "success": True,
                    "accepted": 2,
                    "duplicates": 1,
                    "quarantined": 1,
                    "errors": [
                        {
                            "index": 3,
                            "messageId": "m-4",
                            "code": "missing_event_name",
                            "message": "track needs an event name",
                            "quarantine_id": "qev_01jd3x0y2z3abcdefghjkmnpqr",
                        }
                    ],
                }
            ]
        }
    }


class QuarantineRead(BaseModel):
    id: str
    received_at: datetime
    reason_code: str
    reason: str
    details: Any
    payload: Any
    raw: str | None
    message_id: str | None
    status: str
    attempts: int
    resolved_at: datetime | None


class QuarantinePage(Page[QuarantineRead]):
    """Refused events, newest first."""


class ReplayRequest(BaseModel):
    payload: dict[str, Any] | None = Field(
        default=None, description="A corrected event; omit to replay the stored payload as it is"
    )


class ReplayResult(BaseModel):
    id: str
    status: str = Field(description="replayed, duplicate (already stored) or open (still refused)")
    message_id: str | None
    code: str | None = None
    message: str | None = None


class SignalDefault(BaseModel):
    weight: float
    confidence: float


class SignalConfigRead(BaseModel):
    """The workspace's signal weighting rules, as plain data that can be sent back to ``PUT /v1/signals``."""

    threshold: float
    default: SignalDefault
    rules: list[dict[str, Any]] = Field(description="In order; the first rule that matches an event wins")


class SignalConfigStored(BaseModel):
    version: int
    config: SignalConfigRead


class Overview(BaseModel):
    """What a creator wants to see first; each count list is ``[name, count]`` pairs, largest first."""

    buyers: int
    identified: int
    merges: int
    conflicts: int
    events: int
    suppressed: int
    high_signal: int
    quarantine_reasons: list[list[str | int]] = Field(description="[reason code, open refused events]")
    first_touch_channels: list[list[str | int]] = Field(description="[channel, buyers]")
    last_touch_channels: list[list[str | int]] = Field(description="[channel, buyers]")
    top_sources: list[list[str | int]] = Field(description="[utm source, buyers]")
