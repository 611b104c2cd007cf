"""The event log (with its exactly-once index), parked events, quarantined (refused) events and
marketing touchpoints."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Boolean, Float, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from offerloop.db.base import Base
from offerloop.db.types import BigIntPK, JSONType, UTCDateTime


class Event(Base):
    """One appended event. ``id`` is its sequence number in the log (consumers checkpoint on it).

    On PostgreSQL the table is partitioned by month of ``received_at`` (its primary key is then
    ``(id, received_at)``); exactly-once by messageId lives in ``event_dedup``, which is not partitioned.
    """

    __tablename__ = "events"
    __table_args__ = (
        Index(None, "buyer_id", "timestamp"),
        # The consumers' reads: a workspace's log after a checkpoint, and one buyer partition of it.
        Index(None, "workspace_id", "id"),
        Index(None, "workspace_id", "part", "id"),
        # The analytics domain's read of purchase events (imported orders) by name and time.
        Index(None, "workspace_id", "name", "timestamp"),
        Index(None, "workspace_id", "received_at", "buyer_id"),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    workspace_id: Mapped[str] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    message_id: Mapped[str] = mapped_column(String(255))
    type: Mapped[str] = mapped_column(String(16))
    name: Mapped[str | None] = mapped_column(String(255), nullable=True)
    buyer_id: Mapped[str | None] = mapped_column(String(40), nullable=True)
    user_id: Mapped[str | None] = mapped_column(String(255), nullable=True)
    anonymous_id: Mapped[str | None] = mapped_column(String(255), nullable=True)
    group_id: Mapped[str | None] = mapped_column(String(255), nullable=True)
    previous_id: Mapped[str | None] = mapped_column(String(255), nullable=True)
    # timestamp is the skew-corrected event time; the client's own values are kept beside it.
    timestamp: Mapped[datetime] = mapped_column(UTCDateTime())
    original_timestamp: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime())
    properties: Mapped[dict[str, Any] | None] = mapped_column(JSONType, nullable=True)
    traits: Mapped[dict[str, Any] | None] = mapped_column(JSONType, nullable=True)
    context: Mapped[dict[str, Any] | None] = mapped_column(JSONType, nullable=True)
    weight: Mapped[float] = mapped_column(Float, default=1.0)
    confidence: Mapped[float] = mapped_column(Float, default=1.0)
    high_signal: Mapped[bool] = mapped_column(Boolean, default=False)
    suppressed: Mapped[bool] = mapped_column(Boolean, default=False)
    # The buyer partition (stable hash of buyer_id), set by the identity stage with buyer_id and kept when
    # a merge repoints the row, so a buyer-stage consumer never sees an event twice or out of order.
    part: Mapped[int | None] = mapped_column(Integer, nullable=True)


class EventDedup(Base):
    """Exactly once: a messageId is appended once per workspace, at any distance in time."""

    __tablename__ = "event_dedup"

    workspace_id: Mapped[str] = mapped_column(
        ForeignKey("workspaces.id", ondelete="CASCADE"), primary_key=True
    )
    message_id: Mapped[str] = mapped_column(String(255), primary_key=True)


class ParkedEvent(Base):
    """An event a consumer failed on K times: kept with the error, skipped by that consumer, replayable."""

    __tablename__ = "parked_events"
    __table_args__ = (
        UniqueConstraint("workspace_id", "consumer", "seq"),
        Index(None, "workspace_id", "status", "id"),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    consumer: Mapped[str] = mapped_column(String(64))
    workspace_id: Mapped[str] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    seq: Mapped[int] = mapped_column(BigInteger)
    message_id: Mapped[str] = mapped_column(String(255))
    error: Mapped[str] = mapped_column(Text)
    attempts: Mapped[int] = mapped_column(Integer)
    parked_at: Mapped[datetime] = mapped_column(UTCDateTime())
    status: Mapped[str] = mapped_column(String(16), default="parked")  # parked | replayed
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class PipelineOrigin(Base):
    """Where a workspace's consumers start: events up to ``seq`` were processed inline before the log
    existed (the migration), so a consumer created later does not apply them a second time."""

    __tablename__ = "pipeline_origin"

    workspace_id: Mapped[str] = mapped_column(
        ForeignKey("workspaces.id", ondelete="CASCADE"), primary_key=True
    )
    seq: Mapped[int] = mapped_column(BigInteger)
    # Buyer partitions of the workspace's log, fixed at its first event (see pipeline.runner.partitions_for).
    partitions: Mapped[int | None] = mapped_column(Integer, nullable=True)


class QuarantinedEvent(Base):
    """An event that was refused, kept with a machine-readable reason until fixed and replayed."""

    __tablename__ = "quarantine"
    __table_args__ = (Index(None, "workspace_id", "status", "received_at"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    workspace_id: Mapped[str] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    received_at: Mapped[datetime] = mapped_column(UTCDateTime())
    reason_code: Mapped[str] = mapped_column(String(64))
    reason: Mapped[str] = mapped_column(Text)
    details: Mapped[Any] = mapped_column(JSONType, nullable=True)
    # The event as sent when it was JSON; otherwise the raw text (cut to the size limit).
    payload: Mapped[Any] = mapped_column(JSONType, nullable=True)
    raw: Mapped[str | None] = mapped_column(Text, nullable=True)
    message_id: Mapped[str | None] = mapped_column(String(255), nullable=True)
    # Kept beside the payload so a buyer's erasure can find their refused events too.
    user_id: Mapped[str | None] = mapped_column(String(255), nullable=True, index=True)
    anonymous_id: Mapped[str | None] = mapped_column(String(255), nullable=True, index=True)
    status: Mapped[str] = mapped_column(String(16), default="open")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    resolved_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class Touchpoint(Base):
    __tablename__ = "touchpoints"
    __table_args__ = (Index(None, "workspace_id", "buyer_id", "occurred_at"), Index(None, "event_id"))

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    workspace_id: Mapped[str] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    buyer_id: Mapped[str | None] = mapped_column(String(40), nullable=True)
    # No foreign key: on PostgreSQL events is partitioned and its key is (id, received_at).
    event_id: Mapped[int] = mapped_column(BigIntPK)
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime())
    channel: Mapped[str] = mapped_column(String(16))
    source: Mapped[str | None] = mapped_column(String(200), nullable=True)
    medium: Mapped[str | None] = mapped_column(String(200), nullable=True)
    campaign: Mapped[str | None] = mapped_column(String(200), nullable=True)
    content: Mapped[str | None] = mapped_column(String(200), nullable=True)
    term: Mapped[str | None] = mapped_column(String(200), nullable=True)
    click_id_type: Mapped[str | None] = mapped_column(String(16), nullable=True)
    click_id: Mapped[str | None] = mapped_column(String(255), nullable=True)
    referrer_host: Mapped[str | None] = mapped_column(String(255), nullable=True)
    landing_url: Mapped[str | None] = mapped_column(Text, nullable=True)
    flags: Mapped[list[str]] = mapped_column(JSONType, default=list)
