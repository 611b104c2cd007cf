"""Fractional attribution credit stored per conversion (order), so revenue sums by any key and by persona."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Float, ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from offerloop.db.base import Base
from offerloop.db.types import UTCDateTime


class AttributionCredit(Base):
    """One conversion's share credited to one (channel, source, campaign, content) by one model.

    Missing keys are stored as ``""`` (they are part of the primary key); the shares of a conversion sum
    to 1 per model, and ``value_minor`` is the share of the conversion's value in minor units."""

    __tablename__ = "attribution_credits"
    __table_args__ = (
        Index(None, "workspace_id", "model", "converted_at"),
        Index(None, "workspace_id", "buyer_id"),
    )

    workspace_id: Mapped[str] = mapped_column(
        ForeignKey("workspaces.id", ondelete="CASCADE"), primary_key=True
    )
    model: Mapped[str] = mapped_column(String(16), primary_key=True)
    conversion: Mapped[str] = mapped_column(String(255), primary_key=True)  # the definition's event name
    conversion_id: Mapped[str] = mapped_column(String(120), primary_key=True)
    channel: Mapped[str] = mapped_column(String(16), primary_key=True)
    source: Mapped[str] = mapped_column(String(200), primary_key=True)
    campaign: Mapped[str] = mapped_column(String(200), primary_key=True)
    content: Mapped[str] = mapped_column(String(200), primary_key=True)
    buyer_id: Mapped[str] = mapped_column(String(40))
    converted_at: Mapped[datetime] = mapped_column(UTCDateTime())
    share: Mapped[float] = mapped_column(Float)
    value_minor: Mapped[float] = mapped_column(Float)
    currency: Mapped[str | None] = mapped_column(String(3), nullable=True)
