"""Per-workspace signal weighting and confidence gating, applied to every event at ingest.

A workspace describes, in YAML (or the equivalent mapping), how much each kind of event counts::

    threshold: 0.5            # events whose confidence is below this are stored but marked suppressed
    default: {weight: 1.0, confidence: 1.0}
    rules:
      - event: "Assessment Completed"   # glob patterns allowed ("Order *"); case-insensitive
        type: track                      # optional: track|page|screen|identify|group|alias
        where:                           # optional; every condition must hold
          score: {gte: 70}               # dotted paths reach into nested properties ("plan.tier")
        weight: 5
        confidence: 0.95
        high_signal: true
        label: strong_assessment          # optional name reported back

Matching rules:

* Rules are tried in order; the first rule that matches wins.  No match gives ``default``.
* ``event`` is matched against the event name with shell-style globs (``*``, ``?``, ``[...]``), ignoring
  case.  A rule with ``event`` and no ``type`` applies to ``track`` events only; to match page or screen
  names, say ``type: page`` / ``type: screen`` as well.  ``identify``, ``group`` and ``alias`` calls have
  no name, so ``event`` cannot be combined with those types.
* ``where`` maps a property path to either a bare value (equality) or a mapping of operators, all of which
  must hold: ``eq ne gt gte lt lte in not_in exists contains matches``.  A path is looked up as a literal
  key first, then split on dots (a purely numeric segment also indexes into a list: ``items.0.sku``).
* A property that is absent matches only ``exists: false``; every other operator, ``ne`` and ``not_in``
  included, fails on it.  A property that is present with a ``null`` value exists.
* Comparisons never raise.  Mismatched types simply do not match: ``gte: 70`` fails on the string
  ``"75"``, ``eq: 1`` fails on ``true``, ``matches`` fails on anything but a string.  Numbers compare
  numerically (``70 == 70.0``); strings compare lexicographically.  ``contains`` is a substring test on a
  string and a membership test on a list.  ``matches`` is a full-match regular expression (case-sensitive
  unless the pattern says ``(?i)``).
* ``suppressed`` is ``confidence < threshold``: an event whose confidence equals the threshold is kept.

YAML dates are kept as strings (``gte: 2024-01-01`` compares against ISO-8601 text), and an empty YAML
document means "nothing configured", i.e. :data:`DEFAULT_SIGNAL_CONFIG`.

Everything is validated and compiled when the config is loaded (globs and regular expressions included),
and the score of each rule is precomputed: :func:`score_event` returns a shared :class:`SignalScore`.

Speed, measured with ``timeit`` (CPython 3.11, one core of the development container), 10-rule config with
exact and glob names, ``where`` conditions and type rules, per call: 0.3-0.8 µs when an early rule or a type
rule matches; 1.1 µs when every track rule is tried and the default wins; 1.2-1.4 µs for a glob or dotted
path plus ``where`` conditions deep in the list.  0.35-0.65 µs on :data:`DEFAULT_SIGNAL_CONFIG`.
"""

from __future__ import annotations

import fnmatch
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Annotated, Any, Final, Literal, Self

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PlainValidator,
    PrivateAttr,
    StrictBool,
    ValidationInfo,
    field_validator,
)

from offerloop.core import conditions
from offerloop.core.conditions import Check, PropertiesWhere, Where
from offerloop.declarative import Document, load_document, one_of, show, validate
from offerloop.events.exceptions import InvalidSignalConfig

__all__ = [
    "DEFAULT_SIGNAL_CONFIG",
    "EVENT_TYPES",
    "OPERATORS",
    "SignalConfig",
    "SignalConfigError",
    "SignalDefault",
    "SignalRule",
    "SignalScore",
    "dump_signal_config",
    "load_signal_config",
    "score_event",
]

EventType = Literal["track", "page", "screen", "identify", "group", "alias"]
EVENT_TYPES: Final[tuple[str, ...]] = ("track", "page", "screen", "identify", "group", "alias")
_NAMED_TYPES: Final = frozenset({"track", "page", "screen"})
OPERATORS: Final[tuple[str, ...]] = conditions.OPERATORS


SignalConfigError = InvalidSignalConfig
"""A signal config that cannot be used (422 ``invalid_signal_config``): ``problems`` lists every problem."""


@dataclass(frozen=True, slots=True)
class SignalScore:
    weight: float
    confidence: float
    high_signal: bool
    suppressed: bool  # confidence < threshold
    rule: str | None  # the matching rule's label, "rules[i]" when unlabeled, None for the default


# --------------------------------------------------------------------------------------------------
# Field validators.  Each raises ValueError with the exact text reported after the field's path.


