"""The personas domain's HTTP answers."""

from __future__ import annotations

from datetime import date, datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from offerloop.core.pages import Page


class PersonaChangeRead(BaseModel):
    model_config = ConfigDict(populate_by_name=True, serialize_by_alias=True)

    from_: str | None = Field(alias="from", description="The persona before (null: the buyer's first)")
    to: str
    confidence: float
    at: datetime


class PersonaRead(BaseModel):
    """A buyer's current persona, why, and how it changed."""

    name: str
    confidence: float
    posterior: dict[str, float] = Field(description="Probability of each persona")
    reasons: list[dict[str, Any]] = Field(description="The signals that contributed, with their weights")
    templates_version: int
    updated_at: datetime
    history: list[PersonaChangeRead]


class TemplatesRead(BaseModel):
    version: int
    templates: dict[str, Any] | None = Field(description="The templates as YAML data; null when none are set")


class TemplatesStored(BaseModel):
    version: int = Field(description="The new version of the workspace's persona templates")


class PersonaCount(BaseModel):
    persona: str
    buyers: int


class PersonaCountPage(Page[PersonaCount]):
    """Personas by how many buyers hold them, most first."""


class PersonaSeries(BaseModel):
    persona: str
    held: list[int] = Field(description="Buyers holding the persona at the end of each period")
    entered: list[int] = Field(description="Buyers who entered the persona during each period")


class PersonaTimeline(BaseModel):
    """Persona counts per day or week, oldest first, rebuilt backwards from the current counts by the changes."""

    bucket: Literal["day", "week"]
    periods: list[date] = Field(description="The first UTC day of each period")
    personas: list[PersonaSeries] = Field(description="Most held now first")
