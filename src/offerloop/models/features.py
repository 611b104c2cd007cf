"""Per-buyer feature state and micro-persona, kept fresh as events are committed."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Boolean, Float, ForeignKey, Index, Integer, String, false
from sqlalchemy.orm import Mapped, mapped_column

from offerloop.db.base import Base
from offerloop.db.types import BigIntPK, JSONType, UTCDateTime


class BuyerFeatures(Base):
    """The incremental feature state of one buyer (see features.state for its layout)."""

    __tablename__ = "buyer_features"
    __table_args__ = (
        Index(None, "workspace_id", "event_at"),
    )  # health: buyers by the time of their last event

    buyer_id: Mapped[str] = mapped_column(ForeignKey("buyers.id", ondelete="CASCADE"), primary_key=True)
    workspace_id: Mapped[str] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    state: Mapped[dict[str, Any]] = mapped_column(JSONType)
    spec_version: Mapped[int] = mapped_column(Integer)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    # The event time of the buyer's latest event, each event's time bounded by when it was received (a client
    # clock claiming the future cannot hold a buyer in "now"); None until an event is folded in.
    event_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    # The highest event seq folded into ``state``: a consumer skips events at or below it, so an event
    # seen again (a replay, or a merged buyer's event read late in another partition) counts once.
    applied_seq: Mapped[int] = mapped_column(BigInteger, default=0, server_default="0")
    # Set by identity resolution when this buyer absorbed another: the next batch rebuilds the state
    # from every stored event of the buyer instead of folding events in.
    rebuild: Mapped[bool] = mapped_column(Boolean, default=False, server_default=false())


class BuyerPersona(Base):
    """The current persona posterior of one buyer."""

    __tablename__ = "buyer_personas"
    __table_args__ = (Index(None, "workspace_id", "persona"),)

    buyer_id: Mapped[str] = mapped_column(ForeignKey("buyers.id", ondelete="CASCADE"), primary_key=True)
    workspace_id: Mapped[str] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    persona: Mapped[str] = mapped_column(String(64))
    confidence: Mapped[float] = mapped_column(Float)
    posterior: Mapped[dict[str, float]] = mapped_column(JSONType)
    reasons: Mapped[list[dict[str, Any]]] = mapped_column(JSONType)
    templates_version: Mapped[int] = mapped_column(Integer)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class PersonaChange(Base):
    """Every change of a buyer's persona, for persona conversion velocity."""

    __tablename__ = "persona_history"
    __table_args__ = (
        Index(None, "workspace_id", "at"),
        Index(None, "workspace_id", "buyer_id", "at"),
        # analytics: each buyer's first assignment to each persona, read in index order
        Index(None, "workspace_id", "buyer_id", "to_persona", "at"),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    workspace_id: Mapped[str] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    buyer_id: Mapped[str] = mapped_column(String(40))
    from_persona: Mapped[str | None] = mapped_column(String(64), nullable=True)
    to_persona: Mapped[str] = mapped_column(String(64))
    confidence: Mapped[float] = mapped_column(Float)
    at: Mapped[datetime] = mapped_column(UTCDateTime())