def _finite(value: object) -> float | None:
    if isinstance(value, bool) or not isinstance(value, int | float):
        return None
    try:
        number = float(value)
    except OverflowError:
        return None
    return number if math.isfinite(number) else None


def _weight(value: object) -> float:
    number = _finite(value)
    if number is None or number < 0:
        raise ValueError(f"must be a finite number >= 0, got {show(value)}")
    return number


def _unit_interval(value: object) -> float:
    number = _finite(value)
    if number is None or not 0.0 <= number <= 1.0:
        raise ValueError(f"must be a number between 0 and 1, got {show(value)}")
    return number


def _optional_text(value: object) -> str | None:
    if value is None:
        return None
    if not isinstance(value, str) or not value.strip():
        raise ValueError(f"must be a non-empty string, got {show(value)}")
    return value


def _none_to_empty_list(value: object) -> object:
    return [] if value is None else value


Weight = Annotated[float, PlainValidator(_weight)]
UnitInterval = Annotated[float, PlainValidator(_unit_interval)]
OptionalText = Annotated[str | None, PlainValidator(_optional_text)]
OptionalEventType = Annotated[EventType, one_of(EVENT_TYPES, fold_case=True)] | None


# --------------------------------------------------------------------------------------------------
# Models


class SignalDefault(BaseModel):
    """What an event that matches no rule is worth."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    weight: Weight = 1.0
    confidence: UnitInterval = 1.0


class SignalRule(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    event: OptionalText = None
    type: OptionalEventType = None
    where: PropertiesWhere = Field(default_factory=lambda: Where.of(None, "properties"))
    weight: Weight
    confidence: UnitInterval
    high_signal: StrictBool = False
    label: OptionalText = None

    @field_validator("type", mode="after")
    @classmethod
    def _event_needs_a_named_type(cls, value: str | None, info: ValidationInfo) -> str | None:
        if value is not None and value not in _NAMED_TYPES and info.data.get("event") is not None:
            raise ValueError(
                f"{value} events have no name, so 'event' cannot be used with type {value} "
                "(only with track, page or screen)"
            )
        return value


class SignalConfig(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)

    threshold: UnitInterval = 0.5
    default: SignalDefault = Field(default_factory=SignalDefault)
    rules: Annotated[list[SignalRule], BeforeValidator(_none_to_empty_list)] = Field(default_factory=list)

    _compiled: _Compiled = PrivateAttr()

    def model_post_init(self, context: Any, /) -> None:
        self._compiled = _compile(self)

    def __eq__(self, other: object) -> bool:
        # The compiled matchers are derived state (closures): compare the configuration itself.
        if not isinstance(other, SignalConfig):
            return NotImplemented
        return (self.threshold, self.default, self.rules) == (other.threshold, other.default, other.rules)

    def model_copy(self, *, update: Mapping[str, Any] | None = None, deep: bool = False) -> Self:
        copy = super().model_copy(update=update, deep=deep)
        copy._compiled = _compile(copy)
        return copy


# --------------------------------------------------------------------------------------------------
# Compilation: everything score_event needs, as flat tuples and closures.

_NAME_ANY: Final = 0
_NAME_EXACT: Final = 1
_NAME_GLOB: Final = 2
_GLOB_CHARS: Final = frozenset("*?[")

# (name mode, casefolded name or glob matcher, the where condition or None, precomputed score)
_CompiledRule = tuple[int, Any, Check | None, SignalScore]


@dataclass(frozen=True, slots=True)
class _Compiled:
    by_type: dict[str, tuple[_CompiledRule, ...]]
    other_types: tuple[_CompiledRule, ...]  # for event types outside EVENT_TYPES
    default: SignalScore


def _compile_rule(index: int, rule: SignalRule, threshold: float) -> _CompiledRule:
    mode: int = _NAME_ANY
    matcher: Any = None
    if rule.event is not None:
        pattern = rule.event.casefold()
        if _GLOB_CHARS.isdisjoint(pattern):
            mode, matcher = _NAME_EXACT, pattern
        else:
            mode, matcher = _NAME_GLOB, re.compile(fnmatch.translate(pattern)).match
    conditions = rule.where.check if rule.where else None
    score = SignalScore(
        weight=rule.weight,
        confidence=rule.confidence,
        high_signal=rule.high_signal,
        suppressed=rule.confidence < threshold,
        rule=rule.label if rule.label is not None else f"rules[{index}]",
    )
    return (mode, matcher, conditions, score)


def _applies_to(rule: SignalRule, event_type: str | None) -> bool:
    if rule.type is not None:
        return rule.type == event_type
    if rule.event is not None:
        return event_type == "track"
    return True


def _compile(config: SignalConfig) -> _Compiled:
    pairs = [(rule, _compile_rule(i, rule, config.threshold)) for i, rule in enumerate(config.rules)]
    by_type = {
        event_type: tuple(c for rule, c in pairs if _applies_to(rule, event_type))
        for event_type in EVENT_TYPES
    }
    other = tuple(c for rule, c in pairs if _applies_to(rule, None))
    default = SignalScore(
        weight=config.default.weight,
        confidence=config.default.confidence,
        high_signal=False,
        suppressed=config.default.confidence < config.threshold,
        rule=None,
    )
    return _Compiled(by_type=by_type, other_types=other, default=default)


# --------------------------------------------------------------------------------------------------
# Scoring


_NO_PROPERTIES: Final[Mapping[str, Any]] = {}


def score_event(
    config: SignalConfig,
    *,
    event_type: str,
    name: str | None,
    properties: Mapping[str, Any] | None,
) -> SignalScore:
    """Weigh one event: the score of the first rule that matches it, else the config's default."""
    compiled: _Compiled = config.__pydantic_private__["_compiled"]  # type: ignore[index]
    rules = compiled.by_type.get(event_type)
    if rules is None:
        normalised = event_type.lower() if isinstance(event_type, str) else None
        rules = compiled.by_type.get(normalised, compiled.other_types) if normalised else compiled.other_types
    folded: str | None = name.casefold() if isinstance(name, str) else None
    facts: dict[str, Any] | None = None
    if properties is None or (type(properties) is not dict and not isinstance(properties, Mapping)):
        properties = _NO_PROPERTIES
    for mode, matcher, where, score in rules:
        if mode:
            if folded is None:
                continue
            if mode == _NAME_EXACT:
                if folded != matcher:
                    continue
            elif matcher(folded) is None:
                continue
        if where is not None:
            if facts is None:
                facts = {"properties": properties}
            if not where(facts, None):
                continue
        return score
    return compiled.default


