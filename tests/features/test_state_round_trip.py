"""Order tolerance, JSON round-trips and state versions."""

from __future__ import annotations

import json
import random
from datetime import UTC, timedelta
from typing import Any

import pytest

from offerloop.features.spec import DEFAULT_FEATURE_SPEC
from offerloop.features.state import STATE_VERSION, FeatureEvent, apply_event, new_state, read_features

from .helpers import NOW, ev

ZONES = ("America/New_York", "Europe/London", "Asia/Tokyo", None)


def history(seed: int = 7, n: int = 300) -> list[FeatureEvent]:
    """A mixed buyer history covering every default feature."""
    rng = random.Random(seed)
    events: list[FeatureEvent] = []
    for i in range(n):
        when = NOW - timedelta(seconds=rng.randint(0, 120 * 86_400))
        tz = rng.choice(ZONES)
        channel = rng.choice((None, None, "social", "email", "search"))
        suppressed = rng.random() < 0.2
        r = rng.random()
        if r < 0.4:
            events.append(
                ev("Home", when, type="page", tz=tz, channel=channel, suppressed=suppressed, weight=0.2)
            )
        elif r < 0.5:
            props: dict[str, Any] = {"revenue": f"{rng.randint(1, 300)}.{rng.randint(0, 99):02d}"}
            if rng.random() < 0.5:
                props |= {
                    "product_type": "drop",
                    "drop_opened_at": (when - timedelta(minutes=rng.randint(1, 600))).isoformat(),
                }
            if rng.random() < 0.3:
                props["coupon"] = "SAVE10"
            if rng.random() < 0.2:
                props["gift"] = True
            events.append(ev("Order Completed", when, props, tz=tz, channel=channel, weight=10))
        elif r < 0.6:
            events.append(ev("Module Completed", when, {"module_id": f"m{rng.randint(1, 12)}"}, tz=tz))
        elif r < 0.65:
            events.append(ev("Quiz Completed", when, {"answers": {"goal": rng.choice("abc")}}, tz=tz))
        elif r < 0.7:
            events.append(ev("Assessment Completed", when, {"score": rng.randint(0, 100)}, tz=tz))
        elif r < 0.78:
            events.append(
                ev(
                    rng.choice(("Subscription Started", "Subscription Renewed", "Subscription Canceled")),
                    when,
                )
            )
        elif r < 0.85:
            events.append(ev("Community Comment Created", when, tz=tz, suppressed=suppressed))
        elif r < 0.9:
            events.append(ev(None, when, {"email": "x@example.com"}, type="identify", tz=tz))
        else:
            events.append(ev("Email Opened", when, tz=tz, suppressed=True, weight=0.2, confidence=0.3))
        if i == 0:  # a unique earliest and latest touch, so first/last touch have no ties
            events[-1] = ev("Home", NOW - timedelta(days=200), type="page", channel="paid")
    events.append(ev("Home", NOW + timedelta(minutes=1), type="page", channel="referral"))
    return events


def apply_all(events: list[FeatureEvent], state: dict[str, Any] | None = None) -> dict[str, Any]:
    state = new_state() if state is None else state
    for event in events:
        state = apply_event(state, event, DEFAULT_FEATURE_SPEC)
    return state


def approx(features: dict[str, Any]) -> dict[str, Any]:
    return {k: pytest.approx(v, rel=1e-9) if isinstance(v, float) else v for k, v in features.items()}


def test_out_of_order_gives_the_same_features() -> None:
    events = sorted(history(), key=lambda e: e.timestamp)
    in_order = read_features(apply_all(events), DEFAULT_FEATURE_SPEC, now=NOW)
    for seed in range(5):
        shuffled = list(events)
        random.Random(seed).shuffle(shuffled)
        assert read_features(apply_all(shuffled), DEFAULT_FEATURE_SPEC, now=NOW) == approx(in_order)
    reverse = read_features(apply_all(events[::-1]), DEFAULT_FEATURE_SPEC, now=NOW)
    assert reverse == approx(in_order)
    assert in_order["first_touch_channel"] == "paid"
    assert in_order["last_touch_channel"] == "referral"


def test_late_event_does_not_move_latest_values_backwards() -> None:
    state = apply_all(
        [
            ev("Assessment Completed", NOW - timedelta(days=1), {"score": 90}, channel="email"),
            ev("Assessment Completed", NOW - timedelta(days=5), {"score": 20}, channel="social"),
        ]
    )
    features = read_features(state, DEFAULT_FEATURE_SPEC, now=NOW)
    assert features["assessment_score"] == 90
    assert features["last_touch_channel"] == "email"
    assert features["first_touch_channel"] == "social"
    assert features["days_since_last_seen"] == 1.0
    # ... but it still counts
    assert features["events_30d"] == pytest.approx(0.5 ** (1 / 30) + 0.5 ** (5 / 30))


def test_json_round_trip_then_continue() -> None:
    events = history(seed=11)
    direct = apply_all(events)
    state = apply_all(events[:150])
    for _ in range(3):  # several round trips
        state = json.loads(json.dumps(state, allow_nan=False))
    state = apply_all(events[150:], state)
    assert json.loads(json.dumps(state, allow_nan=False)) == json.loads(json.dumps(direct))
    assert read_features(state, DEFAULT_FEATURE_SPEC, now=NOW) == read_features(
        direct, DEFAULT_FEATURE_SPEC, now=NOW
    )


def test_state_is_small_and_plain() -> None:
    state = apply_all(history(n=2000))
    text = json.dumps(state, allow_nan=False)
    assert len(text) < 4000
    assert json.loads(text) == state


def test_empty_dict_is_a_new_state_and_other_versions_are_refused() -> None:
    state = apply_event({}, ev("A"), DEFAULT_FEATURE_SPEC)
    assert state["v"] == STATE_VERSION and state["n"] == 1
    with pytest.raises(ValueError, match="replay"):
        apply_event({"v": STATE_VERSION + 1, "f": {}}, ev("A"), DEFAULT_FEATURE_SPEC)
    features = read_features({"v": 999}, DEFAULT_FEATURE_SPEC, now=NOW)
    assert features == read_features(new_state(), DEFAULT_FEATURE_SPEC, now=NOW)


def test_changing_a_feature_kind_starts_it_afresh() -> None:
    from .helpers import spec_of

    as_count = spec_of({"name": "x", "kind": "count", "match": {"event": "A"}})
    as_recency = spec_of({"name": "x", "kind": "recency_days", "match": {"event": "A"}})
    state = apply_event(new_state(), ev("A", NOW - timedelta(days=2)), as_count)
    assert read_features(state, as_recency, now=NOW)["x"] == -1.0
    state = apply_event(state, ev("A", NOW - timedelta(days=1)), as_recency)
    assert read_features(state, as_recency, now=NOW)["x"] == 1.0
    assert read_features(state, as_count, now=NOW)["x"] == 1.0


def test_input_event_is_the_frozen_dataclass() -> None:
    event = ev("A")
    with pytest.raises(AttributeError):
        event.name = "B"  # type: ignore[misc]
    assert FeatureEvent.__slots__
    assert event.timestamp.tzinfo is UTC
    assert event.channel is None
