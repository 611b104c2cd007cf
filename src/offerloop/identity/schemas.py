from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from offerloop.core.pages import Page
from offerloop.personas.schemas import PersonaRead


@dataclass(slots=True)
class IncomingEvent:
    """What the resolver needs of one accepted event (built by the events domain)."""

    type: str
    message_id: str
    user_id: str | None
    anonymous_id: str | None
    previous_id: str | None
    traits: dict[str, Any]  # buyer traits carried by the event (identify traits + context.traits)
    context: dict[str, Any] | None
    timestamp: datetime


@dataclass(slots=True)
class Resolution:
    buyer_ids: list[str]
    new_buyer: list[bool]  # True where the event created its buyer
    merges: int = 0
    conflicts: int = 0
    merged_pairs: list[tuple[str, str]] = field(default_factory=list)


class IdentityRead(BaseModel):
    kind: str
    value: str


AiRewrite = Literal["allowed", "originals_only", "reviewed_only"]


class Consent(BaseModel):
    marketing: bool | None = Field(description="May the creator send marketing? None = not stated")
    personalization: bool | None = Field(description="May offerloop personalise for this buyer?")
    ai_rewrite: AiRewrite | None = Field(
        default=None,
        description="AI-rewritten deliverables: allowed, originals_only (nothing is sent to the rewriter) or "
        "reviewed_only (rewritten versions wait for human review). None = not stated (allowed)",
    )


class ConsentUpdate(BaseModel):
    marketing: bool | None = None
    personalization: bool | None = None
    ai_rewrite: AiRewrite | None = None


class TouchpointRead(BaseModel):
    occurred_at: datetime
    channel: str
    source: str | None
    medium: str | None
    campaign: str | None
    content: str | None
    term: str | None
    click_id_type: str | None
    referrer_host: str | None
    flags: list[str]


class BuyerRead(BaseModel):
    id: str
    user_id: str | None
    traits: dict[str, Any]
    trait_updated_at: dict[str, str]
    consent: Consent
    first_seen_at: datetime
    last_seen_at: datetime
    event_count: int
    identities: list[IdentityRead]
    first_touch: TouchpointRead | None
    last_touch: TouchpointRead | None
    deleted: bool = False


class EventRead(BaseModel):
    id: int
    message_id: str
    type: str
    name: str | None
    timestamp: datetime
    received_at: datetime
    user_id: str | None
    anonymous_id: str | None
    properties: dict[str, Any] | None
    traits: dict[str, Any] | None
    context: dict[str, Any] | None
    weight: float
    confidence: float
    high_signal: bool
    suppressed: bool


class EventPage(Page[EventRead]):
    """The buyer's events, newest first."""


class MergeRead(BaseModel):
    id: str
    winner_id: str
    loser_id: str
    reason: str
    message_id: str | None
    created_at: datetime
    undone_at: datetime | None
    undone_by: str | None
    events_moved: int
    identities_moved: list[IdentityRead]


class ConflictRead(BaseModel):
    id: int
    buyer_id: str
    other_buyer_id: str
    kind: str
    value: str
    message_id: str | None
    created_at: datetime


class MergePage(Page[MergeRead]):
    """Identity merges, newest first."""


class ConflictPage(Page[ConflictRead]):
    """Refused merges, newest first."""


class BuyerState(BaseModel):
    """What a decision sees of a buyer right now."""

    buyer_id: str = Field(description="The live buyer (a merged id answers with its survivor)")
    features: dict[str, bool | int | float | str | None] = Field(description="Read at this instant")
    persona: PersonaRead | None


class BuyerExport(BaseModel):
    """Everything held on one buyer (GDPR access request)."""

    exported_at: datetime
    buyer: BuyerRead
    merged_buyer_ids: list[str] = Field(description="Buyers merged into this one; their events are included")
    events: list[EventRead]
    touchpoints: list[TouchpointRead]
    merges: list[MergeRead]
    conflicts: list[ConflictRead]


class BuyerErasure(BaseModel):
    """The erased buyer, and how many rows of each kind were deleted or anonymised."""

    model_config = ConfigDict(extra="allow", json_schema_extra={"additionalProperties": {"type": "integer"}})

    id: str
    deleted: bool
