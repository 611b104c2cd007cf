"""Every kind on hand-built event sequences, with exact read-outs."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from offerloop.features.state import DISTINCT_CAP, apply_event, new_state, read_features

from .helpers import NOW, at, ev, run, spec_of

ORDER = {"event": "Order Completed"}


def test_count_and_suppressed_factor() -> None:
    spec = spec_of({"name": "orders", "kind": "count", "match": ORDER}, suppressed_factor=0.25)
    events = [
        ev("Order Completed", at(3)),
        ev("order completed", at(2)),  # names match case-insensitively
        ev("Order Completed", at(1), suppressed=True),
        ev("Order Refunded", at(1)),
        ev("Order Completed", at(1), type="page"),  # a page named like the event is not a track event
    ]
    assert run(spec, events)["orders"] == 2.25
    assert run(spec, [])["orders"] == 0.0


def test_count_without_match_counts_every_event() -> None:
    spec = spec_of({"name": "all", "kind": "count"}, suppressed_factor=0.5)
    events = [ev("A"), ev(None, type="identify"), ev("Home", type="page", suppressed=True)]
    assert run(spec, events)["all"] == 2.5


def test_decayed_count_is_exact_at_read_time() -> None:
    spec = spec_of(
        {"name": "views", "kind": "decayed_count", "match": {"type": "page"}, "half_life_days": 30}
    )
    assert run(spec, [ev("Home", at(30), type="page")])["views"] == 0.5
    assert run(spec, [ev("Home", at(60), type="page")])["views"] == 0.25
    assert run(spec, [ev("Home", at(0), type="page")])["views"] == 1.0
    # 1 event 60 days ago + 1 event 30 days ago: 0.25 + 0.5
    assert run(spec, [ev("Home", at(60), type="page"), ev("Home", at(30), type="page")])["views"] == 0.75
    # out of order: the same
    assert run(spec, [ev("Home", at(30), type="page"), ev("Home", at(60), type="page")])["views"] == 0.75
    # the same state read at two times
    state = new_state()
    apply_event(state, ev("Home", at(0), type="page"), spec)
    assert read_features(state, spec, now=NOW + timedelta(days=15))["views"] == pytest.approx(2**-0.5)
    assert read_features(state, spec, now=NOW + timedelta(days=90))["views"] == 0.125
    # read before the latest event: no growth, the value at the latest event
    assert read_features(state, spec, now=NOW - timedelta(days=10))["views"] == 1.0


def test_decayed_count_suppressed_events_count_less() -> None:
    spec = spec_of({"name": "e", "kind": "decayed_count", "half_life_days": 7}, suppressed_factor=0.25)
    assert run(spec, [ev("X", at(7), suppressed=True), ev("Y", at(14))])["e"] == 0.125 + 0.25


def test_sum_with_minor_units_and_revenue_fallback() -> None:
    spec = spec_of(
        {
            "name": "monetary_minor",
            "kind": "sum",
            "match": ORDER,
            "value": "total_minor",
            "fallback": {"value": "revenue", "scale": 100},
        }
    )
    events = [
        ev("Order Completed", at(5), {"total_minor": 29700, "revenue": "999.00"}),  # total_minor wins
        ev("Order Completed", at(4), {"revenue": "29.70"}),  # decimal string, major units
        ev("Order Completed", at(3), {"revenue": 29.7}),  # number: 2970 exactly, not 2969.9999...
        ev("Order Completed", at(2), {"revenue": 5}),
        ev("Order Completed", at(1), {"revenue": "n/a"}),  # unusable: counts nothing
        ev("Order Completed", at(1), {"revenue": "1e999999"}),  # x 100 overflows decimal's range: nothing
        ev("Order Completed", at(1), {"revenue": "1e400"}),  # x 100 is finite as a decimal, not as a float
        ev("Order Completed", at(1), {"total_minor": True}),  # a boolean is not an amount
        ev("Order Completed", at(1), {}),
        ev("Order Completed", at(1), {"total_minor": 100}, suppressed=True),  # money is money: full value
    ]
    assert run(spec, events)["monetary_minor"] == 29700 + 2970 + 2970 + 500 + 100


def test_sum_with_dotted_path_and_where() -> None:
    spec = spec_of(
        {
            "name": "drop_spend",
            "kind": "sum",
            "match": {"event": "Order Completed", "where": {"product_type": "drop"}},
            "value": "amount.minor",
        }
    )
    events = [
        ev("Order Completed", props={"product_type": "drop", "amount": {"minor": 4900}}),
        ev("Order Completed", props={"product_type": "course", "amount": {"minor": 29700}}),
        ev("Order Completed", props={"product_type": "drop", "amount.minor": 100}),  # literal key first
    ]
    assert run(spec, events)["drop_spend"] == 5000.0


def test_latest_keeps_the_value_with_the_latest_timestamp() -> None:
    spec = spec_of(
        {"name": "score", "kind": "latest", "match": {"event": "Assessment Completed"}, "value": "score"}
    )
    events = [
        ev("Assessment Completed", at(2), {"score": 40}),
        ev("Assessment Completed", at(1), {"score": 75}),
        ev("Assessment Completed", at(3), {"score": 10}),  # older, arrives late: ignored
        ev("Assessment Completed", at(0.5), {"score": None}),  # no usable value: ignored
        ev("Assessment Completed", at(0.5), {"score": {"nested": 1}}),  # not a scalar: ignored
    ]
    assert run(spec, events)["score"] == 75
    assert run(spec, [])["score"] == -1


def test_latest_object_is_flattened() -> None:
    spec = spec_of(
        {"name": "quiz", "kind": "latest_object", "match": {"event": "Quiz Completed"}, "value": "answers"}
    )
    events = [
        ev("Quiz Completed", at(1), {"answers": {"platform": "tiktok", "goal": "grow"}}),
        ev("Quiz Completed", at(3), {"answers": {"platform": "youtube", "old": True}}),  # older: ignored
    ]
    assert run(spec, events) == {
        "quiz.platform": "tiktok",
        "quiz.goal": "grow",
        "suppressed_share": 0.0,
        "signal_confidence": 1.0,
    }
    nested = [
        ev("Quiz Completed", props={"answers": {"a": {"b": 1, "c": None}, "tags": ["x", "y"], "n": 2.5}})
    ]
    features = run(spec, nested)
    assert {k: v for k, v in features.items() if k.startswith("quiz.")} == {
        "quiz.a.b": 1,
        "quiz.tags": "x,y",
        "quiz.n": 2.5,
    }
    assert not any(k.startswith("quiz.") for k in run(spec, []))


def test_latest_object_caps_keys() -> None:
    spec = spec_of({"name": "o", "kind": "latest_object", "match": {}, "value": "p", "max_keys": 3})
    features = run(spec, [ev("X", props={"p": {str(i): i for i in range(10)}})])
    assert {k: v for k, v in features.items() if k.startswith("o.")} == {"o.0": 0, "o.1": 1, "o.2": 2}


def test_first_and_last_value_by_timestamp() -> None:
    spec = spec_of(
        {"name": "first_touch", "kind": "first_value", "value_from": "channel"},
        {"name": "last_touch", "kind": "last_value", "value_from": "channel"},
        {"name": "first_plan", "kind": "first_value", "value": "plan"},
        {"name": "last_event", "kind": "last_value", "match": {"event": "*"}, "value_from": "name"},
    )
    events = [
        ev("B", at(5), channel="email", props={"plan": "pro"}),
        ev("C", at(1), channel="paid"),
        ev("A", at(9), channel="social", props={"plan": "free"}),  # the earliest, arriving late
        ev("D", at(3), channel=None),  # no channel: does not count
        ev(None, at(0), type="identify", channel=None),
        ev("E", at(2), channel="search"),  # older than "paid": last stays "paid"
    ]
    features = run(spec, events)
    assert features["first_touch"] == "social"
    assert features["last_touch"] == "paid"
    assert features["first_plan"] == "free"
    assert features["last_event"] == "C"
    empty = run(spec, [])
    assert empty["first_touch"] == "" and empty["last_touch"] == ""


def test_distinct_count_and_its_cap() -> None:
    spec = spec_of(
        {
            "name": "modules",
            "kind": "distinct_count",
            "match": {"event": "Module Completed"},
            "value": "module_id",
        }
    )
    events = [
        ev("Module Completed", props={"module_id": "m1"}),
        ev("Module Completed", props={"module_id": "m2"}),
        ev("Module Completed", props={"module_id": "m1"}),
        ev("Module Completed", props={"module_id": 3}),
        ev("Module Completed", props={}),
        ev("Lesson Completed", props={"module_id": "m9"}),
    ]
    assert run(spec, events)["modules"] == 3
    many = [ev("Module Completed", props={"module_id": f"m{i}"}) for i in range(DISTINCT_CAP + 25)]
    assert run(spec, many)["modules"] == DISTINCT_CAP
    assert run(spec, [])["modules"] == 0


def test_min_delay_minutes() -> None:
    spec = spec_of(
        {
            "name": "to_drop",
            "kind": "min_delay_minutes",
            "match": {"event": "Order Completed", "where": {"product_type": "drop"}},
            "since_property": "drop_opened_at",
        }
    )
    opened = datetime(2026, 8, 20, 18, 0, tzinfo=UTC)
    events = [
        ev("Order Completed", opened + timedelta(minutes=45), {"product_type": "drop", "drop_opened_at": "2026-08-20T18:00:00Z"}),
        ev("Order Completed", opened + timedelta(minutes=7, seconds=30), {"product_type": "drop", "drop_opened_at": "2026-08-20T20:00:00+02:00"}),
        ev("Order Completed", opened + timedelta(minutes=1), {"product_type": "course", "drop_opened_at": "2026-08-20T18:00:00Z"}),
        ev("Order Completed", opened, {"product_type": "drop", "drop_opened_at": "not a time"}),
        ev("Order Completed", opened, {"product_type": "drop"}),
    ]  # fmt: skip
    assert run(spec, events)["to_drop"] == 7.5
    # bought "before" the drop opened (clock skew): never negative
    skewed = [ev("Order Completed", opened - timedelta(minutes=2), {"product_type": "drop", "drop_opened_at": "2026-08-20T18:00:00Z"})]  # fmt: skip
    assert run(spec, skewed)["to_drop"] == 0.0
    assert run(spec, [])["to_drop"] == -1.0


def test_weekday_share_in_local_time() -> None:
    spec = spec_of(
        {"name": "weekend_share", "kind": "weekday_share", "weekdays": [5, 6]}, suppressed_factor=0.5
    )
    events = [
        # Sunday 02:00 UTC = Saturday 22:00 in New York: weekend
        ev("A", datetime(2026, 8, 2, 2, 0, tzinfo=UTC), tz="America/New_York"),
        # Monday 01:00 UTC = Sunday 21:00 in New York: weekend
        ev("B", datetime(2026, 8, 3, 1, 0, tzinfo=UTC), tz="America/New_York"),
        # Monday 01:00 UTC in UTC (no timezone): weekday
        ev("C", datetime(2026, 8, 3, 1, 0, tzinfo=UTC)),
        # Friday 23:00 UTC = Saturday 01:00 in Berlin: weekend
        ev("D", datetime(2026, 7, 31, 23, 0, tzinfo=UTC), tz="Europe/Berlin"),
        # Sunday 20:00 UTC = Monday 05:00 in Tokyo: weekday
        ev("E", datetime(2026, 8, 2, 20, 0, tzinfo=UTC), tz="Asia/Tokyo"),
        # unknown zone: UTC, Saturday: weekend
        ev("F", datetime(2026, 8, 1, 12, 0, tzinfo=UTC), tz="Mars/Olympus_Mons"),
        # suppressed: counts 0.5, Wednesday
        ev("G", datetime(2026, 8, 5, 12, 0, tzinfo=UTC), tz="Europe/London", suppressed=True),
    ]
    # weekend mass 4 of a total mass 6.5
    assert run(spec, events)["weekend_share"] == 4 / 6.5
    assert run(spec, [])["weekend_share"] == 0.0


def test_top_local_hour() -> None:
    spec = spec_of({"name": "active_hour", "kind": "top_local_hour"}, suppressed_factor=0.25)
    events = [
        ev("A", datetime(2026, 8, 3, 1, 0, tzinfo=UTC), tz="America/New_York"),  # 21:00 local (EDT)
        ev("B", datetime(2026, 8, 4, 1, 30, tzinfo=UTC), tz="America/New_York"),  # 21:30
        ev("C", datetime(2026, 8, 4, 21, 5, tzinfo=UTC)),  # 21:05 UTC
        ev("D", datetime(2026, 8, 4, 9, 0, tzinfo=UTC), tz="Europe/London"),  # 10:00 BST
        ev("E", datetime(2026, 8, 4, 9, 0, tzinfo=UTC), tz="Europe/London"),
        ev("F", datetime(2026, 8, 5, 10, 0, tzinfo=UTC), tz="Europe/Paris", suppressed=True),  # 12:00, 0.25
    ]
    assert run(spec, events)["active_hour"] == 21
    # a tie goes to the earliest hour
    tie = [ev("A", datetime(2026, 8, 3, 22, tzinfo=UTC)), ev("B", datetime(2026, 8, 3, 6, tzinfo=UTC))]
    assert run(spec, tie)["active_hour"] == 6
    # winter time: New York is UTC-5
    assert (
        run(spec, [ev("A", datetime(2026, 1, 10, 3, 0, tzinfo=UTC), tz="America/New_York")])["active_hour"]
        == 22
    )
    assert run(spec, [])["active_hour"] == -1


def test_recency_days() -> None:
    spec = spec_of(
        {"name": "days_since_last_seen", "kind": "recency_days"},
        {"name": "days_since_order", "kind": "recency_days", "match": ORDER},
    )
    events = [ev("Order Completed", at(10)), ev("Page", at(1.5), type="page"), ev("Old", at(40))]
    features = run(spec, events)
    assert features["days_since_last_seen"] == 1.5
    assert features["days_since_order"] == 10.0
    assert run(spec, [])["days_since_last_seen"] == -1.0


def test_flag_set_and_clear_by_time() -> None:
    spec = spec_of(
        {
            "name": "subscription_active",
            "kind": "flag",
            "set_on": [{"event": "Subscription Started"}, {"event": "Subscription Renewed"}],
            "clear_on": {"event": "Subscription Cancel*"},
        }
    )
    started, renewed = ev("Subscription Started", at(60)), ev("Subscription Renewed", at(30))
    canceled, cancelled = ev("Subscription Canceled", at(10)), ev("subscription cancelled", at(45))
    assert run(spec, [])["subscription_active"] is False
    assert run(spec, [started])["subscription_active"] is True
    assert run(spec, [started, canceled])["subscription_active"] is False
    # a cancellation older than the latest renewal does not clear it, in any order
    assert run(spec, [started, cancelled, renewed])["subscription_active"] is True
    assert run(spec, [renewed, started, cancelled])["subscription_active"] is True
    # a cancellation newer than everything clears it, even when it arrives first
    assert run(spec, [canceled, renewed, started])["subscription_active"] is False
    # renewed again after the cancellation
    assert run(spec, [started, canceled, ev("Subscription Renewed", at(5))])["subscription_active"] is True
    # set and clear at the same instant: cleared
    assert (
        run(spec, [ev("Subscription Started", at(1)), ev("Subscription Canceled", at(1))])[
            "subscription_active"
        ]
        is False
    )


def test_flag_without_clear() -> None:
    spec = spec_of({"name": "quiz_completed", "kind": "flag", "set_on": {"event": "Quiz Completed"}})
    assert run(spec, [ev("Quiz Started")])["quiz_completed"] is False
    assert run(spec, [ev("Quiz Started"), ev("Quiz Completed", at(3))])["quiz_completed"] is True


def test_builtin_suppressed_share_and_signal_confidence() -> None:
    spec = spec_of()
    events = [
        ev("Order Completed", weight=10, confidence=1.0),
        ev("Email Opened", weight=0.2, confidence=0.3, suppressed=True),
        ev("Home", type="page", weight=0.2, confidence=0.6),
        ev("Broken", weight=float("nan"), confidence=0.9),  # no mass
    ]
    features = run(spec, events)
    assert features["suppressed_share"] == pytest.approx(0.2 / 10.4)
    assert features["signal_confidence"] == pytest.approx((10 * 1.0 + 0.2 * 0.3 + 0.2 * 0.6) / 10.4)
    # weightless events: every event counts 1
    weightless = [ev("A", weight=0, confidence=0.2, suppressed=True), ev("B", weight=0, confidence=1.0)]
    assert run(spec, weightless) == {"suppressed_share": 0.5, "signal_confidence": 0.6}
    assert run(spec, []) == {"suppressed_share": 0.0, "signal_confidence": 0.0}


def test_match_rules() -> None:
    spec = spec_of(
        {"name": "community", "kind": "count", "match": {"event": "Community *"}},
        {"name": "checkout_pages", "kind": "count", "match": {"type": "page", "event": "checkout*"}},
        {"name": "identifies", "kind": "count", "match": {"type": "identify"}},
        {"name": "big", "kind": "count", "match": {"where": {"cart.total": {"in": [100, 200]}}}},
        {"name": "not_free", "kind": "count", "match": {"where": {"plan": {"ne": "free"}}}},
        {"name": "flagged", "kind": "count", "match": {"where": {"gift": True}}},
        {"name": "one", "kind": "count", "match": {"where": {"n": 1}}},
        {"name": "absent", "kind": "count", "match": {"where": {"coupon": {"exists": False}}}},
        {"name": "either", "kind": "count", "match": [{"event": "A"}, {"event": "B", "where": {"x": 1}}]},
    )
    events = [
        ev("Community Post Created"),
        ev("COMMUNITY comment created", props={"plan": "free", "coupon": "X"}),
        ev("Community", props={"gift": 1}),  # no space after Community: the glob does not match
        ev("Checkout", type="page", props={"cart": {"total": 100}, "n": True}),
        ev("Checkout Started", props={"cart": {"total": 200.0}, "gift": True, "n": 1.0}),
        ev(None, type="identify", props={"cart.total": 300, "coupon": None}),
        ev("A", props={"coupon": ""}),
        ev("B", props={"x": 1}),
        ev("B", props={"x": 2}),
    ]
    features = run(spec, events)
    assert features["community"] == 2
    assert features["checkout_pages"] == 1
    assert features["identifies"] == 1
    assert features["big"] == 2
    assert features["not_free"] == 8  # an absent property is "not free"
    assert features["flagged"] == 1  # true is not 1
    assert features["one"] == 1  # 1.0 == 1, but true is not 1
    assert features["absent"] == 6
    assert features["either"] == 2


def test_defaults_can_be_given() -> None:
    spec = spec_of(
        {"name": "score", "kind": "latest", "match": {"event": "X"}, "value": "v", "default": 0},
        {"name": "src", "kind": "first_value", "value_from": "channel", "default": "unknown"},
    )
    assert run(spec, []) == {"score": 0, "src": "unknown", "suppressed_share": 0.0, "signal_confidence": 0.0}


def test_naive_times_are_utc() -> None:
    spec = spec_of({"name": "r", "kind": "recency_days"})
    state = apply_event(new_state(), ev("A", datetime(2026, 9, 1)), spec)
    assert read_features(state, spec, now=datetime(2026, 9, 3))["r"] == 2.0
    assert read_features(state, spec, now=datetime(2026, 9, 3, tzinfo=UTC))["r"] == 2.0
