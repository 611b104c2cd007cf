"""Declarative per-workspace feature definitions: what to keep up to date for every buyer.

A spec is YAML (or the equivalent mapping)::

    suppressed_factor: 0.25       # a suppressed event counts this much in counts, decayed counts, shares
    features:
      - {name: orders, kind: count, match: {event: "Order Completed"}}
      - {name: page_views_30d, kind: decayed_count, match: {type: page}, half_life_days: 30}
      - {name: stage, kind: stage, stages: [{name: visitor}, {name: customer, match: {event: "Order Completed"}}]}

Kinds (``match`` is optional where shown in brackets; without it every event counts):

==================  ===========================================================================================
count               [match]; a suppressed event adds ``suppressed_factor`` instead of 1
decayed_count       [match], half_life_days; exponential decay evaluated at read time
sum                 match, value (property path), scale (default 1), fallback: {value, scale} used when the
                    value is absent or not a number; numbers and decimal strings ("29.70") are accepted.
                    Money: ``currency: {property: currency, code: USD}`` sums only amounts in ``code`` (an
                    event without the property is in ``code``); amounts in other ISO 4217 currencies are
                    read out apart as ``<name>.<CODE>`` (never added together: there is no exchange rate),
                    and an event whose currency is not an ISO 4217 code counts nowhere.  With it,
                    ``scale: minor_units`` turns major units into the event currency's minor units
                    (x100 for USD, x1 for JPY, x1000 for KWD; core.currencies' table)
latest              match, value: the property's value on the latest matching event (by timestamp)
latest_object       match, value: the latest mapping at that path, flattened to ``name.key`` features
first_value         [match], value (property path) or value_from (channel|name|type): earliest by timestamp
last_value          same, latest by timestamp
distinct_count      match, value: number of distinct values seen (at most 1,000 are kept)
min_delay_minutes   match, since_property: minimum over events of (timestamp - the time in that property)
weekday_share       [match], weekdays (0 = Monday): share of events on those weekdays in the event's local
                    time (``timestamp`` in ``context.timezone``, an IANA name; UTC when absent or unknown)
top_local_hour      [match]: the local hour (0-23) with the most events
share               match, [of]: share (0-1) of the events matching ``of`` (every event without it) that also
                    match ``match`` -- e.g. product views among page views and product views
recency_days        [match]: days from the latest matching event to the read time
flag                set_on, [clear_on]: true when the latest matching event (by timestamp) is a set_on one
stage               stages: ordered outcome stages; the feature is the highest stage reached.  A stage is
                    reached when ``match`` occurred at least ``min_count`` times and every ``all``
                    requirement ({match, min_count}) holds; a stage with neither is reached at once.
==================  ===========================================================================================

Every time above is the event's stored ``timestamp``: Segment's, corrected for the client's clock
(``receivedAt - (sentAt - originalTimestamp)``), never the device clock itself -- a phone set two hours
wrong has the same weekdays, hours and delays as one set right.  A history replayed or imported later keeps
its own days when its sender sets ``sentAt`` when it really sends (or, for a server-side backfill, sends
``timestamp`` without ``sentAt``).

``suppressed_share`` and ``signal_confidence`` are always computed and cannot be defined by a spec.

Every feature may give a ``default``: the value read out before anything was observed.  Without one:
0 for counts, sums and shares, -1 for ``latest``, ``min_delay_minutes``, ``top_local_hour`` and
``recency_days``, "" for ``first_value``/``last_value``/``stage`` (a stage with no requirement is reached
at once, so a stage feature normally reads its first stage), false for ``flag``.

A ``match`` is one mapping or a list of them (any may match):

* ``type``: track|page|screen|identify|group|alias.
* ``event``: the event name, shell-style glob (``"Community *"``), case-insensitive.  Without ``type`` it
  applies to track events; say ``type: page``/``type: screen`` to match page or screen names.
* ``where``: property path -> a value (equality) or ``{operator: operand}`` in the condition language
  (:mod:`offerloop.core.conditions`: eq, ne, gt, in, exists, contains, within, ...); every condition must
  hold.  A path is a literal key first, then split on dots (``plan.tier``; a number indexes a list).
  An absent property fails ``eq`` and ``in``, passes ``ne`` and ``not_in``, and matches ``exists: false``.
  Equality never conflates booleans and numbers; ``70`` equals ``70.0``.
  For identify events the properties are the traits.

YAML dates stay strings.  :func:`load_feature_spec` raises :class:`FeatureSpecError` naming each problem's
path (``features[3].half_life_days: required``).  ``spec.model_dump(mode="json")`` loads back to an equal
spec.  Matches are compiled once per spec (:func:`compile_matches`).
"""

