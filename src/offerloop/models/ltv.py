"""Per-buyer model scores computed in batch (the LTV fit's P(alive), expected purchases and value), read back
as buyer features at decision time."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Float, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from offerloop.db.base import Base
from offerloop.db.types import UTCDateTime


class BuyerScore(Base):
    """One named score of one buyer (e.g. ``ltv_p_alive``); a refresh replaces all scores of its names."""

    __tablename__ = "buyer_scores"

    workspace_id: Mapped[str] = mapped_column(
        ForeignKey("workspaces.id", ondelete="CASCADE"), primary_key=True
    )
    buyer_id: Mapped[str] = mapped_column(ForeignKey("buyers.id", ondelete="CASCADE"), primary_key=True)
    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[float] = mapped_column(Float)
    computed_at: Mapped[datetime] = mapped_column(UTCDateTime())
