from __future__ import annotations

import json
from typing import Any

import pytest

from offerloop.events.signals import (
    DEFAULT_SIGNAL_CONFIG,
    SignalConfig,
    SignalConfigError,
    SignalScore,
    dump_signal_config,
    load_signal_config,
    score_event,
)

OPS = "eq, ne, gt, gte, lt, lte, between, in, not_in, exists, contains, matches, within, older_than"


def track(config: SignalConfig, name: str | None, properties: dict[str, Any] | None = None) -> SignalScore:
    return score_event(config, event_type="track", name=name, properties=properties)


def where_config(where: dict[str, Any]) -> SignalConfig:
    """One track rule labelled 'hit' with the given conditions; anything else gets the default."""
    return load_signal_config(
        {"rules": [{"event": "Thing Happened", "where": where, "weight": 7, "confidence": 1, "label": "hit"}]}
    )


def hits(where: dict[str, Any], properties: dict[str, Any] | None) -> bool:
    return track(where_config(where), "Thing Happened", properties).rule == "hit"


def config_error(source: Any) -> str:
    with pytest.raises(SignalConfigError) as info:
        load_signal_config(source)
    return str(info.value)


def rule(**fields: Any) -> dict[str, Any]:
    return {"weight": 1, "confidence": 1, **fields}


EXPECTED_TYPES = "must be one of track, page, screen, identify, group, alias"

EXAMPLE_YAML = """
threshold: 0.5            # events whose confidence is below this are stored but marked suppressed
default: {weight: 1.0, confidence: 1.0}
rules:
  - event: "Assessment Completed"   # track event name; glob patterns allowed ("Order *"); case-insensitive
    type: track
    where:
      score: {gte: 70}
    weight: 5
    confidence: 0.95
    high_signal: true
    label: strong_assessment
  - event: "Order Completed"
    weight: 10
    confidence: 1.0
    high_signal: true
  - type: page
    weight: 0.2
    confidence: 0.3
"""


# --------------------------------------------------------------------------------------------------
# Matching


def test_example_yaml_scores() -> None:
    config = load_signal_config(EXAMPLE_YAML)

    assert track(config, "Assessment Completed", {"score": 85}) == SignalScore(
        weight=5.0, confidence=0.95, high_signal=True, suppressed=False, rule="strong_assessment"
    )
    assert track(config, "Assessment Completed", {"score": 40}) == SignalScore(
        weight=1.0, confidence=1.0, high_signal=False, suppressed=False, rule=None
    )
    assert track(config, "Order Completed", {"total": 99}) == SignalScore(
        weight=10.0, confidence=1.0, high_signal=True, suppressed=False, rule="rules[1]"
    )
    assert score_event(config, event_type="page", name="Pricing", properties={}) == SignalScore(
        weight=0.2, confidence=0.3, high_signal=False, suppressed=True, rule="rules[2]"
    )


def test_first_matching_rule_wins() -> None:
    config = load_signal_config(
        {
            "rules": [
                rule(event="Order *", where={"total": {"gte": 100}}, weight=20, label="big_order"),
                rule(event="Order Completed", weight=10, label="order"),
                rule(event="Order *", weight=2, label="any_order"),
                rule(weight=0.5, label="anything"),
            ]
        }
    )

    assert track(config, "Order Completed", {"total": 500}).rule == "big_order"
    assert track(config, "Order Completed", {"total": 50}).rule == "order"
    assert track(config, "Order Refunded", {"total": 50}).rule == "any_order"
    assert track(config, "Order Refunded", {"total": 500}).rule == "big_order"
    assert track(config, "Signed Up", {}).rule == "anything"
    assert score_event(config, event_type="identify", name=None, properties={}).rule == "anything"


def test_unlabelled_rules_are_reported_by_position() -> None:
    config = load_signal_config({"rules": [rule(event="A"), rule(event="B", label="bee"), rule(event="C")]})

    assert track(config, "A").rule == "rules[0]"
    assert track(config, "B").rule == "bee"
    assert track(config, "C").rule == "rules[2]"
    assert track(config, "D").rule is None


def test_no_match_gives_the_default() -> None:
    config = load_signal_config(
        {"default": {"weight": 0.7, "confidence": 0.65}, "rules": [rule(event="Order Completed", weight=10)]}
    )

    assert track(config, "Video Played", {"x": 1}) == SignalScore(
        weight=0.7, confidence=0.65, high_signal=False, suppressed=False, rule=None
    )
    assert track(config, None) == SignalScore(
        weight=0.7, confidence=0.65, high_signal=False, suppressed=False, rule=None
    )


