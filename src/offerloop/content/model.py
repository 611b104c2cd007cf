"""The content domain's value types: corpus atoms and intake quizzes, as parsed from their files.

Parsing and validation live in ``atoms.py`` and ``quizzes.py``; selection and composition (the
``assembly`` domain) read only these frozen values.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

AtomKind = Literal["lesson", "template", "checklist", "snippet", "exercise"]
ATOM_KINDS: tuple[str, ...] = ("lesson", "template", "checklist", "snippet", "exercise")

QuestionType = Literal["single", "multiple", "scale", "text"]


@dataclass(frozen=True, slots=True)
class Atom:
    """One modular piece of content: Markdown body plus the front matter that describes it."""

    id: str  # slug: [a-z0-9][a-z0-9-]*
    title: str
    kind: str  # one of ATOM_KINDS
    body: str  # Markdown, may hold {{ placeholders }}
    version: str  # content hash of front matter + body (hex); a changed atom gets a new one
    tags: tuple[str, ...] = ()
    level: int = 1  # 1 beginner .. 3 advanced
    persona_fit: tuple[str, ...] = ()
    outcome: str | None = None  # what the buyer can do after it
    minutes: int | None = None
    source: str | None = None
    licence: str | None = None
    ai_rewrite: bool = False  # the creator allows the voice rewriter to touch it
    path: str | None = None  # file it was loaded from, for messages


@dataclass(frozen=True, slots=True)
class Option:
    value: str
    label: str
    scores: dict[str, float] = field(default_factory=dict)  # dimension -> points when chosen
    tags: tuple[str, ...] = ()  # corpus tags this answer points to (used by selection)


@dataclass(frozen=True, slots=True)
class Question:
    id: str
    prompt: str
    type: str  # one of "single", "multiple", "scale", "text"
    required: bool = True
    options: tuple[Option, ...] = ()  # single / multiple
    min: int | None = None  # scale
    max: int | None = None  # scale
    min_label: str | None = None
    max_label: str | None = None
    score: str | None = None  # scale: the dimension its value adds to
    max_length: int | None = None  # text


@dataclass(frozen=True, slots=True)
class Quiz:
    id: str
    title: str
    questions: tuple[Question, ...]
    version: str  # content hash
    description: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)

    def question(self, qid: str) -> Question | None:
        return next((q for q in self.questions if q.id == qid), None)
