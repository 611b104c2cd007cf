"""The clock's journey triggers (one row per schedule tick and journey) and the turnaround promises of
micro-offers (one per paid order: due time, met on time or late)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, Index, Integer, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from offerloop.db.base import Base
from offerloop.db.types import BigIntPK, UTCDateTime


class JourneyTick(Base):
    """One tick of a scheduled journey: its audience is scanned a page at a time (``cursor``, the last buyer
    id seen) until ``done``. The tick is the occurrence: a scan run again finds its row and goes on."""

    __tablename__ = "journey_ticks"
    __table_args__ = (UniqueConstraint("workspace_id", "journey", "tick"),)

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    workspace_id: Mapped[str] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    journey: Mapped[str] = mapped_column(String(64))
    tick: Mapped[str] = mapped_column(String(40))  # the tick's instant (UTC) or local wall time (buyer zone)
    cursor: Mapped[str | None] = mapped_column(String(120), nullable=True)  # a buyer id, or "end|id"
    entered: Mapped[int] = mapped_column(Integer, default=0)
    done: Mapped[bool] = mapped_column(Boolean, default=False)
    started_at: Mapped[datetime] = mapped_column(UTCDateTime())
    finished_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class Promise(Base):
    """A micro-offer's promised turnaround for one paid order: ``open`` until its deliverable is ready
    (``met``, ``on_time`` or not), ``late`` once the due time passed without it (the creator is alerted),
    ``canceled`` when the order is refunded first."""

    __tablename__ = "promises"
    __table_args__ = (
        UniqueConstraint("workspace_id", "order_id"),
        Index(None, "workspace_id", "status", "id"),
        Index(None, "workspace_id", "buyer_id", "status"),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    workspace_id: Mapped[str] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    order_id: Mapped[str] = mapped_column(String(40))
    buyer_id: Mapped[str] = mapped_column(String(40))
    offer_key: Mapped[str] = mapped_column(String(120))
    policy_id: Mapped[str] = mapped_column(String(120))
    turnaround_hours: Mapped[int] = mapped_column(Integer)
    paid_at: Mapped[datetime] = mapped_column(UTCDateTime())
    due_at: Mapped[datetime] = mapped_column(UTCDateTime())
    status: Mapped[str] = mapped_column(String(12))  # open | met | late | canceled
    on_time: Mapped[bool | None] = mapped_column(Boolean, nullable=True)
    artifact_id: Mapped[str | None] = mapped_column(String(40), nullable=True)
    met_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    late_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
