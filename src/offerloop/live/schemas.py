"""HTTP shapes of live drops: a drop's public status, and the change an open or close made."""

from __future__ import annotations

from datetime import datetime

from pydantic import BaseModel, Field


class DropStatus(BaseModel):
    """Where a drop stands now. ``units_left`` is its inventory minus units sold and held."""

    key: str
    title: str
    state: str = Field(description="draft | scheduled | live | sold_out | closed")
    opens_at: datetime = Field(description="When it goes (or went) live: its schedule, or when it was opened")
    closes_at: datetime = Field(description="When it stops selling: the countdown's target")
    closed_at: datetime | None = Field(
        description="When the creator closed it early (null: not closed by hand)"
    )
    inventory: int
    units_left: int


class DropChanged(DropStatus):
    """The drop after an open or close; ``changed`` is false when it already was so (the call is idempotent)."""

    changed: bool