def test_absent_sections_take_their_defaults() -> None:
    config = load_signal_config({})

    assert config.threshold == 0.5
    assert config.default.weight == 1.0
    assert config.default.confidence == 1.0
    assert config.rules == []
    assert track(config, "Anything") == SignalScore(
        weight=1.0, confidence=1.0, high_signal=False, suppressed=False, rule=None
    )
    assert load_signal_config("rules:\n").rules == []


def test_glob_patterns_and_case_insensitivity() -> None:
    config = load_signal_config(
        {
            "rules": [
                rule(event="order completed", label="exact"),
                rule(event="Order *", label="star"),
                rule(event="Lesson ? Completed", label="question"),
                rule(event="Module [0-9]*", label="range"),
                rule(event="*VIEWED", label="suffix"),
            ]
        }
    )

    assert track(config, "Order Completed").rule == "exact"
    assert track(config, "ORDER COMPLETED").rule == "exact"
    assert track(config, "oRdEr cOmPlEtEd").rule == "exact"
    assert track(config, "Order Completed ").rule == "star"
    assert track(config, "Order Refunded").rule == "star"
    assert track(config, "order refunded").rule == "star"
    assert track(config, "Orders Exported").rule is None
    assert track(config, "Order").rule is None
    assert track(config, "Lesson 1 Completed").rule == "question"
    assert track(config, "lesson x completed").rule == "question"
    assert track(config, "Lesson 12 Completed").rule is None
    assert track(config, "Module 3 Started").rule == "range"
    assert track(config, "Module X").rule is None
    assert track(config, "Product Viewed").rule == "suffix"
    assert track(config, "product viewed").rule == "suffix"
    assert track(config, "Product Viewed Twice").rule is None
    assert track(config, None).rule is None


def test_type_filter() -> None:
    config = load_signal_config(
        {
            "rules": [
                rule(type="identify", label="identify"),
                rule(type="page", event="Pricing*", label="pricing_page"),
                rule(type="page", label="page"),
                rule(type="SCREEN", label="screen"),
                rule(type="group", label="group"),
                rule(event="Checkout", label="checkout_track"),
            ]
        }
    )

    def kind(event_type: str, name: str | None = None) -> str | None:
        return score_event(config, event_type=event_type, name=name, properties=None).rule

    assert kind("identify") == "identify"
    assert kind("page", "Pricing Annual") == "pricing_page"
    assert kind("page", "Blog") == "page"
    assert kind("page") == "page"
    assert kind("screen", "Checkout") == "screen"
    assert kind("group") == "group"
    assert kind("alias") is None
    # An `event` rule without `type` applies to track events only.
    assert kind("track", "Checkout") == "checkout_track"
    assert kind("page", "Checkout") == "page"
    assert kind("track", "Pricing Annual") is None
    # Unknown or oddly-cased event types never raise.
    assert kind("PAGE", "Blog") == "page"
    assert kind("mystery", "Checkout") is None


def test_rule_without_event_or_type_matches_every_event_type() -> None:
    config = load_signal_config({"rules": [rule(where={"vip": True}, label="vip")]})

    for event_type in ("track", "page", "screen", "identify", "group", "alias", "mystery"):
        assert score_event(config, event_type=event_type, name="X", properties={"vip": True}).rule == "vip"
        assert score_event(config, event_type=event_type, name="X", properties={"vip": False}).rule is None


# --------------------------------------------------------------------------------------------------
# Operators


