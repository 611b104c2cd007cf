"""Delivery reports: what came back about a message after it was handed over (a bounce, a delay, a delivery
notice, a complaint), one row per message, kind and recipient."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import BigInteger, ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from offerloop.db.base import Base
from offerloop.db.types import BigIntPK, UTCDateTime


class DeliveryReport(Base):
    """Unique per (message, kind, recipient): the same report delivered twice is applied once."""

    __tablename__ = "delivery_reports"
    __table_args__ = (
        UniqueConstraint("workspace_id", "outbox_id", "kind", "recipient"),
        Index(None, "workspace_id", "recipient", "id"),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    workspace_id: Mapped[str] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    outbox_id: Mapped[int] = mapped_column(BigInteger)
    buyer_id: Mapped[str] = mapped_column(String(40))
    kind: Mapped[str] = mapped_column(String(12))  # hard_bounce | soft_bounce | delivered | complaint
    recipient: Mapped[str] = mapped_column(String(320))
    format: Mapped[str] = mapped_column(String(8))  # dsn | arf | plain
    action: Mapped[str | None] = mapped_column(String(16), nullable=True)
    status: Mapped[str | None] = mapped_column(String(16), nullable=True)
    diagnostic: Mapped[str | None] = mapped_column(String(500), nullable=True)
    reporter: Mapped[str | None] = mapped_column(String(255), nullable=True)
    received_at: Mapped[datetime] = mapped_column(UTCDateTime())
