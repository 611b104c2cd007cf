"""Hand-built feature events."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from offerloop.features.spec import FeatureSpec, load_feature_spec
from offerloop.features.state import FeatureEvent, apply_event, new_state, read_features

NOW = datetime(2026, 9, 1, 12, 0, tzinfo=UTC)  # a Tuesday


def at(days_ago: float = 0.0, **delta: float) -> datetime:
    return NOW - timedelta(days=days_ago) + timedelta(**delta)


def ev(
    name: str | None = None,
    when: datetime = NOW,
    props: Mapping[str, Any] | None = None,
    *,
    type: str = "track",
    tz: str | None = None,
    suppressed: bool = False,
    channel: str | None = None,
    weight: float = 1.0,
    confidence: float = 1.0,
) -> FeatureEvent:
    context: dict[str, Any] = {"timezone": tz} if tz is not None else {}
    return FeatureEvent(
        type=type,
        name=name,
        timestamp=when,
        properties=dict(props or {}),
        context=context,
        weight=weight,
        confidence=confidence,
        suppressed=suppressed,
        high_signal=False,
        channel=channel,
    )


def spec_of(*features: Mapping[str, Any], suppressed_factor: float = 0.25) -> FeatureSpec:
    return load_feature_spec(
        {"suppressed_factor": suppressed_factor, "features": [dict(f) for f in features]}
    )


def run(spec: FeatureSpec, events: Iterable[FeatureEvent], now: datetime = NOW) -> dict[str, Any]:
    state = new_state()
    for event in events:
        state = apply_event(state, event, spec)
    return read_features(state, spec, now=now)