from __future__ import annotations

import fnmatch
import json
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Annotated, Any, Final, Literal, Self

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    PrivateAttr,
    StrictBool,
    StrictFloat,
    StrictInt,
    StrictStr,
    StringConstraints,
    ValidationError,
    model_validator,
)
from pydantic_core import PydanticCustomError

from offerloop.core import currencies
from offerloop.core.conditions import MISSING, PropertiesWhere, problems_of, resolve
from offerloop.core.conditions import Where as Where
from offerloop.declarative import load_config, show

__all__ = [
    "BUILTIN_FEATURES",
    "DEFAULT_FEATURE_SPEC",
    "EVENT_TYPES",
    "FEATURE_KINDS",
    "MISSING",
    "CompiledMatch",
    "Feature",
    "FeatureSpec",
    "FeatureSpecError",
    "Match",
    "ShareFeature",
    "Stage",
    "StageRequirement",
    "compile_matches",
    "load_feature_spec",
    "resolve_path",
]

EVENT_TYPES: Final[tuple[str, ...]] = ("track", "page", "screen", "identify", "group", "alias")
FEATURE_KINDS: Final[tuple[str, ...]] = (
    "count",
    "decayed_count",
    "sum",
    "latest",
    "latest_object",
    "first_value",
    "last_value",
    "distinct_count",
    "min_delay_minutes",
    "weekday_share",
    "top_local_hour",
    "recency_days",
    "flag",
    "stage",
    "share",
)
BUILTIN_FEATURES: Final[tuple[str, ...]] = ("suppressed_share", "signal_confidence")
_NAMED_TYPES: Final = frozenset({"track", "page", "screen"})


class FeatureSpecError(ValueError):
    """A spec that cannot be used.  ``str(error)`` lists every problem, one per line, each with its path."""

    def __init__(self, problems: Sequence[str]) -> None:
        self.problems: tuple[str, ...] = tuple(problems)
        super().__init__("\n".join(self.problems))


def _problem(path: str, message: str) -> PydanticCustomError:
    """An error reported at ``path`` below the validator's own location."""
    return PydanticCustomError("spec_problem", "{path}: {message}", {"path": path, "message": message})


# --------------------------------------------------------------------------------------------------
# Field types

EventType = Literal["track", "page", "screen", "identify", "group", "alias"]
FeatureName = Annotated[
    str, StringConstraints(strict=True, pattern=r"^[A-Za-z_][A-Za-z0-9_]*$", max_length=64)
]
NonEmptyText = Annotated[str, StringConstraints(strict=True, min_length=1, max_length=200)]
Scalar = Annotated[StrictStr | StrictBool | StrictInt | StrictFloat, Field(union_mode="left_to_right")]
PositiveNumber = Annotated[float, Field(strict=True, gt=0, allow_inf_nan=False)]
Factor = Annotated[float, Field(strict=True, ge=0, le=1, allow_inf_nan=False)]
Scale = Annotated[float, Field(strict=True, allow_inf_nan=False)]
# "minor_units": x 10**(ISO 4217 exponent of the event's currency), for a sum with a ``currency``
MoneyScale = Scale | Literal["minor_units"]
Count = Annotated[int, Field(strict=True, ge=1)]
Weekday = Annotated[int, Field(strict=True, ge=0, le=6)]
ValueSource = Literal["channel", "name", "type"]


def _property_path(value: object) -> object:
    if isinstance(value, str) and (not value or any(not part for part in value.split("."))):
        raise ValueError(f"invalid property path {show(value)} (empty segment)")
    return value


PropertyPath = Annotated[NonEmptyText, BeforeValidator(_property_path)]


def _as_match_list(value: object) -> object:
    if isinstance(value, Mapping | BaseModel):
        return [value]
    return value


# --------------------------------------------------------------------------------------------------
# Matching


