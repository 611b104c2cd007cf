"""The answers of the operations routes (health, readiness)."""

from __future__ import annotations

from typing import Literal

from pydantic import BaseModel, Field


class Health(BaseModel):
    status: Literal["ok"]


class Readiness(BaseModel):
    status: Literal["ready", "unavailable"]
    reason: str | None = Field(default=None, description="Why the server is not ready")
    consumers: list[str] | None = Field(default=None, description="The stuck pipeline consumers")