@pytest.mark.parametrize(
    ("where", "properties", "expected"),
    [
        # eq, and a bare value meaning eq
        ({"plan": {"eq": "pro"}}, {"plan": "pro"}, True),
        ({"plan": {"eq": "pro"}}, {"plan": "Pro"}, False),
        ({"plan": "pro"}, {"plan": "pro"}, True),
        ({"plan": "pro"}, {"plan": "free"}, False),
        ({"plan": "pro"}, {}, False),
        ({"score": 70}, {"score": 70.0}, True),
        ({"active": True}, {"active": True}, True),
        ({"active": True}, {"active": False}, False),
        ({"coupon": None}, {"coupon": None}, True),
        ({"coupon": None}, {}, False),
        ({"items": {"eq": ["a", "b"]}}, {"items": ["a", "b"]}, True),
        ({"items": {"eq": ["a", "b"]}}, {"items": ["b", "a"]}, False),
        ({"meta": {"eq": {"k": 1}}}, {"meta": {"k": 1}}, True),
        # ne
        ({"plan": {"ne": "free"}}, {"plan": "pro"}, True),
        ({"plan": {"ne": "free"}}, {"plan": "free"}, False),
        ({"plan": {"ne": "free"}}, {}, True),  # missing passes ne and not_in (the one language)
        ({"plan": {"ne": "free"}}, {"plan": None}, True),
        # gt / gte / lt / lte
        ({"score": {"gt": 70}}, {"score": 71}, True),
        ({"score": {"gt": 70}}, {"score": 70}, False),
        ({"score": {"gte": 70}}, {"score": 70}, True),
        ({"score": {"gte": 70}}, {"score": 69.99}, False),
        ({"score": {"lt": 10}}, {"score": 9.5}, True),
        ({"score": {"lt": 10}}, {"score": 10}, False),
        ({"score": {"lte": 10}}, {"score": 10}, True),
        ({"score": {"lte": 10}}, {"score": 11}, False),
        ({"score": {"gte": 70}}, {}, False),
        ({"score": {"gte": 70, "lt": 90}}, {"score": 80}, True),
        ({"score": {"gte": 70, "lt": 90}}, {"score": 95}, False),
        ({"since": {"gte": "2024-01-01"}}, {"since": "2024-06-30T12:00:00Z"}, True),
        ({"since": {"gte": "2024-01-01"}}, {"since": "2023-12-31"}, False),
        # in / not_in
        ({"plan": {"in": ["pro", "business"]}}, {"plan": "pro"}, True),
        ({"plan": {"in": ["pro", "business"]}}, {"plan": "free"}, False),
        ({"plan": {"in": ["pro", "business"]}}, {}, False),
        ({"level": {"in": [1, 2, None]}}, {"level": 2.0}, True),
        ({"level": {"in": [1, 2, None]}}, {"level": None}, True),
        ({"level": {"in": [[1, 2]]}}, {"level": [1, 2]}, False),  # a list value: any of its items
        ({"level": {"in": [2, 5]}}, {"level": [1, 2]}, True),
        ({"plan": {"not_in": ["free", "trial"]}}, {"plan": "pro"}, True),
        ({"plan": {"not_in": ["free", "trial"]}}, {"plan": "trial"}, False),
        ({"plan": {"not_in": ["free", "trial"]}}, {}, True),
        # exists
        ({"coupon": {"exists": True}}, {"coupon": "SAVE10"}, True),
        ({"coupon": {"exists": True}}, {"coupon": None}, True),
        ({"coupon": {"exists": True}}, {}, False),
        ({"coupon": {"exists": False}}, {}, True),
        ({"coupon": {"exists": False}}, {"coupon": ""}, False),
        # contains: substring of a string, member of a list
        ({"title": {"contains": "Python"}}, {"title": "Intro to Python 3"}, True),
        ({"title": {"contains": "Python"}}, {"title": "intro to python 3"}, False),
        ({"tags": {"contains": "vip"}}, {"tags": ["new", "vip"]}, True),
        ({"tags": {"contains": "vip"}}, {"tags": ["new", "vip-ish"]}, False),
        ({"ids": {"contains": 3}}, {"ids": [1, 2, 3]}, True),
        ({"ids": {"contains": 3}}, {"ids": [1, 2]}, False),
        ({"tags": {"contains": "vip"}}, {}, False),
        # matches: full match
        ({"email": {"matches": r".+@example\.com"}}, {"email": "ann@example.com"}, True),
        ({"email": {"matches": r".+@example\.com"}}, {"email": "ann@example.com.evil"}, False),
        ({"email": {"matches": "example"}}, {"email": "ann@example.com"}, False),
        ({"email": {"matches": "(?i)ANN@.*"}}, {"email": "ann@example.com"}, True),
        ({"email": {"matches": ".*"}}, {}, False),
        # dotted paths
        ({"plan.tier": "pro"}, {"plan": {"tier": "pro"}}, True),
        ({"plan.tier": "pro"}, {"plan": {"tier": "free"}}, False),
        ({"plan.tier": "pro"}, {"plan": {}}, False),
        ({"plan.tier": "pro"}, {"plan": "pro"}, False),
        ({"plan.tier": "pro"}, {}, False),
        ({"a.b.c": {"gte": 1}}, {"a": {"b": {"c": 2}}}, True),
        ({"plan.tier": {"exists": False}}, {"plan": {"name": "x"}}, True),
        ({"plan.tier": {"exists": True}}, {"plan": {"tier": None}}, True),
        ({"items.0.sku": "A1"}, {"items": [{"sku": "A1"}, {"sku": "B2"}]}, True),
        ({"items.1.sku": "A1"}, {"items": [{"sku": "A1"}, {"sku": "B2"}]}, False),
        ({"items.5.sku": "A1"}, {"items": [{"sku": "A1"}]}, False),
        # a literal key containing a dot is looked up first
        ({"plan.tier": "pro"}, {"plan.tier": "pro"}, True),
        ({"plan.tier": "pro"}, {"plan.tier": "pro", "plan": {"tier": "free"}}, True),
        # every condition must hold
        ({"plan": "pro", "score": {"gt": 50}}, {"plan": "pro", "score": 60}, True),
        ({"plan": "pro", "score": {"gt": 50}}, {"plan": "pro", "score": 40}, False),
        ({"plan": "pro", "score": {"gt": 50}}, {"score": 60}, False),
        # missing properties altogether
        ({"plan": "pro"}, None, False),
        ({"plan": {"exists": False}}, None, True),
    ],
)
def test_operators(where: dict[str, Any], properties: dict[str, Any] | None, expected: bool) -> None:
    assert hits(where, properties) is expected


