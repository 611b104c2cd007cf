"""Spec loading, validation messages, the default spec and the demo YAML."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from offerloop.features.spec import (
    DEFAULT_FEATURE_SPEC,
    FEATURE_KINDS,
    FeatureSpec,
    FeatureSpecError,
    load_feature_spec,
)
from offerloop.features.state import apply_event, new_state, read_features

from .helpers import NOW, ev

DEMO_YAML = Path(__file__).resolve().parents[2] / "examples" / "demo" / "features.yaml"

# Every feature the demo personas use (the brief's list).
PERSONA_FEATURES = (
    "orders", "monetary_minor", "drop_orders", "minutes_to_first_drop_purchase", "weekend_share",
    "subscription_active", "renewals", "modules_completed", "page_views_30d", "quiz_completed",
    "assessment_score", "coupon_orders", "gift_orders", "community_posts_30d", "days_since_last_seen",
    "suppressed_share", "events_30d", "first_touch_channel", "last_touch_channel", "stage", "active_hour",
    "minutes_to_first_drop_view", "drop_views", "coupon_attempts", "product_view_share", "lessons_started",
    "community_posts",
)  # fmt: skip


KINDS = ", ".join(FEATURE_KINDS)
OPERATORS = "eq, ne, gt, gte, lt, lte, between, in, not_in, exists, contains, matches, within, older_than"


def problems(source: object) -> list[str]:
    with pytest.raises(FeatureSpecError) as info:
        load_feature_spec(source)  # type: ignore[arg-type]
    assert isinstance(info.value, ValueError)
    return str(info.value).splitlines()


def test_default_spec_produces_every_listed_feature() -> None:
    empty = read_features(new_state(), DEFAULT_FEATURE_SPEC, now=NOW)
    assert set(PERSONA_FEATURES) <= set(empty)
    assert "signal_confidence" in empty
    assert empty == {
        "orders": 0.0,
        "monetary_minor": 0.0,
        "drop_orders": 0.0,
        "minutes_to_first_drop_purchase": -1.0,
        "minutes_to_first_drop_view": -1.0,
        "drop_views": 0.0,
        "coupon_orders": 0.0,
        "coupon_attempts": 0.0,
        "product_view_share": 0.0,
        "gift_orders": 0.0,
        "weekend_share": 0.0,
        "active_hour": -1,
        "subscription_active": False,
        "renewals": 0.0,
        "modules_completed": 0,
        "lessons_started": 0.0,
        "page_views_30d": 0.0,
        "quiz_completed": False,
        "assessment_score": -1,
        "community_posts_30d": 0.0,
        "community_posts": 0.0,
        "events_30d": 0.0,
        "first_touch_channel": "",
        "last_touch_channel": "",
        "days_since_last_seen": -1.0,
        "stage": "visitor",
        "suppressed_share": 0.0,
        "signal_confidence": 0.0,
    }
    kinds = {feature.kind for feature in DEFAULT_FEATURE_SPEC.features}
    assert kinds == set(FEATURE_KINDS)  # the default exercises every kind


def test_default_spec_on_a_persona_like_history() -> None:
    spec = DEFAULT_FEATURE_SPEC
    events = [
        ev(
            "Home",
            NOW.replace(day=1, hour=9),
            type="page",
            channel="social",
            tz="Europe/London",
            suppressed=True,
        ),
        ev(
            None, NOW.replace(day=1, hour=10), {"email": "a@example.com"}, type="identify", tz="Europe/London"
        ),
        ev("Quiz Completed", NOW.replace(day=1, hour=11), {"answers": {"platform": "tiktok"}, "score": 80}),
        ev(
            "Order Completed",
            NOW.replace(day=5, hour=18, minute=4),
            {
                "revenue": "49.00",
                "product_type": "drop",
                "drop_opened_at": "2026-09-05T18:00:00Z",
                "coupon": "DROP5",
            },
            channel="email",
        ),
        ev("Order Completed", NOW.replace(day=6), {"total_minor": 2900, "gift": True, "coupon": ""}),
        ev("Subscription Started", NOW.replace(day=6), {"revenue": "29.00"}),
        ev("Subscription Renewed", NOW.replace(day=8)),
        ev("Module Completed", NOW.replace(day=8), {"module_id": "course_launch_lab_m1"}),
        ev("Assessment Completed", NOW.replace(day=9), {"score": 72}),
        ev("Community Post Created", NOW.replace(day=10)),
    ]
    state = new_state()
    for event in events:
        state = apply_event(state, event, spec)
    features = read_features(state, spec, now=NOW.replace(day=12))
    assert features["orders"] == 2
    assert features["monetary_minor"] == 4900 + 2900
    assert features["drop_orders"] == 1
    assert features["minutes_to_first_drop_purchase"] == 4.0
    assert features["coupon_orders"] == 1  # an empty coupon is no coupon
    assert features["gift_orders"] == 1
    assert features["subscription_active"] is True
    assert features["renewals"] == 1
    assert features["modules_completed"] == 1
    assert features["page_views_30d"] == pytest.approx(0.25 * 0.5 ** ((11 * 24 - 9 + 12) / 24 / 30))
    assert features["quiz_completed"] is True
    assert features["quiz_answers.platform"] == "tiktok"
    assert features["assessment_score"] == 72
    assert features["community_posts_30d"] == pytest.approx(0.5 ** (2 / 30))
    assert features["first_touch_channel"] == "social"
    assert features["last_touch_channel"] == "email"
    assert features["days_since_last_seen"] == 2.0
    assert features["stage"] == "subscriber"
    assert features["weekend_share"] == pytest.approx(3 / 9.25)  # Sep 5 and 6 2026 are Sat and Sun
    assert features["active_hour"] == 12  # six events at 12:00 UTC


def test_demo_yaml_is_the_default_spec() -> None:
    loaded = load_feature_spec(DEMO_YAML.read_text())
    assert loaded == DEFAULT_FEATURE_SPEC
    assert [f.name for f in loaded.features] == [f.name for f in DEFAULT_FEATURE_SPEC.features]


def test_none_and_empty_documents_give_the_default() -> None:
    assert load_feature_spec(None) is DEFAULT_FEATURE_SPEC
    assert load_feature_spec("") is DEFAULT_FEATURE_SPEC
    assert load_feature_spec("# nothing\n") is DEFAULT_FEATURE_SPEC


def test_model_dump_round_trips() -> None:
    dumped = DEFAULT_FEATURE_SPEC.model_dump(mode="json")
    assert load_feature_spec(dumped) == DEFAULT_FEATURE_SPEC
    stage = next(f for f in dumped["features"] if f["name"] == "coupon_orders")
    assert stage["match"][0]["where"] == {"coupon": {"exists": True, "not_in": ["", None]}}
    spec = load_feature_spec(
        {"features": [{"name": "x", "kind": "count", "match": {"where": {"a": {"in": [1]}}}}]}
    )
    assert load_feature_spec(spec.model_dump(mode="json")) == spec
    assert hash(spec) == hash(load_feature_spec(spec.model_dump(mode="json")))


def test_yaml_spec_keeps_dates_as_strings() -> None:
    spec = load_feature_spec(
        """
