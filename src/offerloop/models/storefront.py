"""The hosted pages' checkouts: one row per buy form submitted, so a double submit makes one order."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import Boolean, ForeignKey, String
from sqlalchemy.orm import Mapped, mapped_column

from offerloop.db.base import Base
from offerloop.db.types import UTCDateTime


class StorefrontCheckout(Base):
    """A buy form's submission. The key is the SHA-256 of the thank-you token (an HMAC of the form's
    idempotency key and the visitor's CSRF cookie), so a second submit of the same form finds this row and
    a copy of the table opens no thank-you page. ``order_id`` is empty while the checkout is being made."""

    __tablename__ = "storefront_checkouts"

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    workspace_id: Mapped[str] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    offer_key: Mapped[str] = mapped_column(String(120))
    order_id: Mapped[str | None] = mapped_column(String(40), nullable=True)
    # False when the form's e-mail named a buyer already known under other identifiers than this visitor's:
    # the page then never shows their personalized deliverable (it goes to their inbox instead)
    shows_deliverable: Mapped[bool] = mapped_column(Boolean)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
