"""The console's own read models: a team member and the signed-in browser."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel

Role = Literal["owner", "reviewer", "analyst"]
ROLES: tuple[Role, ...] = ("owner", "reviewer", "analyst")


class UserRead(BaseModel):
    id: str
    workspace_id: str
    email: str
    role: Role
    created_at: datetime


class SignedIn(BaseModel):
    """Who is behind a console request, and the CSRF token their forms must send back."""

    user_id: str
    workspace_id: str
    email: str
    role: Role
    csrf_token: str
    session_hash: str


class NewSession(BaseModel):
    token: str  # goes to the cookie, never stored
    signed_in: SignedIn
    expires_at: datetime
