"""What the feature kinds share: the event they fold in, the value types, the coercions of event values,
and the buyer's local time (see :mod:`offerloop.features.state` for the state layout)."""

from __future__ import annotations

import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, tzinfo
from decimal import Decimal
from typing import Any, Final
from zoneinfo import ZoneInfo

from offerloop.core.conditions import reader
from offerloop.features.spec import CompiledMatch, Feature, FirstValueFeature, LastValueFeature

_DAY: Final = 86_400.0
_INF: Final = math.inf
_MAX_TEXT: Final = 500

FeatureValue = float | int | str | bool


@dataclass(frozen=True, slots=True)
class FeatureEvent:
    type: str  # track|page|screen|identify|group|alias
    name: str | None  # track event name / page name
    timestamp: datetime  # aware UTC, skew-corrected
    properties: Mapping[str, Any]  # for identify: the traits
    context: Mapping[str, Any]  # Segment context (timezone, page, campaign…)
    weight: float  # from signal weighting
    confidence: float
    suppressed: bool  # under the confidence threshold: counts less
    high_signal: bool
    channel: str | None = None  # touchpoint channel of this event if any


_Local = tuple[int, int] | None  # (local weekday, local hour), computed only when a feature needs it
_Update = Callable[[dict[str, Any], FeatureEvent, float, float, _Local], None]
_Reader = Callable[[Mapping[str, Any], float, dict[str, FeatureValue]], None]


@dataclass(frozen=True, slots=True)
class _Action:
    matches: tuple[CompiledMatch, ...]
    update: _Update
    local: bool  # needs the local weekday/hour


def _state_key(feature: Feature) -> str:
    return f"{feature.name}:{feature.kind}"


def _default(feature: Feature, fallback: FeatureValue) -> FeatureValue:
    return feature.default if feature.default is not None else fallback


# --------------------------------------------------------------------------------------------------
# Value helpers


def _scalar(value: Any) -> FeatureValue | None:
    """A value a feature can hold: str (truncated), bool, int or finite float; anything else is None."""
    if isinstance(value, str):
        return value if len(value) <= _MAX_TEXT else value[:_MAX_TEXT]
    if isinstance(value, bool | int):
        return value
    if isinstance(value, float):
        return value if math.isfinite(value) else None
    return None


def _number(value: Any, scale: float) -> float | None:
    """A number, or a decimal string in ``value`` times ``scale`` (exact for money: "29.70" x 100 = 2970)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        if not math.isfinite(value):
            return None
        if scale == 1.0:
            return float(value)
        text = str(value)
    elif isinstance(value, str):
        if "_" in value or len(value) > 64:  # Decimal would accept "1_000"; amounts never look like that
            return None
        text = value.strip()
    else:
        return None
    try:
        exact = Decimal(text) * Decimal(scale)
    except (ArithmeticError, ValueError):  # decimal's errors (InvalidOperation, Overflow: "1e999999" x 100)
        return None
    if not exact.is_finite():
        return None
    result = float(exact)
    return result if math.isfinite(result) else None


def _flatten(
    value: Mapping[Any, Any], prefix: str, out: dict[str, FeatureValue], limit: int, depth: int
) -> None:
    for key, item in value.items():
        if len(out) >= limit:
            return
        path = f"{prefix}{key}"
        if isinstance(item, Mapping):
            if depth < 4:
                _flatten(item, path + ".", out, limit, depth + 1)
        elif isinstance(item, list):
            parts = [str(part) for part in item if _scalar(part) is not None]
            out[path] = ",".join(parts)[:_MAX_TEXT]
        else:
            scalar = _scalar(item)
            if scalar is not None:
                out[path] = scalar


def _property(path: str) -> Callable[[Mapping[str, Any]], Any]:
    return reader(path)


def _event_value(feature: FirstValueFeature | LastValueFeature) -> Callable[[FeatureEvent], Any]:
    if feature.value_from == "channel":
        return lambda event: event.channel
    if feature.value_from == "name":
        return lambda event: event.name
    if feature.value_from == "type":
        return lambda event: event.type
    assert feature.value is not None
    get = _property(feature.value)
    return lambda event: get(event.properties)


# --------------------------------------------------------------------------------------------------
# Local time

_ZONES: dict[str, tzinfo] = {}
_UTC_NAMES: Final = frozenset({"UTC", "Etc/UTC", "Z", "GMT", "Etc/GMT"})


def _zone(name: str) -> tzinfo:
    zone = _ZONES.get(name)
    if zone is None:
        try:
            zone = UTC if name in _UTC_NAMES else ZoneInfo(name)
        except Exception:  # unknown, malformed, or not a zone at all: UTC
            zone = UTC
        if len(_ZONES) >= 1024:
            _ZONES.clear()
        _ZONES[name] = zone
    return zone


def _local(ts: float, context: Mapping[str, Any]) -> tuple[int, int]:
    """(weekday with Monday = 0, hour) of ``ts`` in ``context.timezone``; UTC when absent or unknown."""
    name = context.get("timezone") if context else None
    zone = _zone(name) if name.__class__ is str and name else UTC
    if zone is not UTC:
        try:
            local = datetime.fromtimestamp(ts, zone)
            return local.weekday(), local.hour
        except (OverflowError, OSError, ValueError):  # past year 9999 (or before 1) in that zone: UTC
            pass
    days, seconds = divmod(ts, _DAY)
    return (int(days) + 3) % 7, int(seconds // 3600)  # 1970-01-01 was a Thursday
