"""The portal's own read models: the signed-in buyer and a new session."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel


class SignedInBuyer(BaseModel):
    """Who is behind a portal request (``buyer_id`` is the live buyer: a merged one's survivor) and the CSRF
    token their forms must send back."""

    workspace_id: str
    workspace_name: str
    buyer_id: str
    email: str | None
    name: str | None
    csrf_token: str
    session_hash: str


class NewPortalSession(BaseModel):
    token: str  # goes to the cookie, never stored
    buyer_id: str
    expires_at: datetime
