"""The canonical buyer, its identity graph, merges and refused merges."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from offerloop.db.base import Base
from offerloop.db.types import BigIntPK, JSONType, UTCDateTime


class Buyer(Base):
    __tablename__ = "buyers"
    __table_args__ = (
        Index(None, "workspace_id", "created_at"),
        # the buyers merged into one (its lineage: whose purchases are its own), read on every access check
        Index(None, "workspace_id", "merged_into_id"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    workspace_id: Mapped[str] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    # The one userId this buyer is known by; two buyers with different userIds are never merged.
    user_id: Mapped[str | None] = mapped_column(String(255), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    first_seen_at: Mapped[datetime] = mapped_column(UTCDateTime())
    last_seen_at: Mapped[datetime] = mapped_column(UTCDateTime())
    traits: Mapped[dict[str, Any]] = mapped_column(JSONType, default=dict)
    # trait name -> ISO time of the event that set it: a trait only moves forward in time.
    trait_times: Mapped[dict[str, str]] = mapped_column(JSONType, default=dict)
    consent_marketing: Mapped[bool | None] = mapped_column(Boolean, nullable=True)
    consent_personalization: Mapped[bool | None] = mapped_column(Boolean, nullable=True)
    # AI-rewritten deliverables: allowed | originals_only | reviewed_only (None: not stated = allowed).
    consent_ai_rewrite: Mapped[str | None] = mapped_column(String(20), nullable=True)
    event_count: Mapped[int] = mapped_column(Integer, default=0)
    merged_into_id: Mapped[str | None] = mapped_column(String(40), nullable=True)
    deleted_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class Identity(Base):
    """One identifier (kind, value) of a buyer; unique per workspace."""

    __tablename__ = "identities"
    __table_args__ = (
        UniqueConstraint("workspace_id", "kind", "value"),
        Index(None, "buyer_id"),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    workspace_id: Mapped[str] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    buyer_id: Mapped[str] = mapped_column(ForeignKey("buyers.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(32))
    value: Mapped[str] = mapped_column(String(512))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class Merge(Base):
    """An identity merge (loser folded into winner) with what is needed to undo it."""

    __tablename__ = "merges"
    __table_args__ = (
        Index(None, "workspace_id", "created_at"),
        Index(None, "workspace_id", "loser_id"),
        Index(None, "workspace_id", "winner_id"),  # analytics: a survivor's merged buyers
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    workspace_id: Mapped[str] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    winner_id: Mapped[str] = mapped_column(String(40))
    loser_id: Mapped[str] = mapped_column(String(40))
    reason: Mapped[str] = mapped_column(String(200))
    message_id: Mapped[str | None] = mapped_column(String(255), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    # identity ids and event ids moved, and both buyers' state before the merge.
    snapshot: Mapped[dict[str, Any]] = mapped_column(JSONType)
    undone_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    undone_by: Mapped[str | None] = mapped_column(String(100), nullable=True)


class IdentityConflict(Base):
    """A merge that was refused because both sides were different identified buyers."""

    __tablename__ = "identity_conflicts"
    __table_args__ = (Index(None, "workspace_id", "created_at"),)

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    workspace_id: Mapped[str] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    buyer_id: Mapped[str] = mapped_column(String(40))
    other_buyer_id: Mapped[str] = mapped_column(String(40))
    kind: Mapped[str] = mapped_column(String(32))
    value: Mapped[str] = mapped_column(String(512))
    message_id: Mapped[str | None] = mapped_column(String(255), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