class Match(BaseModel):
    """Which events a feature looks at; every given part must hold."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    type: EventType | None = None
    event: NonEmptyText | None = None
    where: PropertiesWhere = Field(default_factory=lambda: Where.of(None, "properties"))

    @model_validator(mode="after")
    def _event_needs_a_named_type(self) -> Self:
        if self.event is not None and self.type is not None and self.type not in _NAMED_TYPES:
            raise _problem(
                "event", f"{self.type} events have no name: 'event' works only with track, page or screen"
            )
        return self


MatchList = Annotated[tuple[Match, ...], BeforeValidator(_as_match_list), Field(min_length=1)]


class StageRequirement(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    match: MatchList
    min_count: Count = 1


class Stage(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: NonEmptyText
    match: MatchList | None = None
    min_count: Count = 1
    all: tuple[StageRequirement, ...] = ()

    @model_validator(mode="after")
    def _min_count_needs_match(self) -> Self:
        if self.match is None and "min_count" in self.model_fields_set and self.min_count != 1:
            raise _problem("min_count", "needs 'match' (or give min_count inside 'all')")
        return self

    def requirements(self) -> tuple[StageRequirement, ...]:
        """Everything that must hold for the stage to be reached (nothing: reached at once)."""
        own = () if self.match is None else (StageRequirement(match=self.match, min_count=self.min_count),)
        return own + self.all


class Fallback(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    value: PropertyPath
    scale: MoneyScale = 1.0


def _currency_code(value: object) -> object:
    if isinstance(value, str):
        try:
            return currencies.normalize(value)
        except currencies.InvalidCurrency:
            raise ValueError(f"not an ISO 4217 currency code: {show(value)} (e.g. USD, EUR, JPY)") from None
    return value


class SumCurrency(BaseModel):
    """Where a money sum finds each event's currency, and the one currency it totals."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    property: PropertyPath = "currency"
    code: Annotated[NonEmptyText, BeforeValidator(_currency_code)] = "USD"


# --------------------------------------------------------------------------------------------------
# Features, one model per kind


class _FeatureBase(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)

    name: FeatureName
    default: Scalar | None = None


class CountFeature(_FeatureBase):
    kind: Literal["count"]
    match: MatchList | None = None


class DecayedCountFeature(_FeatureBase):
    kind: Literal["decayed_count"]
    match: MatchList | None = None
    half_life_days: PositiveNumber


class SumFeature(_FeatureBase):
    kind: Literal["sum"]
    match: MatchList
    value: PropertyPath
    scale: MoneyScale = 1.0
    fallback: Fallback | None = None
    currency: SumCurrency | None = None

    @model_validator(mode="after")
    def _minor_units_need_currency(self) -> Self:
        if self.currency is None:
            if self.scale == "minor_units":
                raise _problem("scale", "minor_units needs 'currency' (e.g. {property: currency, code: USD})")
            if self.fallback is not None and self.fallback.scale == "minor_units":
                raise _problem("fallback.scale", "minor_units needs 'currency' on the feature")
        return self


class LatestFeature(_FeatureBase):
    kind: Literal["latest"]
    match: MatchList
    value: PropertyPath


class LatestObjectFeature(_FeatureBase):
    kind: Literal["latest_object"]
    match: MatchList
    value: PropertyPath
    max_keys: Annotated[int, Field(strict=True, ge=1, le=200)] = 50


class _ValueFeature(_FeatureBase):
    match: MatchList | None = None
    value: PropertyPath | None = None
    value_from: ValueSource | None = None

    @model_validator(mode="after")
    def _one_source(self) -> Self:
        if (self.value is None) == (self.value_from is None):
            raise _problem("value", "give exactly one of 'value' (a property path) or 'value_from'")
        return self


class FirstValueFeature(_ValueFeature):
    kind: Literal["first_value"]


class LastValueFeature(_ValueFeature):
    kind: Literal["last_value"]


class DistinctCountFeature(_FeatureBase):
    kind: Literal["distinct_count"]
    match: MatchList
    value: PropertyPath


class MinDelayFeature(_FeatureBase):
    kind: Literal["min_delay_minutes"]
    match: MatchList
    since_property: PropertyPath


class WeekdayShareFeature(_FeatureBase):
    kind: Literal["weekday_share"]
    match: MatchList | None = None
    weekdays: Annotated[tuple[Weekday, ...], Field(min_length=1)]


class ShareFeature(_FeatureBase):
    kind: Literal["share"]
    match: MatchList
    of: MatchList | None = None


class TopLocalHourFeature(_FeatureBase):
    kind: Literal["top_local_hour"]
    match: MatchList | None = None


class RecencyDaysFeature(_FeatureBase):
    kind: Literal["recency_days"]
    match: MatchList | None = None