features:
  - name: launch_orders
    kind: count
    match: {event: Order Completed, where: {launch: 2026-09-01}}
"""
    )
    state = apply_event(new_state(), ev("Order Completed", props={"launch": "2026-09-01"}), spec)
    assert read_features(state, spec, now=NOW)["launch_orders"] == 1.0


def test_model_copy_recompiles() -> None:
    spec = load_feature_spec({"features": [{"name": "x", "kind": "count"}]})
    read_features(new_state(), spec, now=NOW)  # compiles
    changed = spec.model_copy(update={"suppressed_factor": 0.5})
    state = apply_event(new_state(), ev("A", suppressed=True), changed)
    assert read_features(state, changed, now=NOW)["x"] == 0.5
    assert isinstance(changed, FeatureSpec) and changed != spec


def test_validation_errors_name_the_path() -> None:
    assert problems(
        {
            "suppressed_factor": 2,
            "features": [
                {"name": "a", "kind": "decayed_count"},
                {"name": "b", "kind": "nope"},
                {"name": "c"},
                {"name": "d", "kind": "count", "match": {"event": "X", "where": {"p": {"gtt": 1}}}},
                {"name": "e", "kind": "count", "half_life_days": 3},
                {"name": "f", "kind": "first_value"},
                {"name": "g", "kind": "stage", "stages": [{"name": "s"}, {"name": "s"}]},
                {"name": "h", "kind": "count", "match": {"type": "identify", "event": "X"}},
                {"name": "i j", "kind": "count"},
                {"name": "k", "kind": "weekday_share", "weekdays": [7]},
                {"name": "l", "kind": "sum", "match": {}, "value": "a..b"},
                5,
                {"name": "m", "kind": "decayed_count", "half_life_days": "30"},
                {"name": "n", "kind": "count", "match": {"where": {"x": {}}}},
                {"name": "o", "kind": "count", "match": [{"type": "pagex"}]},
                {"name": "p", "kind": "flag"},
                {"name": "q", "kind": "weekday_share", "weekdays": []},
            ],
        }
    ) == [
        "suppressed_factor: must be at most 1, got 2",
        "features[0]: missing required key 'half_life_days' for kind decayed_count",
        f"features[1].kind: must be one of {KINDS}, got 'nope'",
        f"features[2]: missing required key 'kind' (one of {KINDS})",
        f"features[3].match.where.p.gtt: unknown operator (did you mean 'gt'?) (one of {OPERATORS})",
        "features[4].half_life_days: unknown key 'half_life_days' for kind count (only for kind decayed_count)",
        "features[5].value: give exactly one of 'value' (a property path) or 'value_from'",
        "features[6].stages[1].name: duplicate stage name 's'",
        "features[7].match.event: identify events have no name: 'event' works only with track, page or screen",
        "features[8].name: must be a feature name (letters, digits and '_', not starting with a digit), got 'i j'",
        "features[9].weekdays[0]: must be at most 6, got 7",
        "features[10].value: invalid property path 'a..b' (empty segment)",
        "features[11]: must be a mapping, got 5",
        "features[12].half_life_days: must be a number, got '30'",
        f"features[13].match.where.x: no operator given (one of {OPERATORS})",
        "features[14].match[0].type: must be one of track, page, screen, identify, group, alias, got 'pagex' "
        "(did you mean 'page'?)",
        "features[15]: missing required key 'set_on' for kind flag",
        "features[16].weekdays: must have at least 1 item, got 0",
    ]


def test_spec_level_errors() -> None:
    assert problems({"features": [{"name": "a", "kind": "count"}, {"name": "a", "kind": "count"}]}) == [
        "features[1].name: duplicate feature name 'a'"
    ]
    assert problems({"features": [{"name": "suppressed_share", "kind": "count"}]}) == [
        "features[0].name: 'suppressed_share' is built in and always computed"
    ]
    assert problems({"features": 3, "extra": 1}) == [
        "features: must be a list, got 3",
        "extra: unknown key 'extra' (allowed: suppressed_factor, features)",
    ]
    assert problems("features: [") == [
        "<features>:1: invalid YAML (column 12): expected the node content, but found '<stream end>'"
    ]
    assert problems("- a\n- b\n") == ["<features>:1: must be a mapping, got ['a', 'b']"]
    assert problems(
        {
            "features": [
                {
                    "name": "s",
                    "kind": "stage",
                    "stages": [{"name": "x", "min_count": 2}, {"name": "y", "all": [{}]}],
                }
            ]
        }
    ) == [
        "features[0].stages[0].min_count: needs 'match' (or give min_count inside 'all')",
        "features[0].stages[1].all[0]: missing required key 'match'",
    ]


BROKEN_YAML = """\
features:
  - {name: orders, kind: count}
  - name: views
    kind: decayed_count
  - name: stage
    kind: stagez
  - name: big
    kind: count
    match:
      event: X
      where:
        plan.tier: {gtee: 1}
  - name: money
    kind: sum
    match: {event: Order Completed}
    value: total
    fallback: {value: revenue, scale: minor_units}
"""


def test_text_problems_name_their_lines_and_a_mapping_gives_the_same_without() -> None:
    with pytest.raises(FeatureSpecError) as info:
        load_feature_spec(BROKEN_YAML, path="features.yaml")
    expected = [
        "features.yaml:3: features[1]: missing required key 'half_life_days' for kind decayed_count",
        f"features.yaml:6: features[2].kind: must be one of {KINDS}, got 'stagez' (did you mean 'stage'?)",
        "features.yaml:12: features[3].match.where.plan.tier.gtee: unknown operator (did you mean 'gte'?) "
        f"(one of {OPERATORS})",
        "features.yaml:17: features[4].fallback.scale: minor_units needs 'currency' on the feature",
    ]
    assert info.value.problems == expected
    assert info.value.status_code == 422 and info.value.code == "invalid_feature_spec"
    assert info.value.details[0] == {
        "path": "features.yaml",
        "line": 3,
        "location": "features[1]",
        "message": "missing required key 'half_life_days' for kind decayed_count",
    }
    assert problems(yaml.safe_load(BROKEN_YAML)) == [line.split(": ", 1)[1] for line in expected]
