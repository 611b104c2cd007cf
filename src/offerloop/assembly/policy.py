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

:func:`parse_policy` validates everything and raises :class:`InvalidPolicy` listing every problem at
once, each as ``file:line: path: message``.

``when:`` is a condition in the one condition language (:mod:`offerloop.core.conditions`: every operator,
all/any/not, the short forms ``{answer: q, in: [...]}``, ``{answer: q, equals: v}``, ``{answer: q,
answered: true}``, ``{score: d, gte: 2}``, ``{persona: [a, b]}`` and the general ``{path: scores.d,
between: [1, 3]}``). Policies read only what :class:`BuyerInputs` carries — the roots ``answers``,
``scores`` and ``persona`` — as :func:`facts` builds them: an unanswered question ("", blanks, [] or
None) is missing, every score dimension reads a number (0 when absent or not a number), and a buyer
without a persona has none (``persona`` is missing). :func:`holds` checks a condition for a buyer;
``describe`` (core's) gives the reasons shown in provenance and lint.

Keys that must be unique (section keys; slot keys within a section) and level ranges are checked here
too; :func:`offerloop.assembly.lint.lint_policy` repeats those checks for policies built in code and
adds the checks that need the corpus and the quiz.

``Policy.version`` is the first 16 hex characters of the sha256 of the canonical JSON of the policy
(:meth:`Policy.to_dict`): formatting, comments and spelled-out defaults do not change it; any change of
meaning does.
"""

from __future__ import annotations

import hashlib
import json
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime, time
from functools import lru_cache
from typing import Any, Final, Literal, TypeAlias

import yaml

from offerloop.assembly.exceptions import InvalidPolicy
from offerloop.assembly.inputs import BuyerInputs
from offerloop.content.model import ATOM_KINDS
from offerloop.core import conditions
from offerloop.core.conditions import Condition
from offerloop.declarative import StringDateLoader, parse_yaml, show

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

DELIVERABLES: Final[tuple[str, ...]] = ("workbook", "audit_report", "course_pathway")
REVIEW_MODES: Final[tuple[str, ...]] = ("never", "always", "guard_fired", "above_offer_value")
PERSONA_MODES: Final[tuple[str, ...]] = ("prefer", "require", "ignore")
ORDERS: Final[tuple[str, ...]] = ("relevance", "level", "minutes", "title")
MAX_CONDITIONS: Final = conditions.MAX_NODES  # condition nodes in one policy, nested ones included
MAX_CONDITION_DEPTH: Final = conditions.MAX_DEPTH  # all/any/not nesting, checked by core
SCOPE: Final = conditions.Scope(roots=frozenset({"answers", "scores", "persona"}))
MIN_LEVEL: Final = 1
MAX_LEVEL: Final = 3

_SLUG: Final = re.compile(r"^[a-z0-9][a-z0-9_-]*$")
_NAME: Final = re.compile(r"^[A-Za-z0-9_][A-Za-z0-9_.-]*$")  # question ids, dimensions, personas

PathPart: TypeAlias = str | int
Path: TypeAlias = tuple[PathPart, ...]

# --------------------------------------------------------------------------------------------------
# Conditions: the one condition language (offerloop.core.conditions), reading what BuyerInputs carries


@dataclass(frozen=True, slots=True)
class Facts:
    """What policy conditions read about one buyer, built once per buyer by :func:`facts`."""

    values: Mapping[str, Any]  # roots (answers, scores, persona) -> values
    now: datetime  # the start of the buyer's ``today`` (UTC): time-relative tests are reproducible


class _Scores(Mapping[str, float]):
    """The buyer's scores as conditions read them: an absent or non-numeric dimension reads 0."""

    __slots__ = ("_known",)

    def __init__(self, scores: Mapping[str, Any]) -> None:
        self._known = {
            str(k): float(v)
            for k, v in scores.items()
            if isinstance(v, int | float) and not isinstance(v, bool)
        }

    def __getitem__(self, key: str) -> float:
        return self._known.get(key, 0.0)

    def get(self, key: str, default: Any = None) -> float:
        return self._known.get(key, 0.0)  # every dimension reads a number: never the default

    def __iter__(self) -> Iterator[str]:
        return iter(self._known)

    def __len__(self) -> int:
        return len(self._known)


def is_answered(answer: Any) -> bool:
    """Whether an answer counts as given: "" (or blanks), [] and None do not."""
    if answer is None:
        return False
    if isinstance(answer, str):
        return bool(answer.strip())
    if isinstance(answer, list | tuple | set | frozenset):
        return len(answer) > 0
    return True


def facts(inputs: BuyerInputs) -> Facts:
    """The buyer as conditions see it: ``answers`` without unanswered questions, ``scores`` where every
    dimension reads a number (0 when absent), ``persona`` (missing when the buyer has none)."""
    values: dict[str, Any] = {
        "answers": {k: v for k, v in inputs.answers.items() if is_answered(v)},
        "scores": _Scores(inputs.scores),
    }
    if inputs.persona:
        values["persona"] = inputs.persona
    return Facts(values, datetime.combine(inputs.today, time(), UTC))


@lru_cache(maxsize=4096)
def _check(condition: Condition) -> conditions.Check:
    return conditions.compile_condition(condition)


def holds(condition: Condition, buyer: Facts) -> bool:
    """Whether ``condition`` holds for the buyer (compiled once per condition, however many buyers)."""
    return _check(condition)(buyer.values, buyer.now)


def parse_when(data: Any) -> Condition:
    """A policy condition from its YAML form (for policies built in code); raises ``ConditionError``."""
    return conditions.parse(data, scope=SCOPE)


def _size(condition: Condition) -> int:
    if isinstance(condition, conditions.Leaf):
        return 1
    if isinstance(condition, conditions.Not):
        return 1 + _size(condition.item)
    return 1 + sum(_size(item) for item in condition.items)


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
    persona: Literal["prefer", "require", "ignore"] = "prefer"
    order: Literal["relevance", "level", "minutes", "title"] = "relevance"
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
    deliverable: Literal["workbook", "audit_report", "course_pathway"] = "workbook"
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
        canonical = json.dumps(self.to_dict(), sort_keys=True, separators=(",", ":"), ensure_ascii=False)
        return hashlib.sha256(canonical.encode("utf-8")).hexdigest()[:16]

    def with_version(self) -> Policy:
        """This policy with ``version`` set from its content (for policies built in code)."""
        return replace(self, version=self.content_version())

    def line_of(self, location: str) -> int | None:
        """The line of ``location`` (``sections[1].slots[0]``) in the file, when known."""
        return self.lines.get(location)


def format_path(path: Path) -> str:
    """``("sections", 1, "slots", 0, "when")`` -> ``sections[1].slots[0].when``."""
    out = ""
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else part
    return out


# --------------------------------------------------------------------------------------------------
# Parsing


class _Problems:
    """Collects problems as ``file:line: path: message`` (line of the nearest known enclosing node)."""

    def __init__(self, file: str, lines: dict[Path, int], key_lines: dict[Path, int]) -> None:
        self.file = file
        self.lines = lines
        self.key_lines = key_lines  # line of the key itself, for mapping entries
        self.items: list[str] = []
        self._order: list[tuple[int, int]] = []
        self.conditions = 0  # condition nodes parsed so far (bounded: aliases can nest them)
        self.too_many = False

    def line(self, path: Path) -> int | None:
        for n in range(len(path), -1, -1):
            if path[:n] in self.lines:
                return self.lines[path[:n]]
        return None

    def add(self, path: Path, message: str, *, line: int | None = None) -> None:
        line = line if line is not None else self.line(path)
        where = f"{self.file}:{line}" if line is not None else self.file
        location = format_path(path) or "policy"
        self.items.append(f"{where}: {location}: {message}")
        self._order.append((line if line is not None else 1 << 30, len(self._order)))

    def sorted(self) -> list[str]:
        """The problems in file order (by line, then as found)."""
        return [self.items[index] for _, index in sorted(self._order)]


def _node_lines(
    node: yaml.Node,
    path: Path,
    lines: dict[Path, int],
    key_lines: dict[Path, int],
    dupes: list[tuple[Path, int]],
    visited: set[int],
) -> None:
    """Record the 1-based line of every node by path; note duplicate mapping keys.

    A node reached again through an alias is not walked twice (no blow-up, no endless recursion).
    """
    lines.setdefault(path, node.start_mark.line + 1)
    if id(node) in visited:
        return
    visited.add(id(node))
    if isinstance(node, yaml.MappingNode):
        seen: set[str] = set()
        for key_node, value_node in node.value:
            key = str(key_node.value) if isinstance(key_node, yaml.ScalarNode) else repr(key_node.value)
            if key in seen:
                dupes.append(((*path, key), key_node.start_mark.line + 1))
            seen.add(key)
            key_lines.setdefault((*path, key), key_node.start_mark.line + 1)
            _node_lines(value_node, (*path, key), lines, key_lines, dupes, visited)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            _node_lines(item, (*path, index), lines, key_lines, dupes, visited)


def _known_keys(raw: Mapping[Any, Any], path: Path, allowed: tuple[str, ...], p: _Problems) -> bool:
    ok = True
    for key in raw:
        if not isinstance(key, str):
            p.add(path, f"keys must be strings, got {show(key)}")
            ok = False
        elif key not in allowed:
            where = (*path, key)
            p.add(where, f"unknown key (expected one of {', '.join(allowed)})", line=p.key_lines.get(where))
            ok = False
    return ok


def _text(raw: Any, path: Path, p: _Problems, *, required: bool) -> str | None:
    if raw is None:
        if required:
            p.add(path, "required")
        return None
    if not isinstance(raw, str) or not raw.strip():
        p.add(path, f"must be a non-empty string, got {show(raw)}")
        return None
    return raw


def _slug(raw: Any, path: Path, p: _Problems, *, what: str = "a slug") -> str | None:
    if raw is None:
        p.add(path, "required")
        return None
    if not isinstance(raw, str) or not _SLUG.match(raw):
        p.add(path, f"must be {what} ([a-z0-9][a-z0-9_-]*), got {show(raw)}")
        return None
    return raw


def _name(raw: Any, path: Path, p: _Problems, what: str) -> str | None:
    if not isinstance(raw, str) or not _NAME.match(raw):
        p.add(path, f"must be {what}, got {show(raw)}")
        return None
    return raw


def _choice(raw: Any, path: Path, p: _Problems, choices: tuple[str, ...], default: str) -> str:
    if raw is None:
        return default
    if not isinstance(raw, str) or raw not in choices:
        p.add(path, f"must be one of {', '.join(choices)}, got {show(raw)}")
        return default
    return raw


def _list(raw: Any, path: Path, p: _Problems) -> list[Any]:
    if raw is None:
        return []
    if not isinstance(raw, list):
        p.add(path, f"must be a list, got {show(raw)}")
        return []
    return raw


def _names(raw: Any, path: Path, p: _Problems, *, slugs: bool, what: str) -> tuple[str, ...]:
    out: list[str] = []
    for index, item in enumerate(_list(raw, path, p)):
        value = _slug(item, (*path, index), p, what=what) if slugs else _name(item, (*path, index), p, what)
        if value is not None and value not in out:
            out.append(value)
    return tuple(out)


def _number(raw: Any, path: Path, p: _Problems) -> float | None:
    if (
        isinstance(raw, bool)
        or not isinstance(raw, int | float)
        or raw != raw
        or raw in (float("inf"), -float("inf"))
    ):
        p.add(path, f"must be a number, got {show(raw)}")
        return None
    return float(raw)


def _inner_path(inner: str) -> Path:
    """Core's path inside a condition (``all[0].in[1]``) as path parts, for the line lookup."""
    return tuple(int(index) if index else key for key, index in _INNER_PART.findall(inner))


_INNER_PART: Final = re.compile(r"([^.\[\]]+)|\[(\d+)\]")


def _optional_condition(raw: Mapping[str, Any], path: Path, p: _Problems) -> Condition | None:
    """The ``when`` of a section or slot in the one condition language, or None (absent, or reported)."""
    if raw.get("when") is None:
        return None
    where = (*path, "when")
    try:
        condition = conditions.parse(raw["when"], scope=SCOPE)
    except conditions.ConditionError as exc:
        for inner, message in exc.problems:
            p.add((*where, *_inner_path(inner)), message)
        return None
    p.conditions += _size(condition)
    if p.conditions > MAX_CONDITIONS:
        if not p.too_many:
            p.add(where, f"too many conditions (at most {MAX_CONDITIONS} in a policy)")
        p.too_many = True
        return None
    return condition


def _fallback(raw: Any, path: Path, p: _Problems) -> Fallback | None:
    if raw is None:
        p.add(path, "required: {title, markdown} or {atom: atom-id}")
        return None
    if not isinstance(raw, dict):
        p.add(path, f"must be a mapping {{title, markdown}} or {{atom: atom-id}}, got {show(raw)}")
        return None
    if not _known_keys(raw, path, ("title", "markdown", "atom"), p):
        return None
    if "atom" in raw:
        if "markdown" in raw or "title" in raw:
            p.add(path, "give either atom or title/markdown, not both")
            return None
        atom = _slug(raw["atom"], (*path, "atom"), p, what="an atom id")
        return None if atom is None else AtomFallback(atom)
    markdown = _text(raw.get("markdown"), (*path, "markdown"), p, required=True)
    title = _text(raw.get("title"), (*path, "title"), p, required=False)
    if markdown is None or ("title" in raw and title is None):
        return None
    return TextFallback(markdown=markdown, title=title)


def _level(raw: Any, path: Path, p: _Problems) -> LevelRange | None:
    if raw is None:
        return None
    if not isinstance(raw, dict):
        p.add(path, f"must be a mapping {{min, max}}, got {show(raw)}")
        return None
    if not _known_keys(raw, path, ("min", "max"), p):
        return None
    bounds: dict[str, int] = {}
    for bound, default in (("min", MIN_LEVEL), ("max", MAX_LEVEL)):
        value = raw.get(bound, default)
        if isinstance(value, bool) or not isinstance(value, int) or not MIN_LEVEL <= value <= MAX_LEVEL:
            p.add((*path, bound), f"must be an integer from {MIN_LEVEL} to {MAX_LEVEL}, got {show(value)}")
        else:
            bounds[bound] = value
    if len(bounds) != 2:
        return None
    if bounds["min"] > bounds["max"]:
        p.add(path, f"empty level range: min {bounds['min']} > max {bounds['max']}")
        return None
    return LevelRange(bounds["min"], bounds["max"])


_SLOT_KEYS: Final = (
    "key",
    "choose",
    "kinds",
    "tags_any",
    "tags_all",
    "tags_from_answers",
    "level",
    "persona",
    "order",
    "when",
    "fallback",
)


def _slot(raw: Any, path: Path, p: _Problems) -> Slot | None:
    if not isinstance(raw, dict):
        p.add(path, f"a slot must be a mapping, got {show(raw)}")
        return None
    count = len(p.items)
    _known_keys(raw, path, _SLOT_KEYS, p)
    key = _slug(raw.get("key"), (*path, "key"), p, what="a slot key")
    choose = raw.get("choose", 1)
    if isinstance(choose, bool) or not isinstance(choose, int) or choose < 1:
        p.add((*path, "choose"), f"must be a positive integer, got {show(choose)}")
    kinds: list[str] = []
    for index, kind in enumerate(_list(raw.get("kinds"), (*path, "kinds"), p)):
        if not isinstance(kind, str) or kind not in ATOM_KINDS:
            p.add((*path, "kinds", index), f"must be one of {', '.join(ATOM_KINDS)}, got {show(kind)}")
        elif kind not in kinds:
            kinds.append(kind)
    tags_any = _names(raw.get("tags_any"), (*path, "tags_any"), p, slugs=True, what="a tag")
    tags_all = _names(raw.get("tags_all"), (*path, "tags_all"), p, slugs=True, what="a tag")
    from_answers = _names(
        raw.get("tags_from_answers"), (*path, "tags_from_answers"), p, slugs=False, what="a question id"
    )
    level = _level(raw.get("level"), (*path, "level"), p)
    persona = _choice(raw.get("persona"), (*path, "persona"), p, PERSONA_MODES, "prefer")
    order = _choice(raw.get("order"), (*path, "order"), p, ORDERS, "relevance")
    when = _optional_condition(raw, path, p)
    fallback = _fallback(raw.get("fallback"), (*path, "fallback"), p)
    if len(p.items) != count or key is None or fallback is None:
        return None
    return Slot(
        key=key,
        fallback=fallback,
        choose=choose,
        kinds=tuple(kinds),
        tags_any=tags_any,
        tags_all=tags_all,
        tags_from_answers=from_answers,
        level=level,
        persona=persona,  # type: ignore[arg-type]  # checked against PERSONA_MODES
        order=order,  # type: ignore[arg-type]  # checked against ORDERS
        when=when,
    )


def _raw_key(raw: Any) -> str | None:
    """The ``key`` of a section or slot mapping when it is a valid slug (for duplicate detection)."""
    key = raw.get("key") if isinstance(raw, dict) else None
    return key if isinstance(key, str) and _SLUG.match(key) else None


def _section(raw: Any, path: Path, p: _Problems) -> PolicySection | None:
    if not isinstance(raw, dict):
        p.add(path, f"a section must be a mapping, got {show(raw)}")
        return None
    count = len(p.items)
    _known_keys(raw, path, ("key", "title", "intro", "when", "slots"), p)
    key = _slug(raw.get("key"), (*path, "key"), p, what="a section key")
    title = _text(raw.get("title"), (*path, "title"), p, required=True)
    intro = _text(raw.get("intro"), (*path, "intro"), p, required=False)
    when = _optional_condition(raw, path, p)
    slots: list[Slot] = []
    first_index: dict[str, int] = {}
    for index, item in enumerate(_list(raw.get("slots"), (*path, "slots"), p)):
        slot = _slot(item, (*path, "slots", index), p)
        if slot is not None:
            slots.append(slot)
        slot_key = _raw_key(item)
        if slot_key is None:
            continue
        if slot_key in first_index:
            p.add(
                (*path, "slots", index, "key"),
                f"duplicate slot key {show(slot_key)} (also slots[{first_index[slot_key]}])",
            )
        first_index.setdefault(slot_key, index)
    if not raw.get("slots") and intro is None:
        p.add((*path, "slots"), "a section needs at least one slot or an intro")
    if len(p.items) != count or key is None or title is None:
        return None
    return PolicySection(key=key, title=title, slots=tuple(slots), intro=intro, when=when)


def _review(raw: Any, path: Path, p: _Problems) -> Review:
    if raw is None:
        return Review()
    if isinstance(raw, str) and raw in REVIEW_MODES[:3]:
        return Review(mode=raw)  # type: ignore[arg-type]  # one of the plain modes
    if isinstance(raw, dict) and list(raw) == ["above_offer_value"]:
        value = _number(raw["above_offer_value"], (*path, "above_offer_value"), p)
        if value is not None and value < 0:
            p.add((*path, "above_offer_value"), f"must be >= 0, got {show(raw['above_offer_value'])}")
            return Review()
        return Review() if value is None else Review(mode="above_offer_value", above_offer_value=value)
    p.add(path, f"must be never, always, guard_fired or {{above_offer_value: <amount>}}, got {show(raw)}")
    return Review()


_POLICY_KEYS: Final = ("id", "deliverable", "title", "subtitle", "review", "sections")


def parse_policy(text: str, *, path: str = "<string>") -> Policy:
    """YAML text -> a validated :class:`Policy` with its content ``version``.

    Raises :class:`InvalidPolicy` (an :class:`AssemblyError`, status 422, code ``invalid_policy``)
    whose ``problems`` name every problem as ``file:line: path: message``.
    """
    data, problem = parse_yaml(text)
    if problem is not None:
        raise InvalidPolicy.from_problems([f"{path}: {problem}"])
    lines: dict[Path, int] = {}
    key_lines: dict[Path, int] = {}
    dupes: list[tuple[Path, int]] = []
    node = yaml.compose(text, Loader=StringDateLoader)
    if node is not None:
        _node_lines(node, (), lines, key_lines, dupes, set())
    p = _Problems(path, lines, key_lines)
    for dupe_path, line in dupes:
        p.add(dupe_path, "duplicate key (the later value would silently win)", line=line)
    if data is None:
        raise InvalidPolicy.from_problems([f"{path}: the policy is empty"])
    if not isinstance(data, dict):
        raise InvalidPolicy.from_problems([f"{path}:1: policy: must be a mapping, got {show(data)}"])
    _known_keys(data, (), _POLICY_KEYS, p)
    policy_id = _slug(data.get("id"), ("id",), p, what="a policy id")
    deliverable = _choice(data.get("deliverable"), ("deliverable",), p, DELIVERABLES, "workbook")
    title = _text(data.get("title"), ("title",), p, required=True)
    subtitle = _text(data.get("subtitle"), ("subtitle",), p, required=False)
    review = _review(data.get("review"), ("review",), p)
    sections: list[PolicySection] = []
    raw_sections = data.get("sections")
    if not isinstance(raw_sections, list) or not raw_sections:
        p.add(("sections",), f"must be a non-empty list of sections, got {show(raw_sections)}")
        raw_sections = []
    first_index: dict[str, int] = {}
    for index, item in enumerate(raw_sections):
        section = _section(item, ("sections", index), p)
        if section is not None:
            sections.append(section)
        section_key = _raw_key(item)
        if section_key is None:
            continue
        if section_key in first_index:
            p.add(
                ("sections", index, "key"),
                f"duplicate section key {show(section_key)} (also sections[{first_index[section_key]}])",
            )
        first_index.setdefault(section_key, index)
    if p.items or policy_id is None or title is None:
        raise InvalidPolicy.from_problems(p.sorted() or [f"{path}: invalid policy"])
    policy = Policy(
        id=policy_id,
        title=title,
        sections=tuple(sections),
        deliverable=deliverable,  # type: ignore[arg-type]  # checked against DELIVERABLES
        subtitle=subtitle,
        review=review,
        path=path,
        lines={format_path(k): v for k, v in lines.items() if k},
    )
    return policy.with_version()
