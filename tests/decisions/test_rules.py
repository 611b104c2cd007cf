"""Eligibility rules, exact, and never violated across thousands of random decisions."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

from offerloop.decisions.rules import BuyerView, holds, ineligible_reason

NOW = datetime(2026, 11, 1, tzinfo=UTC)
STAGES = ("visitor", "lead", "engaged", "customer", "repeat_customer", "subscriber", "superfan")


def action(key: str, **attrs: object) -> dict[str, object]:
    return {"key": key, "active": True, **attrs}


def test_each_rule_with_its_reason():
    buyer = BuyerView(
        features={"stage": "lead", "orders": 0, "quiz_completed": True},
        completed=frozenset({"intro"}),
        impressions={"capped": [NOW - timedelta(days=1), NOW - timedelta(days=2)]},
        stage_order=STAGES,
        now=NOW,
    )
    cases = {
        "ok": (action("ok"), None),
        "excluded": (action("excluded"), "excluded_by_request"),
        "off": (action("off", active=False), "inactive"),
        "elsewhere": (action("elsewhere", placements=["checkout"]), "other_placement"),
        "intro": (action("intro"), "already_completed"),
        "module-2": (
            action("module-2", prerequisites=["intro", "module-1"]),
            "missing_prerequisite:module-1",
        ),
        "vip": (action("vip", min_stage="customer"), "stage_below:customer"),
        "capped": (action("capped", frequency_cap={"max": 2, "days": 7}), "frequency_cap"),
        "cap-window": (action("capped", frequency_cap={"max": 2, "days": 1.5}), None),
        "buyers-only": (action("buyers-only", requires={"orders": {"gte": 1}}), "requires:orders"),
        "quizzed": (action("quizzed", requires={"quiz_completed": True}), None),
        "missing": (
            action("missing", requires={"assessment_score": {"gte": 50}}),
            "requires:assessment_score",
        ),
    }
    for name, (spec, expected) in cases.items():
        assert (
            ineligible_reason(spec, buyer, placement="home", exclude=frozenset({"excluded"})) == expected
        ), name


def test_condition_operators():
    assert holds(5, {"gte": 5}) and not holds(5, {"gt": 5}) and holds(4, {"lt": 5, "gte": 4})
    assert holds("a", {"in": ["a", "b"]}) and holds("c", {"not_in": ["a", "b"]})
    assert not holds(True, 1) and holds(1, 1) and not holds(1, True)
    assert not holds("7", {"gte": 5})  # no string/number coercion
    assert holds(None, {"exists": False}, present=False) and not holds(None, {"gte": 1}, present=False)
    assert holds(None, {"ne": 3}, present=False)


def test_rules_are_never_violated_across_random_decisions():
    rng = random.Random(11)
    keys = [f"a{i}" for i in range(30)]
    catalog = []
    for key in keys:
        attrs: dict[str, object] = {}
        if rng.random() < 0.3:
            attrs["prerequisites"] = rng.sample(keys, 2)
        if rng.random() < 0.3:
            attrs["min_stage"] = rng.choice(STAGES)
        if rng.random() < 0.3:
            attrs["frequency_cap"] = {"max": rng.randint(1, 3), "days": rng.choice([1, 7, 30])}
        if rng.random() < 0.3:
            attrs["requires"] = {"orders": {"gte": rng.randint(0, 3)}}
        if rng.random() < 0.2:
            attrs["placements"] = [rng.choice(["home", "checkout"])]
        catalog.append(action(key, active=rng.random() > 0.1, **attrs))
    for _ in range(5000):
        completed = frozenset(rng.sample(keys, rng.randint(0, 10)))
        impressions = {
            k: [NOW - timedelta(days=rng.uniform(0, 40)) for _ in range(rng.randint(0, 4))]
            for k in rng.sample(keys, 8)
        }
        features = {"stage": rng.choice(STAGES), "orders": rng.randint(0, 4)}
        buyer = BuyerView(
            features=features, completed=completed, impressions=impressions, stage_order=STAGES, now=NOW
        )
        placement = rng.choice(["home", "checkout"])
        exclude = frozenset(rng.sample(keys, 3))
        for spec in catalog:
            if ineligible_reason(spec, buyer, placement=placement, exclude=exclude) is not None:
                continue
            # Independently re-check every rule for an action judged eligible.
            assert spec["key"] not in exclude and spec["active"] and spec["key"] not in completed
            assert all(p in completed for p in spec.get("prerequisites", []))
            if "min_stage" in spec:
                assert STAGES.index(features["stage"]) >= STAGES.index(spec["min_stage"])
            if "frequency_cap" in spec:
                cap = spec["frequency_cap"]
                recent = [
                    t for t in impressions.get(spec["key"], []) if t >= NOW - timedelta(days=cap["days"])
                ]
                assert len(recent) < cap["max"]
            if "requires" in spec:
                assert features["orders"] >= spec["requires"]["orders"]["gte"]
            if "placements" in spec:
                assert placement in spec["placements"]


def test_entitlement_rules_read_what_the_buyer_holds():
    from offerloop.decisions.rules import BuyerView, ineligible_reason

    members_only = {"key": "m", "requires_entitlement": ["community_space:creator-circle"]}
    sell_once = {"key": "s", "unless_entitled": ["download:pricing-playbook-pdf"]}
    member = BuyerView(features={}, entitlements=frozenset({"community_space:creator-circle"}))
    owner = BuyerView(features={}, entitlements=frozenset({"download:pricing-playbook-pdf"}))
    nobody = BuyerView(features={})
    assert ineligible_reason(members_only, member, placement="home") is None
    assert (
        ineligible_reason(members_only, nobody, placement="home")
        == "missing_entitlement:community_space:creator-circle"
    )
    assert ineligible_reason(sell_once, nobody, placement="home") is None
    assert (
        ineligible_reason(sell_once, owner, placement="home")
        == "already_entitled:download:pricing-playbook-pdf"
    )


def test_when_reads_features_persona_and_entitlements_in_the_condition_language():
    import pytest
    from pydantic import ValidationError

    from offerloop.decisions.schemas import ActionIn

    when = {
        "all": [
            {"persona": ["builder", "maker"]},
            {
                "any": [
                    {"path": "features.orders", "gte": 2},
                    {"path": "entitlements", "contains": "course:intro"},
                ]
            },
        ]
    }
    upsell = {"key": "u", "when": when}
    builder = BuyerView(features={"orders": 0}, entitlements=frozenset({"course:intro"}), persona="builder")
    stranger = BuyerView(features={"orders": 5}, persona=None)
    newcomer = BuyerView(features={"orders": 1}, persona="maker")
    assert ineligible_reason(upsell, builder, placement="home") is None
    reason = (
        "when:(persona in [builder, maker] and (features.orders >= 2 or entitlements contains course:intro))"
    )
    assert ineligible_reason(upsell, stranger, placement="home") == reason  # no persona: persona in [] fails
    assert ineligible_reason(upsell, newcomer, placement="home") == reason
    assert (
        ineligible_reason(
            {"key": "r", "requires": {"orders": {"ne": 1}}}, BuyerView(features={}), placement="home"
        )
        is None
    )

    base = {"key": "k", "kind": "offer", "title": "t", "outcome": {"event": "Order Completed"}}
    assert ActionIn.model_validate({**base, "when": when}).when == when
    with pytest.raises(ValidationError) as caught:
        ActionIn.model_validate(
            {**base, "when": {"path": "traits.plan", "eq": "x"}, "requires": {"orders": {"gtee": 1}}}
        )
    messages = sorted(e["msg"] for e in caught.value.errors())
    assert messages == [
        "Value error, invalid condition: orders.gtee: unknown operator (did you mean 'gte'?) (one of eq, ne, gt, gte, lt, lte, between, in, not_in, exists, contains, matches, within, older_than)",
        "Value error, invalid condition: path: 'traits' cannot be read here (this config reads features, persona, entitlements)",
    ]
