"""The buyer portal's one-time sign-in links and signed-in sessions (only hashes of their tokens are kept)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from offerloop.db.base import Base
from offerloop.db.types import UTCDateTime


class PortalLoginToken(Base):
    """A magic link mailed to a buyer: the SHA-256 of its token is the key (the token itself is only in the
    e-mail); it works once (``used_at``) and until ``expires_at``."""

    __tablename__ = "portal_login_tokens"
    __table_args__ = (Index(None, "workspace_id", "buyer_id"),)

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    workspace_id: Mapped[str] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    buyer_id: Mapped[str] = mapped_column(String(40))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
    used_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class PortalSession(Base):
    """A buyer's signed-in browser: the SHA-256 of the cookie's token is the key; the CSRF token is the
    session's own. ``buyer_id`` is the buyer who signed in: each request follows it to its merge survivor."""

    __tablename__ = "portal_sessions"
    __table_args__ = (Index(None, "workspace_id", "buyer_id"),)

    id: Mapped[str] = mapped_column(String(64), primary_key=True)
    workspace_id: Mapped[str] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    buyer_id: Mapped[str] = mapped_column(String(40))
    csrf_token: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())