@pytest.mark.parametrize(
    ("where", "properties"),
    [
        ({"score": {"gte": 70}}, {"score": "75"}),
        ({"score": {"gte": 70}}, {"score": True}),
        ({"score": {"gt": 0}}, {"score": [1]}),
        ({"score": {"lt": 100}}, {"score": None}),
        ({"score": {"lte": 100}}, {"score": {"value": 1}}),
        ({"since": {"gte": "2024-01-01"}}, {"since": 20240101}),
        ({"score": {"eq": 1}}, {"score": True}),
        ({"score": {"eq": 1}}, {"score": "1"}),
        ({"active": True}, {"active": 1}),
        ({"active": False}, {"active": 0}),
        ({"active": False}, {"active": None}),
        ({"plan": "pro"}, {"plan": ["pro"]}),
        ({"level": {"in": [1, 2]}}, {"level": True}),
        ({"level": {"in": [1, 2]}}, {"level": "1"}),
        ({"level": {"in": [1, 2]}}, {"level": {"x": 1}}),
        ({"title": {"contains": "a"}}, {"title": 123}),
        ({"title": {"contains": "a"}}, {"title": {"a": 1}}),
        ({"ids": {"contains": 1}}, {"ids": "123"}),
        ({"ids": {"contains": 1}}, {"ids": [True]}),
        ({"email": {"matches": ".*"}}, {"email": 5}),
        ({"email": {"matches": ".*"}}, {"email": None}),
        ({"plan.tier": "pro"}, {"plan": ["pro"]}),
        ({"items.x": "pro"}, {"items": ["pro"]}),
        ({"items.0": "pro"}, {"items": "pro"}),
    ],
)
def test_wrong_type_comparisons_do_not_match_and_never_raise(
    where: dict[str, Any], properties: dict[str, Any]
) -> None:
    assert hits(where, properties) is False


def test_wrong_type_ne_and_not_in_match_because_the_values_differ() -> None:
    assert hits({"score": {"ne": 1}}, {"score": True}) is True
    assert hits({"level": {"not_in": [1, 2]}}, {"level": "1"}) is True


def test_non_mapping_properties_are_treated_as_empty() -> None:
    config = where_config({"plan": {"exists": False}})

    assert score_event(config, event_type="track", name="Thing Happened", properties=None).rule == "hit"
    assert score_event(config, event_type="track", name="Thing Happened", properties=[1]).rule == "hit"  # type: ignore[arg-type]


# --------------------------------------------------------------------------------------------------
# Threshold and suppression


def test_suppression_at_the_threshold_boundary() -> None:
    config = load_signal_config(
        {
            "threshold": 0.6,
            "default": {"weight": 1, "confidence": 0.59},
            "rules": [
                rule(event="Equal", confidence=0.6),
                rule(event="Below", confidence=0.5999),
                rule(event="Above", confidence=0.61),
            ],
        }
    )

    assert track(config, "Equal").suppressed is False
    assert track(config, "Below").suppressed is True
    assert track(config, "Above").suppressed is False
    assert track(config, "Unknown").suppressed is True
    assert track(config, "Below") == SignalScore(
        weight=1.0, confidence=0.5999, high_signal=False, suppressed=True, rule="rules[1]"
    )


def test_default_threshold_is_half() -> None:
    config = load_signal_config(
        {"rules": [rule(event="Half", confidence=0.5), rule(event="Less", confidence=0.49)]}
    )

    assert config.threshold == 0.5
    assert track(config, "Half").suppressed is False
    assert track(config, "Less").suppressed is True


def test_threshold_zero_suppresses_nothing_and_one_keeps_only_certain_events() -> None:
    lenient = load_signal_config({"threshold": 0, "default": {"confidence": 0}})
    strict = load_signal_config(
        {"threshold": 1, "rules": [rule(event="Sure", confidence=1), rule(confidence=0.99)]}
    )

    assert track(lenient, "X").suppressed is False
    assert track(strict, "Sure").suppressed is False
    assert track(strict, "Unsure").suppressed is True


