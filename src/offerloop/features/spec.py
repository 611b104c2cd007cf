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

YAML dates stay strings.  :func:`load_feature_spec` raises :class:`FeatureSpecError` naming every problem
at its line and path (``features.yaml:12: features[3]: missing required key 'half_life_days' for kind
decayed_count``), through :mod:`offerloop.declarative`.  ``spec.model_dump(mode="json")`` loads back to an equal
spec.  Matches are compiled once per spec (:func:`compile_matches`).
"""

from __future__ import annotations

import json
from collections.abc import Mapping
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
    model_validator,
)

from offerloop.core import currencies
from offerloop.declarative import Document, load_document, matching, problem_at, show, validate
from offerloop.features.defaults import DEFAULT_FEATURE_SPEC_DATA
from offerloop.features.exceptions import InvalidFeatureSpec
from offerloop.features.matching import (
    EVENT_TYPES,
    MISSING,
    CompiledMatch,
    Match,
    MatchList,
    NonEmptyText,
    PropertyPath,
    Where,
    compile_matches,
    resolve_path,
)

__all__ = [
    "BUILTIN_FEATURES",
    "DEFAULT_FEATURE_SPEC",
    "DEFAULT_FEATURE_SPEC_DATA",
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
    "Where",
    "compile_matches",
    "load_feature_spec",
    "resolve_path",
]

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

FeatureSpecError = InvalidFeatureSpec
"""A spec that cannot be used (422 ``invalid_feature_spec``): ``problems`` lists every problem."""


# --------------------------------------------------------------------------------------------------
# Field types

FeatureName = Annotated[
    str,
    matching(
        r"[A-Za-z_][A-Za-z0-9_]{0,63}", "a feature name (letters, digits and '_', not starting with a digit)"
    ),
]
Scalar = Annotated[StrictStr | StrictBool | StrictInt | StrictFloat, Field(union_mode="left_to_right")]
PositiveNumber = Annotated[float, Field(strict=True, gt=0, allow_inf_nan=False)]
Factor = Annotated[float, Field(strict=True, ge=0, le=1, allow_inf_nan=False)]
Scale = Annotated[float, Field(strict=True, allow_inf_nan=False)]
# "minor_units": x 10**(ISO 4217 exponent of the event's currency), for a sum with a ``currency``
MoneyScale = Scale | Literal["minor_units"]
Count = Annotated[int, Field(strict=True, ge=1)]
Weekday = Annotated[int, Field(strict=True, ge=0, le=6)]
ValueSource = Literal["channel", "name", "type"]


# --------------------------------------------------------------------------------------------------
# Stages, sums


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
            raise problem_at(("min_count",), "needs 'match' (or give min_count inside 'all')")
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
                raise problem_at(
                    ("scale",), "minor_units needs 'currency' (e.g. {property: currency, code: USD})"
                )
            if self.fallback is not None and self.fallback.scale == "minor_units":
                raise problem_at(("fallback", "scale"), "minor_units needs 'currency' on the feature")
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
            raise problem_at(("value",), "give exactly one of 'value' (a property path) or 'value_from'")
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
                raise problem_at(("stages", i, "name"), f"duplicate stage name {stage.name!r}")
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
                raise problem_at(("features", i, "name"), f"{feature.name!r} is built in and always computed")
            if feature.name in seen:
                raise problem_at(("features", i, "name"), f"duplicate feature name {feature.name!r}")
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
# Loading


def load_feature_spec(source: str | Mapping[str, Any] | None, *, path: str = "<features>") -> FeatureSpec:
    """Load and validate a spec from YAML (JSON when ``path`` ends in ``.json``) text or a mapping; None or
    an empty document gives :data:`DEFAULT_FEATURE_SPEC`.

    Raises :class:`FeatureSpecError` listing every problem, text as ``path:line: features[3]:
    missing required key 'half_life_days' for kind decayed_count`` and a mapping without the
    ``path:line: ``.
    """
    if source is None:
        return DEFAULT_FEATURE_SPEC
    doc = load_document(source, file=path) if isinstance(source, str) else Document.of(source)
    return validate(FeatureSpec, doc, error=FeatureSpecError, default=DEFAULT_FEATURE_SPEC)


DEFAULT_FEATURE_SPEC: Final[FeatureSpec] = FeatureSpec.model_validate(DEFAULT_FEATURE_SPEC_DATA)
"""Used when a workspace configured nothing (:data:`offerloop.features.defaults.DEFAULT_FEATURE_SPEC_DATA`)."""