class FlagFeature(_FeatureBase):
    kind: Literal["flag"]
    set_on: MatchList
    clear_on: MatchList | None = None


class StageFeature(_FeatureBase):
    kind: Literal["stage"]
    stages: Annotated[tuple[Stage, ...], Field(min_length=1)]

    @model_validator(mode="after")
    def _unique_stage_names(self) -> Self:
        seen: set[str] = set()
        for i, stage in enumerate(self.stages):
            if stage.name in seen:
                raise _problem(f"stages[{i}].name", f"duplicate stage name {stage.name!r}")
            seen.add(stage.name)
        return self


Feature = Annotated[
    CountFeature
    | DecayedCountFeature
    | SumFeature
    | LatestFeature
    | LatestObjectFeature
    | FirstValueFeature
    | LastValueFeature
    | DistinctCountFeature
    | MinDelayFeature
    | WeekdayShareFeature
    | TopLocalHourFeature
    | RecencyDaysFeature
    | FlagFeature
    | StageFeature
    | ShareFeature,
    Field(discriminator="kind"),
]


class FeatureSpec(BaseModel):
    """A workspace's feature definitions.  Build with :func:`load_feature_spec` for path-named errors."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    suppressed_factor: Factor = 0.25
    features: tuple[Feature, ...] = ()

    # Derived runtime (compiled matchers and updaters), filled lazily by offerloop.features.state.
    _runtime: object = PrivateAttr(default=None)

    @model_validator(mode="after")
    def _unique_names(self) -> Self:
        seen: set[str] = set()
        for i, feature in enumerate(self.features):
            if feature.name in BUILTIN_FEATURES:
                raise _problem(f"features[{i}].name", f"{feature.name!r} is built in and always computed")
            if feature.name in seen:
                raise _problem(f"features[{i}].name", f"duplicate feature name {feature.name!r}")
            seen.add(feature.name)
        return self

    def __eq__(self, other: object) -> bool:
        # The runtime is derived state: compare the definitions only.
        if not isinstance(other, FeatureSpec):
            return NotImplemented
        return (self.suppressed_factor, self.features) == (other.suppressed_factor, other.features)

    def __hash__(self) -> int:
        return hash(json.dumps(self.model_dump(mode="json"), sort_keys=True))

    def model_copy(self, *, update: Mapping[str, Any] | None = None, deep: bool = False) -> Self:
        copy = super().model_copy(update=update, deep=deep)
        copy._runtime = None
        return copy

    def feature_names(self) -> list[str]:
        """Names read out for this spec (``latest_object`` features expand to ``name.key`` at read time)."""
        return [feature.name for feature in self.features] + list(BUILTIN_FEATURES)


# --------------------------------------------------------------------------------------------------
# Compiled matching


def resolve_path(properties: Mapping[str, Any], path: str) -> Any:
    """The value at ``path`` below ``properties`` (a literal key first, then dotted segments), or MISSING."""
    return resolve({"properties": properties}, f"properties.{path}")


@dataclass(frozen=True, slots=True)
class CompiledMatch:
    """One :class:`Match`: a test on (type, name), done once per distinct pair, and the ``where`` test."""

    types: frozenset[str] | None  # None: any type
    exact: str | None  # casefolded event name
    glob: Callable[[str], object] | None  # compiled glob on the casefolded name
    where: Where | None  # None: every event of the accepted (type, name)

    def accepts(self, event_type: str, name: str | None) -> bool:
        if self.types is not None and event_type not in self.types:
            return False
        if self.exact is None and self.glob is None:
            return True
        if not isinstance(name, str):
            return False
        folded = name.casefold()
        if self.exact is not None:
            return folded == self.exact
        assert self.glob is not None
        return self.glob(folded) is not None

    def matches(self, event_type: str, name: str | None, properties: Mapping[str, Any]) -> bool:
        return self.accepts(event_type, name) and (self.where is None or self.where.holds(properties))


def compile_match(match: Match) -> CompiledMatch:
    types: frozenset[str] | None
    if match.type is not None:
        types = frozenset({match.type})
    elif match.event is not None:
        types = frozenset({"track"})
    else:
        types = None
    exact: str | None = None
    glob: Callable[[str], object] | None = None
    if match.event is not None:
        pattern = match.event.casefold()
        if set("*?[").isdisjoint(pattern):
            exact = pattern
        else:
            glob = re.compile(fnmatch.translate(pattern)).match
    return CompiledMatch(types=types, exact=exact, glob=glob, where=match.where or None)


def compile_matches(matches: Sequence[Match] | None) -> tuple[CompiledMatch, ...]:
    """A match list (any may match); None, meaning every event, compiles to one catch-all match."""
    if matches is None:
        return (CompiledMatch(types=None, exact=None, glob=None, where=None),)
    return tuple(compile_match(match) for match in matches)


# --------------------------------------------------------------------------------------------------
# Loading


_KIND_TAGS: Final = frozenset(FEATURE_KINDS)


def _format_loc(loc: Sequence[int | str]) -> str:
    """``("features", 3, "stage", "stages", 1, "name")`` -> ``features[3].stages[1].name``."""
    out = ""
    for position, part in enumerate(loc):
        if isinstance(part, int):
            out += f"[{part}]"
        elif position == 2 and loc[0] == "features" and part in _KIND_TAGS:
            continue  # the discriminated union's tag
        else:
            out += f".{part}" if out else part
    return out


def _kind_of(loc: Sequence[int | str]) -> str | None:
    if len(loc) >= 3 and loc[0] == "features" and isinstance(loc[1], int) and loc[2] in _KIND_TAGS:
        return str(loc[2])
    return None


def _join(base: str, path: str) -> str:
    if not base:
        return path
    return base + path if path.startswith("[") else f"{base}.{path}"


def _problems(exc: ValidationError) -> list[str]:
    problems: list[str] = []
    errors = exc.errors()
    deeper = {tuple(error["loc"][:n]) for error in errors for n in range(len(error["loc"]))}
    for error in errors:
        loc = tuple(error["loc"])
        kind = error["type"]
        if kind == "too_short" and loc in deeper:
            continue  # "too few items" only because some items were invalid: those are reported
        ctx = error.get("ctx") or {}
        if loc and loc[-1] == "[key]":
            loc = loc[:-1]
        where = _format_loc(loc)
        found = problems_of(error)
        if found is not None:
            problems.extend(f"{_join(where, path) if path else where}: {message}" for path, message in found)
            continue
        if kind == "spec_problem":
            where, message = _join(where, str(ctx["path"])), str(ctx["message"])
        elif kind == "extra_forbidden":
            feature_kind = _kind_of(loc)
            if feature_kind is not None and len(loc) == 4:
                message = f"unknown key for kind {feature_kind}"
            else:
                message = "unknown key"
        elif kind == "union_tag_not_found":
            where, message = _join(where, "kind"), f"required (one of {', '.join(FEATURE_KINDS)})"
        elif kind == "union_tag_invalid":
            tag = ctx.get("tag")
            where = _join(where, "kind")
            message = f"unknown kind {show(tag)} (expected one of {', '.join(FEATURE_KINDS)})"
        elif kind == "missing":
            feature_kind = _kind_of(loc)
            message = f"required for kind {feature_kind}" if feature_kind and len(loc) == 4 else "required"
        elif kind == "value_error":
            message = str(ctx.get("error", error["msg"]))
        elif kind in ("model_type", "model_attributes_type", "dict_type"):
            message = f"must be a mapping, got {show(error['input'])}"
        elif kind in ("list_type", "tuple_type"):
            message = f"must be a list, got {show(error['input'])}"
        else:
            message = f"{error['msg']}, got {show(error['input'])}"
        problems.append(f"{where or 'spec'}: {message}")
    return problems


def load_feature_spec(source: str | Mapping[str, Any] | None) -> FeatureSpec:
    """Load and validate a spec from YAML text or a mapping; None (or an empty document) gives the default.

    Raises :class:`FeatureSpecError` (a ValueError) listing every problem, one per line, each starting
    with its path: ``features[3].half_life_days: required for kind decayed_count``.
    """
    return load_config(
        source,
        model=FeatureSpec,
        default=DEFAULT_FEATURE_SPEC,
        root="spec",
        yaml_prefix="spec: ",
        problems=_problems,
        error=FeatureSpecError,
    )


# --------------------------------------------------------------------------------------------------
# The built-in default, covering what the demo personas use (examples/demo/features.yaml writes it out)

_ORDER: Final = {"event": "Order Completed"}
_SUBSCRIBED: Final = [{"event": "Subscription Started"}, {"event": "Subscription Renewed"}]
_COMMUNITY: Final = {"event": "Community *"}
_PRESENT: Final = {"exists": True, "not_in": ["", None]}

DEFAULT_FEATURE_SPEC_DATA: Final[dict[str, Any]] = {
    "suppressed_factor": 0.25,
    "features": [
        {"name": "orders", "kind": "count", "match": _ORDER},
        {
            "name": "monetary_minor",
            "kind": "sum",
            "match": _ORDER,
            "value": "total_minor",
            "fallback": {"value": "revenue", "scale": "minor_units"},
            "currency": {"property": "currency", "code": "USD"},
        },
        {
            "name": "drop_orders",
            "kind": "count",
            "match": {**_ORDER, "where": {"product_type": "drop"}},
        },
        {
            "name": "minutes_to_first_drop_purchase",
            "kind": "min_delay_minutes",
            "match": {**_ORDER, "where": {"product_type": "drop"}},
            "since_property": "drop_opened_at",
        },
        # Minutes from a drop's release (the ISO time in release_at) to the buyer's first look at it.
        {
            "name": "minutes_to_first_drop_view",
            "kind": "min_delay_minutes",
            "match": {"event": "Drop Viewed"},
            "since_property": "release_at",
        },
        {"name": "drop_views", "kind": "count", "match": {"event": "Drop Viewed"}},
        {"name": "coupon_orders", "kind": "count", "match": {**_ORDER, "where": {"coupon": _PRESENT}}},
        {
            "name": "coupon_attempts",
            "kind": "count",
            "match": [{"event": "Coupon Applied"}, {"event": "Coupon Denied"}],
        },
        {
            "name": "product_view_share",
            "kind": "share",
            "match": {"event": "Product Viewed"},
            "of": [{"type": "page"}, {"type": "screen"}, {"event": "Product Viewed"}],
        },
        {"name": "gift_orders", "kind": "count", "match": {**_ORDER, "where": {"gift": True}}},
        {"name": "weekend_share", "kind": "weekday_share", "weekdays": [5, 6]},
        {"name": "active_hour", "kind": "top_local_hour"},
        {
            "name": "subscription_active",
            "kind": "flag",
            "set_on": _SUBSCRIBED,
            "clear_on": {"event": "Subscription Cancel*"},
        },
        {"name": "renewals", "kind": "count", "match": {"event": "Subscription Renewed"}},
        {
            "name": "modules_completed",
            "kind": "distinct_count",
            "match": {"event": "Module Completed"},
            "value": "module_id",
        },
        {"name": "lessons_started", "kind": "count", "match": {"event": "Lesson Started"}},
        {"name": "page_views_30d", "kind": "decayed_count", "match": {"type": "page"}, "half_life_days": 30},
        {"name": "quiz_completed", "kind": "flag", "set_on": {"event": "Quiz Completed"}},
        {
            "name": "quiz_answers",
            "kind": "latest_object",
            "match": {"event": "Quiz Completed"},
            "value": "answers",
        },
        {
            "name": "assessment_score",
            "kind": "latest",
            "match": {"event": "Assessment Completed"},
            "value": "score",
        },
        {"name": "community_posts_30d", "kind": "decayed_count", "match": _COMMUNITY, "half_life_days": 30},
        {"name": "community_posts", "kind": "count", "match": _COMMUNITY},
        {"name": "events_30d", "kind": "decayed_count", "half_life_days": 30},
        {"name": "first_touch_channel", "kind": "first_value", "value_from": "channel"},
        {"name": "last_touch_channel", "kind": "last_value", "value_from": "channel"},
        {"name": "days_since_last_seen", "kind": "recency_days"},
        {
            "name": "stage",
            "kind": "stage",
            "stages": [
                {"name": "visitor"},
                {"name": "lead", "match": {"type": "identify", "where": {"email": _PRESENT}}},
                {
                    "name": "engaged",
                    "match": [{"event": "Quiz Completed"}, {"event": "Assessment Completed"}],
                },
                {"name": "customer", "match": _ORDER},
                {"name": "repeat_customer", "match": _ORDER, "min_count": 2},
                {"name": "subscriber", "match": _SUBSCRIBED},
                {"name": "superfan", "all": [{"match": _ORDER, "min_count": 3}, {"match": _COMMUNITY}]},
            ],
        },
    ],
}

DEFAULT_FEATURE_SPEC: Final[FeatureSpec] = FeatureSpec.model_validate(DEFAULT_FEATURE_SPEC_DATA)
"""Used when a workspace configured nothing."""