def test_model_copy_recompiles() -> None:
    stricter = DEFAULT_SIGNAL_CONFIG.model_copy(update={"threshold": 0.7})

    assert score_event(stricter, event_type="page", name=None, properties=None).suppressed is True
    assert (
        score_event(DEFAULT_SIGNAL_CONFIG, event_type="page", name=None, properties=None).suppressed is False
    )


# --------------------------------------------------------------------------------------------------
# Input forms, dumping and round trips


def test_yaml_text_and_dict_give_the_same_config() -> None:
    from_yaml = load_signal_config(EXAMPLE_YAML)
    from_dict = load_signal_config(
        {
            "threshold": 0.5,
            "default": {"weight": 1.0, "confidence": 1.0},
            "rules": [
                {
                    "event": "Assessment Completed",
                    "type": "track",
                    "where": {"score": {"gte": 70}},
                    "weight": 5,
                    "confidence": 0.95,
                    "high_signal": True,
                    "label": "strong_assessment",
                },
                {"event": "Order Completed", "weight": 10, "confidence": 1.0, "high_signal": True},
                {"type": "page", "weight": 0.2, "confidence": 0.3},
            ],
        }
    )

    assert from_yaml == from_dict
    assert dump_signal_config(from_yaml) == dump_signal_config(from_dict)


def test_yaml_dates_stay_strings() -> None:
    config = load_signal_config(
        "rules:\n  - event: Renewed\n    where: {since: {gte: 2024-01-01}}\n"
        "    weight: 1\n    confidence: 1\n"
    )

    assert dump_signal_config(config)["rules"][0]["where"] == {"since": {"gte": "2024-01-01"}}
    assert track(config, "Renewed", {"since": "2024-03-01"}).rule == "rules[0]"


def test_none_and_empty_yaml_give_the_built_in_defaults() -> None:
    assert load_signal_config(None) is DEFAULT_SIGNAL_CONFIG
    assert load_signal_config("") is DEFAULT_SIGNAL_CONFIG
    assert load_signal_config("# nothing configured yet\n") is DEFAULT_SIGNAL_CONFIG


def test_dump_is_json_and_round_trips() -> None:
    config = load_signal_config(
        """
threshold: 0.4
default: {weight: 0.5, confidence: 0.9}
rules:
  - event: "Order *"
    type: track
    where:
      plan.tier: pro
      total: {gte: 10, lt: 1000}
      coupon: {exists: false}
      currency: {in: [USD, EUR], ne: null}
      country: {not_in: [XX]}
      tags: {contains: vip}
      email: {matches: '.+@example\\.com'}
      note: {eq: null}
      meta: {eq: {source: ads, ids: [1, 2]}}
    weight: 12.5
    confidence: 0.95
    high_signal: true
    label: big_order
  - type: identify
    weight: 1
    confidence: 1
  - weight: 0
    confidence: 0
"""
    )

    dumped = dump_signal_config(config)
    assert json.loads(json.dumps(dumped)) == dumped
    assert dumped == {
        "threshold": 0.4,
        "default": {"weight": 0.5, "confidence": 0.9},
        "rules": [
            {
                "event": "Order *",
                "type": "track",
                "where": {
                    "plan.tier": {"eq": "pro"},
                    "total": {"gte": 10, "lt": 1000},
                    "coupon": {"exists": False},
                    "currency": {"ne": None, "in": ["USD", "EUR"]},
                    "country": {"not_in": ["XX"]},
                    "tags": {"contains": "vip"},
                    "email": {"matches": r".+@example\.com"},
                    "note": {"eq": None},
                    "meta": {"eq": {"source": "ads", "ids": [1, 2]}},
                },
                "weight": 12.5,
                "confidence": 0.95,
                "high_signal": True,
                "label": "big_order",
            },
            {"type": "identify", "weight": 1.0, "confidence": 1.0, "high_signal": False},
            {"weight": 0.0, "confidence": 0.0, "high_signal": False},
        ],
    }

    reloaded = load_signal_config(json.loads(json.dumps(dumped)))
    assert reloaded == config
    assert dump_signal_config(reloaded) == dumped
    props = {"plan": {"tier": "pro"}, "total": 50, "currency": "USD", "country": "DE", "tags": ["vip"]}
    props |= {"email": "a@example.com", "note": None, "meta": {"source": "ads", "ids": [1, 2]}}
    assert track(reloaded, "Order Completed", props) == track(config, "Order Completed", props)
    assert track(reloaded, "Order Completed", props).rule == "big_order"


