"""The content domain's HTTP answers: atoms of the corpus, sync reports, intake quizzes."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, ConfigDict, Field

from offerloop.core.pages import Page


class AtomSummary(BaseModel):
    """An atom's front matter (no body)."""

    id: str
    version: str = Field(description="Content hash: a changed atom gets a new version")
    title: str
    kind: str
    tags: list[str]
    level: int
    persona_fit: list[str]
    outcome: str | None
    minutes: int | None
    source: str | None
    licence: str | None
    ai_rewrite: bool
    path: str | None
    current: bool


class AtomPage(Page[AtomSummary]):
    """The current corpus, by atom id."""


class AtomRead(AtomSummary):
    body: str = Field(description="Markdown")


class AtomVersionRead(BaseModel):
    version: str
    created_at: datetime
    current: bool


class AtomDetail(AtomRead):
    versions: list[AtomVersionRead] = Field(description="Every version of this atom, oldest first")


class AtomAdded(BaseModel):
    id: str
    version: str


class AtomChanged(BaseModel):
    model_config = ConfigDict(populate_by_name=True, serialize_by_alias=True)

    id: str
    from_: str = Field(alias="from")
    to: str


class SyncReport(BaseModel):
    added: list[AtomAdded] = Field(default_factory=list)
    changed: list[AtomChanged] = Field(default_factory=list)
    unchanged: int = 0
    retired: list[str] = Field(default_factory=list, description="Atoms no longer current (prune)")


class AtomStored(AtomRead):
    sync: SyncReport


class OptionRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    value: str
    label: str
    scores: dict[str, float]
    tags: list[str]


class QuestionRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    prompt: str
    type: str = Field(description="single, multiple, scale or text")
    required: bool
    options: list[OptionRead]
    min: int | None
    max: int | None
    min_label: str | None
    max_label: str | None
    score: str | None
    max_length: int | None


class QuizRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)

    id: str
    title: str
    questions: list[QuestionRead]
    version: str
    description: str | None
    meta: dict[str, Any]


class AnswersAccepted(BaseModel):
    model_config = ConfigDict(populate_by_name=True, serialize_by_alias=True)

    status: str = Field(description="accepted, or duplicate (the same message_id was stored before)")
    message_id: str | None = Field(alias="messageId")
    scores: dict[str, Any] = Field(description="The quiz's scores from these answers")
