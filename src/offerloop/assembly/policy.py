"""Composition policies: which sections a deliverable has and how each slot picks its content atoms.

A policy is YAML (see the assembly formats spec)::

    id: launch-workbook
    deliverable: workbook            # workbook | audit_report | course_pathway
    title: "{{ buyer.first_name | Your }} launch workbook"
    review: never                    # never | always | guard_fired | {above_offer_value: 5000}
    sections:
      - key: start-here
        title: "Start here"
        when: {answer: stage, in: [idea, building]}
        slots:
          - key: orientation
            choose: 2
            kinds: [lesson, snippet]
            tags_any: [welcome]
            fallback: {title: "A first step", markdown: "Write down ..."}

:func:`parse_policy` reads it with the declarative-config toolkit (:mod:`offerloop.declarative`: strict
pydantic models below, no unknown keys) and raises :class:`InvalidPolicy` listing every problem at once,
each as ``file:line: path: message``. Unique keys (section keys; slot keys within a section) and the
number of conditions in a policy are checked once the entries are valid;
:func:`offerloop.assembly.lint.lint_policy` repeats those checks for policies built in code and adds the
checks that need the corpus and the quiz.

``when:`` is a condition in the one condition language (:mod:`offerloop.core.conditions`: every operator,
all/any/not, the short forms ``{answer: q, in: [...]}``, ``{answer: q, equals: v}``, ``{answer: q,
answered: true}``, ``{score: d, gte: 2}``, ``{persona: [a, b]}`` and the general ``{path: scores.d,
between: [1, 3]}``) reading what :mod:`offerloop.assembly.facts` builds from the buyer's inputs.

``Policy.version`` is :func:`offerloop.declarative.content_version` of the canonical content
(:meth:`Policy.to_dict`): formatting, comments and spelled-out defaults do not change it; any change of
meaning does.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from typing import Annotated, Any, Final, Literal, TypeAlias

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainValidator,
    Strict,
    model_validator,
)
from pydantic_core import PydanticCustomError

from offerloop.assembly.exceptions import InvalidPolicy
from offerloop.assembly.facts import (
    MAX_CONDITION_DEPTH,
    MAX_CONDITIONS,
    SCOPE,
    Facts,
    condition_size,
    facts,
    holds,
    is_answered,
    parse_when,
)
from offerloop.content.model import AtomKind
from offerloop.core import conditions
from offerloop.core.conditions import Condition
from offerloop.declarative import (
    Count,
    Reporter,
    content_version,
    format_path,
    load_document,
    matching,
    problem_at,
    show,
    validate,
)

__all__ = [
    "DELIVERABLES",
    "MAX_CONDITIONS",
    "MAX_CONDITION_DEPTH",
    "ORDERS",
    "PERSONA_MODES",
    "REVIEW_MODES",
    "SCOPE",
    "AtomFallback",
    "Condition",
    "Facts",
    "Fallback",
    "LevelRange",
    "Policy",
    "PolicySchema",
    "PolicySection",
    "Review",
    "Slot",
    "TextFallback",
    "facts",
    "format_path",
    "holds",
    "is_answered",
    "parse_policy",
    "parse_when",
]

Deliverable: TypeAlias = Literal["workbook", "audit_report", "course_pathway"]
PersonaMode: TypeAlias = Literal["prefer", "require", "ignore"]
Order: TypeAlias = Literal["relevance", "level", "minutes", "title"]
DELIVERABLES: Final[tuple[str, ...]] = ("workbook", "audit_report", "course_pathway")
REVIEW_MODES: Final[tuple[str, ...]] = ("never", "always", "guard_fired", "above_offer_value")
PERSONA_MODES: Final[tuple[str, ...]] = ("prefer", "require", "ignore")
ORDERS: Final[tuple[str, ...]] = ("relevance", "level", "minutes", "title")
MIN_LEVEL: Final = 1
MAX_LEVEL: Final = 3

# --------------------------------------------------------------------------------------------------
# The policy


@dataclass(frozen=True, slots=True)
class TextFallback:
    """Fallback text written in the policy (Markdown, placeholders allowed)."""

    markdown: str
    title: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"title": self.title, "markdown": self.markdown}


@dataclass(frozen=True, slots=True)
class AtomFallback:
    """Fallback to one named atom of the corpus."""

    atom: str

    def to_dict(self) -> dict[str, Any]:
        return {"atom": self.atom}


Fallback: TypeAlias = TextFallback | AtomFallback


@dataclass(frozen=True, slots=True)
class LevelRange:
    min: int = MIN_LEVEL
    max: int = MAX_LEVEL

    def contains(self, level: int) -> bool:
        return self.min <= level <= self.max


@dataclass(frozen=True, slots=True)
class Slot:
    """One place in a section filled by up to ``choose`` atoms, or by the fallback when none matches."""

    key: str
    fallback: Fallback
    choose: int = 1
    kinds: tuple[str, ...] = ()  # empty: any kind
    tags_any: tuple[str, ...] = ()
    tags_all: tuple[str, ...] = ()
    tags_from_answers: tuple[str, ...] = ()
    level: LevelRange | None = None
    persona: PersonaMode = "prefer"
    order: Order = "relevance"
    when: Condition | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "choose": self.choose,
            "kinds": list(self.kinds),
            "tags_any": list(self.tags_any),
            "tags_all": list(self.tags_all),
            "tags_from_answers": list(self.tags_from_answers),
            "level": None if self.level is None else {"min": self.level.min, "max": self.level.max},
            "persona": self.persona,
            "order": self.order,
            "when": None if self.when is None else conditions.to_data(self.when),
            "fallback": self.fallback.to_dict(),
        }


@dataclass(frozen=True, slots=True)
class PolicySection:
    key: str
    title: str
    slots: tuple[Slot, ...] = ()
    intro: str | None = None
    when: Condition | None = None

    def to_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "title": self.title,
            "intro": self.intro,
            "when": None if self.when is None else conditions.to_data(self.when),
            "slots": [slot.to_dict() for slot in self.slots],
        }


@dataclass(frozen=True, slots=True)
class Review:
    """When a human reviews the deliverable before it is sent."""

    mode: Literal["never", "always", "guard_fired", "above_offer_value"] = "never"
    above_offer_value: float | None = None  # only for mode above_offer_value

    def to_dict(self) -> str | dict[str, float]:
        if self.mode == "above_offer_value" and self.above_offer_value is not None:
            return {"above_offer_value": self.above_offer_value}
        return self.mode


@dataclass(frozen=True, slots=True)
class Policy:
    id: str
    title: str
    sections: tuple[PolicySection, ...]
    version: str = ""  # filled by parse_policy / with_version
    deliverable: Deliverable = "workbook"
    subtitle: str | None = None
    review: Review = field(default_factory=Review)
    path: str | None = field(default=None, compare=False)  # the file it was read from
    lines: Mapping[str, int] = field(default_factory=dict, compare=False, hash=False)  # path -> line

    def to_dict(self) -> dict[str, Any]:
        """The canonical content (every default spelled out; no version, path or lines)."""
        return {
            "id": self.id,
            "deliverable": self.deliverable,
            "title": self.title,
            "subtitle": self.subtitle,
            "review": self.review.to_dict(),
            "sections": [section.to_dict() for section in self.sections],
        }

    def content_version(self) -> str:
        """First 16 hex characters of the sha256 of the canonical JSON of :meth:`to_dict`."""
        return content_version(self.to_dict())

    def with_version(self) -> Policy:
        """This policy with ``version`` set from its content (for policies built in code)."""
        return replace(self, version=self.content_version())

    def line_of(self, location: str) -> int | None:
        """The line of ``location`` (``sections[1].slots[0]``) in the file, when known."""
        return self.lines.get(location)


# --------------------------------------------------------------------------------------------------
# The YAML schema (strict, no unknown keys) and its checks


def _non_blank(value: str) -> str:
    if not value.strip():
        raise PydanticCustomError(
            "config_text", "must be a non-empty string, got {got}", {"got": show(value)}
        )
    return value  # kept as written: Markdown's blank lines and trailing newline are content


def _none_is_empty(value: Any) -> Any:
    return [] if value is None else value  # `kinds: null` reads as no kinds, as it always has


def _or(default: str) -> BeforeValidator:
    """``null`` reads as the default (``persona: null`` is ``prefer``), as it always has."""
    return BeforeValidator(lambda value: default if value is None else value)


_SLUG: Final = r"[a-z0-9][a-z0-9_-]*"
NonBlank = Annotated[str, Strict(), AfterValidator(_non_blank)]
PolicyId = Annotated[str, matching(_SLUG, f"a policy id ({_SLUG})")]
SectionKey = Annotated[str, matching(_SLUG, f"a section key ({_SLUG})")]
SlotKey = Annotated[str, matching(_SLUG, f"a slot key ({_SLUG})")]
AtomId = Annotated[str, matching(_SLUG, f"an atom id ({_SLUG})")]
Tag = Annotated[str, matching(_SLUG, f"a tag ({_SLUG})")]
QuestionId = Annotated[str, matching(r"[A-Za-z0-9_][A-Za-z0-9_.-]*", "a question id")]
LevelBound = Annotated[int, Strict(), Field(ge=MIN_LEVEL, le=MAX_LEVEL)]
_INNER_PART: Final = re.compile(r"([^.\[\]]+)|\[(\d+)\]")


def _when(value: Any) -> Condition | None:
    """A ``when:`` in the one condition language; each of its problems at its path inside the condition."""
    if value is None:
        return None
    try:
        return conditions.parse(value, scope=SCOPE)
    except conditions.ConditionError as exc:
        if len(exc.problems) == 1:
            inner, message = exc.problems[0]
            at = tuple(int(index) if index else key for key, index in _INNER_PART.findall(inner))
            raise problem_at(at, message) from None
        # Several: the condition language's own error, which the toolkit lists one problem a line.
        raise conditions.pydantic_error(exc) from None


When = Annotated[Condition | None, PlainValidator(_when)]
_REVIEW_FORMS: Final = "never, always, guard_fired or {above_offer_value: <amount>}"


def _review(value: Any) -> Review:
    """``never | always | guard_fired`` or ``{above_offer_value: <amount>}`` (amount >= 0)."""
    if value is None:
        return Review()
    if isinstance(value, Review):
        return value
    if isinstance(value, str) and value in REVIEW_MODES[:3]:
        return Review(mode=value)  # type: ignore[arg-type]  # one of the plain modes
    if isinstance(value, dict) and list(value) == ["above_offer_value"]:
        amount = value["above_offer_value"]
        if isinstance(amount, bool) or not isinstance(amount, int | float) or not math.isfinite(amount):
            raise problem_at(("above_offer_value",), f"must be a finite number, got {show(amount)}")
        if amount < 0:
            raise problem_at(("above_offer_value",), f"must be >= 0, got {show(amount)}")
        return Review(mode="above_offer_value", above_offer_value=float(amount))
    raise PydanticCustomError(
        "config_review", "must be {forms}, got {got}", {"forms": _REVIEW_FORMS, "got": show(value)}
    )


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class LevelSchema(_Strict):
    min: LevelBound = MIN_LEVEL
    max: LevelBound = MAX_LEVEL

    @model_validator(mode="after")
    def _not_empty(self) -> LevelSchema:
        if self.min > self.max:
            raise PydanticCustomError(
                "config_level", "empty level range: min {min} > max {max}", {"min": self.min, "max": self.max}
            )
        return self


class FallbackSchema(_Strict):
    """``{title, markdown}`` (text written in the policy) or ``{atom: atom-id}`` (one atom of the corpus)."""

    title: NonBlank | None = None
    markdown: NonBlank | None = None
    atom: AtomId | None = None

    @model_validator(mode="after")
    def _one_form(self) -> FallbackSchema:
        given = self.model_fields_set
        if "atom" in given and given & {"title", "markdown"}:
            raise PydanticCustomError("config_fallback", "give either atom or title/markdown, not both")
        if "atom" not in given and self.markdown is None:
            raise PydanticCustomError("config_fallback", "missing required key 'markdown' (or give atom)")
        return self

    def value(self) -> Fallback:
        if self.atom is not None:
            return AtomFallback(self.atom)
        assert self.markdown is not None  # _one_form
        return TextFallback(markdown=self.markdown, title=self.title)


class SlotSchema(_Strict):
    key: SlotKey
    choose: Count = 1
    kinds: Annotated[list[AtomKind], BeforeValidator(_none_is_empty)] = []
    tags_any: Annotated[list[Tag], BeforeValidator(_none_is_empty)] = []
    tags_all: Annotated[list[Tag], BeforeValidator(_none_is_empty)] = []
    tags_from_answers: Annotated[list[QuestionId], BeforeValidator(_none_is_empty)] = []
    level: LevelSchema | None = None
    persona: Annotated[PersonaMode, _or("prefer")] = "prefer"
    order: Annotated[Order, _or("relevance")] = "relevance"
    when: When = None
    fallback: FallbackSchema = Field(description="{title, markdown} or {atom: atom-id}")

    def value(self) -> Slot:
        return Slot(
            key=self.key,
            fallback=self.fallback.value(),
            choose=self.choose,
            kinds=tuple(dict.fromkeys(self.kinds)),  # a name twice means nothing more
            tags_any=tuple(dict.fromkeys(self.tags_any)),
            tags_all=tuple(dict.fromkeys(self.tags_all)),
            tags_from_answers=tuple(dict.fromkeys(self.tags_from_answers)),
            level=None if self.level is None else LevelRange(self.level.min, self.level.max),
            persona=self.persona,
            order=self.order,
            when=self.when,
        )


class SectionSchema(_Strict):
    key: SectionKey
    title: NonBlank
    intro: NonBlank | None = None
    when: When = None
    slots: Annotated[list[SlotSchema], BeforeValidator(_none_is_empty)] = []

    @model_validator(mode="after")
    def _has_content(self) -> SectionSchema:
        if not self.slots and self.intro is None:
            raise problem_at(("slots",), "a section needs at least one slot or an intro")
        return self

    def value(self) -> PolicySection:
        slots = tuple(slot.value() for slot in self.slots)
        return PolicySection(key=self.key, title=self.title, slots=slots, intro=self.intro, when=self.when)


class PolicySchema(_Strict):
    id: PolicyId
    deliverable: Annotated[Deliverable, _or("workbook")] = "workbook"
    title: NonBlank
    subtitle: NonBlank | None = None
    review: Annotated[Review, PlainValidator(_review)] = Review()
    sections: Annotated[list[SectionSchema], Field(min_length=1)]


def _check(schema: PolicySchema, report: Reporter) -> None:
    """Unique section keys, unique slot keys within a section, at most MAX_CONDITIONS conditions."""
    count, over = 0, False

    def counted(where: tuple[Any, ...], when: Condition | None) -> None:
        nonlocal count, over
        count += 0 if when is None else condition_size(when)
        if count > MAX_CONDITIONS and not over:
            report(where, f"too many conditions (at most {MAX_CONDITIONS} in a policy)")
            over = True

    sections: dict[str, int] = {}
    for index, section in enumerate(schema.sections):
        at: tuple[Any, ...] = ("sections", index)
        if section.key in sections:
            report(
                (*at, "key"),
                f"duplicate section key {show(section.key)} (also sections[{sections[section.key]}])",
            )
        sections.setdefault(section.key, index)
        counted((*at, "when"), section.when)
        slots: dict[str, int] = {}
        for number, slot in enumerate(section.slots):
            if slot.key in slots:
                report(
                    (*at, "slots", number, "key"),
                    f"duplicate slot key {show(slot.key)} (also slots[{slots[slot.key]}])",
                )
            slots.setdefault(slot.key, number)
            counted((*at, "slots", number, "when"), slot.when)


def parse_policy(text: str, *, path: str = "<string>") -> Policy:
    """YAML text -> a validated :class:`Policy` with its content ``version``.

    Raises :class:`InvalidPolicy` (a ``ConfigError``, status 422, code ``invalid_policy``) whose
    ``problems`` name every problem as ``file:line: path: message``, in file order.
    """
    doc = load_document(text, file=path)
    schema = validate(PolicySchema, doc, error=InvalidPolicy, check=_check, empty="the policy is empty")
    policy = Policy(
        id=schema.id,
        title=schema.title,
        sections=tuple(section.value() for section in schema.sections),
        deliverable=schema.deliverable,
        subtitle=schema.subtitle,
        review=schema.review,
        path=path,
        lines={doc.path_text(where): at.line for where, at in doc.locations.items() if where},
    )
    return policy.with_version()