def test_eq_null_is_not_the_same_as_no_operator() -> None:
    with_null = load_signal_config({"rules": [rule(where={"x": {"gt": 5, "eq": None}})]})
    without = load_signal_config({"rules": [rule(where={"x": {"gt": 5}})]})

    assert with_null != without
    assert track(with_null, "E", {"x": 6}).rule is None
    assert track(without, "E", {"x": 6}).rule == "rules[0]"


def test_default_config_round_trips() -> None:
    dumped = dump_signal_config(DEFAULT_SIGNAL_CONFIG)

    assert json.loads(json.dumps(dumped)) == dumped
    assert load_signal_config(dumped) == DEFAULT_SIGNAL_CONFIG


# --------------------------------------------------------------------------------------------------
# Validation errors


def test_every_problem_is_reported_one_per_line() -> None:
    message = config_error(
        """
threshold: 1.5
color: blue
default: {weight: -1, confidence: 2}
rules:
  - event: "Order Completed"
    wieght: 10
    confidence: 1.0
  - event: ""
    type: trak
    weight: -3
    confidence: 1.2
    high_signal: "yes"
    label: ""
  - event: "Assessment Completed"
    where:
      score: {gtee: 70}
      email: {matches: "[a-"}
      plan: {in: pro}
      seen: {exists: "yes"}
      total: {gte: [1]}
      "a..b": 1
      nothing: {}
    weight: 1
    confidence: 0.5
  - 5
  - type: page
    where: [1]
    weight: x
    confidence: .nan
"""
    )

    assert message.splitlines() == [
        "<signals>:2: threshold: must be a number between 0 and 1, got 1.5",
        "<signals>:3: color: unknown key 'color' (allowed: threshold, default, rules)",
        "<signals>:4: default.weight: must be a finite number >= 0, got -1",
        "<signals>:4: default.confidence: must be a number between 0 and 1, got 2",
        "<signals>:6: rules[0]: missing required key 'weight'",
        "<signals>:7: rules[0].wieght: unknown key 'wieght' (did you mean 'weight'?)",
        "<signals>:9: rules[1].event: must be a non-empty string, got ''",
        f"<signals>:10: rules[1].type: {EXPECTED_TYPES}, got 'trak' (did you mean 'track'?)",
        "<signals>:11: rules[1].weight: must be a finite number >= 0, got -3",
        "<signals>:12: rules[1].confidence: must be a number between 0 and 1, got 1.2",
        "<signals>:13: rules[1].high_signal: must be true or false, got 'yes'",
        "<signals>:14: rules[1].label: must be a non-empty string, got ''",
        "<signals>:17: rules[2].where.score.gtee: unknown operator (did you mean 'gte'?) (one of "
        + OPS
        + ")",
        "<signals>:18: rules[2].where.email.matches: invalid regular expression '[a-': "
        "missing ]: [a- (RE2 syntax: no lookaround, no backreferences)",
        "<signals>:19: rules[2].where.plan.in: must be a list of 1 to 1000 values, got 'pro'",
        "<signals>:20: rules[2].where.seen.exists: must be true or false, got 'yes'",
        "<signals>:21: rules[2].where.total.gte: must be a finite number or text, got [1]",
        "<signals>:22: rules[2].where.a..b: invalid path 'a..b' (empty segment)",
        "<signals>:23: rules[2].where.nothing: no operator given (one of " + OPS + ")",
        "<signals>:26: rules[3]: must be a mapping, got 5",
        "<signals>:28: rules[4].where: must be a mapping of properties to conditions, got [1]",
        "<signals>:29: rules[4].weight: must be a finite number >= 0, got 'x'",
        "<signals>:30: rules[4].confidence: must be a number between 0 and 1, got nan",
    ]


