"""Delivery: journey definitions (versioned), each buyer's runs through them, the outbox of messages and the
suppression list."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Boolean, ForeignKey, Index, Integer, String, Text, UniqueConstraint, false
from sqlalchemy.orm import Mapped, mapped_column

from offerloop.db.base import Base
from offerloop.db.types import BigIntPK, JSONType, UTCDateTime


class JourneyVersion(Base):
    """One stored version of a journey; a run keeps the version it started on. ``paused`` on the newest
    version is the journey's kill switch (no new runs, no sends of running ones)."""

    __tablename__ = "journey_versions"
    __table_args__ = (
        UniqueConstraint("workspace_id", "name", "version"),
        Index(None, "workspace_id", "latest"),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    workspace_id: Mapped[str] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(64))
    version: Mapped[int] = mapped_column(Integer)
    latest: Mapped[bool] = mapped_column(Boolean, default=True)
    paused: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())
    definition: Mapped[dict[str, Any]] = mapped_column(JSONType)
    content_version: Mapped[str] = mapped_column(String(80))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class JourneyRun(Base):
    """One buyer's pass through one journey version. ``occurrence`` counts the buyer's entries into the
    journey (re-entry rules), so (journey, buyer, occurrence) names a run for ever."""

    __tablename__ = "journey_runs"
    __table_args__ = (
        UniqueConstraint("workspace_id", "journey", "buyer_id", "occurrence"),
        Index(None, "workspace_id", "buyer_id", "state"),
        Index(None, "workspace_id", "journey", "state"),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    workspace_id: Mapped[str] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    journey: Mapped[str] = mapped_column(String(64))
    version: Mapped[int] = mapped_column(Integer)
    buyer_id: Mapped[str] = mapped_column(String(40))
    occurrence: Mapped[int] = mapped_column(Integer)
    state: Mapped[str] = mapped_column(String(12))  # active | completed | converted | exited | failed
    # The next step to run, as its path in the definition ("3", "2.then.0"); None when done.
    step: Mapped[str | None] = mapped_column(String(64), nullable=True)
    due_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    # What later steps read: the trigger event, the buyer's zone, decisions taken in the run.
    context: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    trigger_message_id: Mapped[str | None] = mapped_column(String(255), nullable=True)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime())
    ended_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    end_reason: Mapped[str | None] = mapped_column(String(200), nullable=True)


class OutboxMessage(Base):
    """A message to one buyer on one channel. ``key`` (journey@version/step/buyer/occurrence) is unique per
    workspace, so a step run twice queues one message; ``message_id`` is derived from it, so a re-send after
    a crash carries the same ``Message-ID``."""

    __tablename__ = "delivery_outbox"
    __table_args__ = (
        UniqueConstraint("workspace_id", "key"),
        Index(None, "workspace_id", "buyer_id", "channel", "sent_at"),
        Index(None, "workspace_id", "status", "id"),
        Index(None, "workspace_id", "message_id"),  # a bounce or complaint names its message by Message-ID
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    workspace_id: Mapped[str] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    key: Mapped[str] = mapped_column(String(255))
    run_id: Mapped[int | None] = mapped_column(BigInteger, nullable=True)
    journey: Mapped[str | None] = mapped_column(String(64), nullable=True)
    step: Mapped[str | None] = mapped_column(String(64), nullable=True)
    buyer_id: Mapped[str] = mapped_column(String(40))
    channel: Mapped[str] = mapped_column(String(12))  # email | webhook | push | inapp
    category: Mapped[str] = mapped_column(String(16))  # transactional | marketing
    # queued | sending | sent | failed | suppressed | skipped (and for in-app: read)
    status: Mapped[str] = mapped_column(String(12))
    message_id: Mapped[str] = mapped_column(String(255))
    recipient: Mapped[str | None] = mapped_column(String(320), nullable=True)
    subject: Mapped[str | None] = mapped_column(Text, nullable=True)
    # The rendered message (text, html, data): kept so a retry re-sends exactly what was decided.
    body: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    detail: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    not_before: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    sent_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    read_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class Suppression(Base):
    """An address (or a buyer, on a channel) that must not get marketing (``scope``='marketing', e.g. an
    unsubscribe) or any message (``scope``='all', e.g. a hard bounce or a complaint)."""

    __tablename__ = "delivery_suppressions"
    __table_args__ = (UniqueConstraint("workspace_id", "channel", "address"),)

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    workspace_id: Mapped[str] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    channel: Mapped[str] = mapped_column(String(12))
    address: Mapped[str] = mapped_column(String(320))
    scope: Mapped[str] = mapped_column(String(12))  # marketing | all
    reason: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class DeliverySettings(Base):
    """A workspace's delivery rules: quiet hours, frequency caps, sender (one validated JSON document)."""

    __tablename__ = "delivery_settings"

    workspace_id: Mapped[str] = mapped_column(
        ForeignKey("workspaces.id", ondelete="CASCADE"), primary_key=True
    )
    settings: Mapped[dict[str, Any]] = mapped_column(JSONType)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class SenderDomain(Base):
    """A domain the operator allowed one workspace to send e-mail From (sender verification on a shared
    server; OFFERLOOP_SENDER_DOMAINS lists the domains every workspace may use)."""

    __tablename__ = "delivery_sender_domains"

    workspace_id: Mapped[str] = mapped_column(
        ForeignKey("workspaces.id", ondelete="CASCADE"), primary_key=True
    )
    domain: Mapped[str] = mapped_column(String(253), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