# --------------------------------------------------------------------------------------------------
# Loading and dumping


def load_signal_config(source: str | Mapping[str, Any] | None, *, path: str = "<signals>") -> SignalConfig:
    """Load and validate a signal config from YAML (JSON when ``path`` ends in ``.json``) text or a mapping;
    None or an empty document gives :data:`DEFAULT_SIGNAL_CONFIG`.

    Raises :class:`SignalConfigError` listing every problem, text as ``path:line: rules[2].where.score:
    message`` and a mapping as ``rules[2].where.score: message``.
    """
    if source is None:
        return DEFAULT_SIGNAL_CONFIG
    doc = load_document(source, file=path) if isinstance(source, str) else Document.of(source)
    return validate(SignalConfig, doc, error=SignalConfigError, default=DEFAULT_SIGNAL_CONFIG)


def dump_signal_config(config: SignalConfig) -> dict[str, Any]:
    """The config as plain JSON data that :func:`load_signal_config` turns back into an equal config."""
    rules: list[dict[str, Any]] = []
    for rule in config.rules:
        item: dict[str, Any] = {}
        if rule.event is not None:
            item["event"] = rule.event
        if rule.type is not None:
            item["type"] = rule.type
        if rule.where:
            item["where"] = rule.where.to_data()
        item["weight"] = rule.weight
        item["confidence"] = rule.confidence
        item["high_signal"] = rule.high_signal
        if rule.label is not None:
            item["label"] = rule.label
        rules.append(item)
    return {
        "threshold": config.threshold,
        "default": {"weight": config.default.weight, "confidence": config.default.confidence},
        "rules": rules,
    }


def _builtin_defaults() -> SignalConfig:
    def milestone(event: str, weight: float, label: str) -> dict[str, Any]:
        return {"event": event, "weight": weight, "confidence": 1.0, "high_signal": True, "label": label}

    return SignalConfig.model_validate(
        {
            "threshold": 0.5,
            "default": {"weight": 1.0, "confidence": 0.8},
            "rules": [
                milestone("Order Completed", 10, "order_completed"),
                milestone("Subscription Renewed", 8, "subscription_renewed"),
                milestone("Assessment Completed", 5, "assessment_completed"),
                milestone("Quiz Completed", 5, "quiz_completed"),
                milestone("Module Completed", 3, "module_completed"),
                milestone("Lesson Completed", 3, "lesson_completed"),
                {"type": "identify", "weight": 1.0, "confidence": 1.0, "label": "identify"},
                {"type": "page", "weight": 0.2, "confidence": 0.6, "label": "page_view"},
                {"type": "screen", "weight": 0.2, "confidence": 0.6, "label": "screen_view"},
            ],
        }
    )


DEFAULT_SIGNAL_CONFIG: Final[SignalConfig] = _builtin_defaults()
"""Used when a workspace configured nothing: purchases, renewals and learning milestones are high-signal."""