@pytest.mark.parametrize(
    ("source", "message"),
    [
        (
            {"rules": [rule(), rule(), rule(where={"score": {"gtee": 70}})]},
            "rules[2].where.score.gtee: unknown operator (did you mean 'gte'?) (one of " + OPS + ")",
        ),
        (
            {"rules": [rule(where={"score": {"gte": 70, "in_": [1]}})]},
            "rules[0].where.score.in_: unknown operator (did you mean 'in'?) (one of " + OPS + ")",
        ),
        ({"rules": [rule(weight=-0.1)]}, "rules[0].weight: must be a finite number >= 0, got -0.1"),
        ({"rules": [rule(weight=True)]}, "rules[0].weight: must be a finite number >= 0, got True"),
        ({"rules": [rule(weight=float("inf"))]}, "rules[0].weight: must be a finite number >= 0, got inf"),
        (
            {"rules": [rule(confidence=1.01)]},
            "rules[0].confidence: must be a number between 0 and 1, got 1.01",
        ),
        (
            {"rules": [rule(confidence=-0.5)]},
            "rules[0].confidence: must be a number between 0 and 1, got -0.5",
        ),
        (
            {"rules": [rule(confidence="high")]},
            "rules[0].confidence: must be a number between 0 and 1, got 'high'",
        ),
        ({"threshold": -1}, "threshold: must be a number between 0 and 1, got -1"),
        ({"threshold": None}, "threshold: must be a number between 0 and 1, got None"),
        (
            {"default": {"weight": 1, "high_signal": True}},
            "default.high_signal: unknown key 'high_signal' (allowed: weight, confidence)",
        ),
        ({"default": 3}, "default: must be a mapping, got 3"),
        ({"rules": {"event": "X"}}, "rules: must be a list, got {'event': 'X'}"),
        (
            {"rules": [{"event": "X"}]},
            "rules[0]: missing required key 'weight'\nrules[0]: missing required key 'confidence'",
        ),
        (
            {"rules": [rule(colour="red")]},
            "rules[0].colour: unknown key 'colour' "
            "(allowed: event, type, where, weight, confidence, high_signal, label)",
        ),
        ({"rules": [rule(typ="page")]}, "rules[0].typ: unknown key 'typ' (did you mean 'type'?)"),
        (
            {"rules": [rule(type="Track Event")]},
            f"rules[0].type: {EXPECTED_TYPES}, got 'Track Event'",
        ),
        (
            {"rules": [rule(type=1)]},
            f"rules[0].type: {EXPECTED_TYPES}, got 1",
        ),
        (
            {"rules": [rule(event="Signed In", type="identify")]},
            "rules[0].type: identify events have no name, so 'event' cannot be used with type identify "
            "(only with track, page or screen)",
        ),
        ({"rules": [rule(event=5)]}, "rules[0].event: must be a non-empty string, got 5"),
        ({"rules": [rule(label="  ")]}, "rules[0].label: must be a non-empty string, got '  '"),
        ({"rules": [rule(high_signal=1)]}, "rules[0].high_signal: must be true or false, got 1"),
        (
            {"rules": [rule(where={"email": {"matches": "(unclosed"}})]},
            "rules[0].where.email.matches: invalid regular expression '(unclosed': "
            "missing ): (unclosed (RE2 syntax: no lookaround, no backreferences)",
        ),
        (
            {"rules": [rule(where={"email": {"matches": 5}})]},
            "rules[0].where.email.matches: must be a regular expression (text), got 5",
        ),
        (
            {"rules": [rule(where={"plan": {"not_in": "pro"}})]},
            "rules[0].where.plan.not_in: must be a list of 1 to 1000 values, got 'pro'",
        ),
        (
            {"rules": [rule(where={"score": {"lt": None}})]},
            "rules[0].where.score.lt: must be a finite number or text, got None",
        ),
        (
            {"rules": [rule(where={"score": {"gt": True}})]},
            "rules[0].where.score.gt: must be a finite number or text, got True",
        ),
        (
            {"rules": [rule(where={"x": {"exists": 1}})]},
            "rules[0].where.x.exists: must be true or false, got 1",
        ),
        ({"rules": [rule(where={"x": {}})]}, "rules[0].where.x: no operator given (one of " + OPS + ")"),
        (
            {"rules": [rule(where={"": 1})]},
            "rules[0].where: invalid path '' (empty segment)",
        ),
        ({"rules": [rule(where={".a": 1})]}, "rules[0].where..a: invalid path '.a' (empty segment)"),
        (
            {"rules": [rule(where={1: 1})]},
            "rules[0].where.1: a path must be text, got 1",
        ),
        (
            {"rules": [rule(where={"x": {"eq": float("nan")}})]},
            "rules[0].where.x.eq: must be a JSON value (finite numbers), got nan",
        ),
        (
            {"rules": [rule(where={"x": {"contains": {1, 2}}})]},
            "rules[0].where.x.contains: must be a JSON value (finite numbers), got {1, 2}",
        ),
        (
            {"rules": [rule(where={"x": {"in": [{1: "a"}]}})]},
            "rules[0].where.x.in: must hold JSON values (finite numbers), got [{1: 'a'}]",
        ),
        (
            {"rules": [rule(where=[{"x": 1}])]},
            "rules[0].where: must be a mapping of properties to conditions, got [{'x': 1}]",
        ),
        ({"rules": [rule(), "Order Completed"]}, "rules[1]: must be a mapping, got 'Order Completed'"),
        ({"rules": [rule()], 3: 4}, "3: unknown key 3 (a key must be text)"),
        ({"rules": [{"weight": 1, "confidence": 1, 5: 1}]}, "rules[0].5: unknown key 5 (a key must be text)"),
        ("- just\n- a list\n", "<signals>:1: must be a mapping, got ['just', 'a list']"),
        ("42", "<signals>:1: must be a mapping, got 42"),
        (
            "rules: [",
            "<signals>:1: invalid YAML (column 9): expected the node content, but found '<stream end>'",
        ),
        (
            "rules:\n  - weight: 1\n   confidence: 1\n",
            "<signals>:3: invalid YAML (column 4): expected <block end>, but found '<block mapping start>'",
        ),
        (42, "must be a mapping, got 42"),
    ],
)
def test_validation_error_messages(source: Any, message: str) -> None:
    assert config_error(source) == message


def test_config_error_is_a_value_error_listing_problems() -> None:
    with pytest.raises(ValueError) as info:
        load_signal_config({"threshold": 2, "extra": 1})

    assert isinstance(info.value, SignalConfigError)
    extra = "extra: unknown key 'extra' (allowed: threshold, default, rules)"
    assert info.value.problems == ["threshold: must be a number between 0 and 1, got 2", extra]
    assert str(info.value) == f"threshold: must be a number between 0 and 1, got 2\n{extra}"
    assert info.value.status_code == 422 and info.value.code == "invalid_signal_config"
    assert info.value.details == [
        {
            "path": None,
            "line": None,
            "location": "threshold",
            "message": "must be a number between 0 and 1, got 2",
        },
        {"path": None, "line": None, "location": "extra", "message": extra.removeprefix("extra: ")},
    ]


def test_valid_edge_values_are_accepted() -> None:
    config = load_signal_config(
        {
            "threshold": 1,
            "default": {"weight": 0, "confidence": 0},
            "rules": [
                rule(weight=0, confidence=0, type="Page", where=None),
                rule(weight=1e6, confidence=1, where={"x": {"gte": "b", "lte": "d"}}),
            ],
        }
    )

    assert config.threshold == 1.0
    assert config.rules[0].type == "page"
    assert not config.rules[0].where and config.rules[0].where.to_data() == {}
    assert config.rules[1].weight == 1_000_000.0


# --------------------------------------------------------------------------------------------------
# Built-in defaults


@pytest.mark.parametrize(
    ("name", "weight", "label"),
    [
        ("Order Completed", 10.0, "order_completed"),
        ("Subscription Renewed", 8.0, "subscription_renewed"),
        ("Assessment Completed", 5.0, "assessment_completed"),
        ("Quiz Completed", 5.0, "quiz_completed"),
        ("Module Completed", 3.0, "module_completed"),
        ("Lesson Completed", 3.0, "lesson_completed"),
        ("order completed", 10.0, "order_completed"),
    ],
)
def test_default_config_high_signal_events(name: str, weight: float, label: str) -> None:
    assert track(DEFAULT_SIGNAL_CONFIG, name, {"anything": 1}) == SignalScore(
        weight=weight, confidence=1.0, high_signal=True, suppressed=False, rule=label
    )


def test_default_config_other_event_types() -> None:
    def score(event_type: str, name: str | None = None) -> SignalScore:
        return score_event(DEFAULT_SIGNAL_CONFIG, event_type=event_type, name=name, properties={})

    assert score("identify") == SignalScore(
        weight=1.0, confidence=1.0, high_signal=False, suppressed=False, rule="identify"
    )
    assert score("page", "Pricing") == SignalScore(
        weight=0.2, confidence=0.6, high_signal=False, suppressed=False, rule="page_view"
    )
    assert score("screen", "Home") == SignalScore(
        weight=0.2, confidence=0.6, high_signal=False, suppressed=False, rule="screen_view"
    )
    everything_else = SignalScore(weight=1.0, confidence=0.8, high_signal=False, suppressed=False, rule=None)
    assert score("track", "Video Played") == everything_else
    assert score("track", "Order Refunded") == everything_else
    assert score("track", None) == everything_else
    assert score("group") == everything_else
    assert score("alias") == everything_else
    # Milestone names only count as track events.
    assert score("page", "Order Completed").rule == "page_view"


def test_default_config_shape() -> None:
    assert DEFAULT_SIGNAL_CONFIG.threshold == 0.5
    assert DEFAULT_SIGNAL_CONFIG.default.weight == 1.0
    assert DEFAULT_SIGNAL_CONFIG.default.confidence == 0.8
    assert [r.label for r in DEFAULT_SIGNAL_CONFIG.rules if r.high_signal] == [
        "order_completed",
        "subscription_renewed",
        "assessment_completed",
        "quiz_completed",
        "module_completed",
        "lesson_completed",
    ]
