"""The demo creator's six persona templates."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest

from offerloop.personas.inference import infer
from offerloop.personas.templates import load_templates
from offerloop.sim.audience import PERSONAS as SIM_PERSONAS

DEMO = Path(__file__).resolve().parents[2] / "examples" / "demo" / "personas.yaml"
PS = load_templates(DEMO)

# One prototypical buyer per persona, in the features the header of personas.yaml documents.
PROTOTYPES: dict[str, dict[str, Any]] = {
    "early_adopter_superfan": {
        "orders": 4, "monetary_minor": 24600, "drop_orders": 3, "minutes_to_first_drop_purchase": 4.0,
        "weekend_share": 0.3, "subscription_active": True, "community_posts_30d": 3.1, "events_30d": 80.0,
        "coupon_orders": 0, "gift_orders": 0, "days_since_last_seen": 1.0, "first_touch_channel": "social",
    },
    "weekend_collector": {
        "orders": 2, "monetary_minor": 8400, "drop_orders": 2, "minutes_to_first_drop_purchase": 1500.0,
        "weekend_share": 0.85, "subscription_active": False, "community_posts_30d": 0.0, "events_30d": 20.0,
        "coupon_orders": 0, "gift_orders": 0, "first_touch_channel": "social",
    },
    "subscription_loyalist": {
        "orders": 1, "monetary_minor": 2900, "subscription_active": True, "renewals": 3, "modules_completed": 8,
        "weekend_share": 0.3, "drop_orders": 0, "coupon_orders": 0, "gift_orders": 0, "events_30d": 35.0,
        "first_touch_channel": "email",
    },
    "gifting_guest": {
        "orders": 1, "monetary_minor": 4900, "gift_orders": 1, "subscription_active": False, "events_30d": 4.0,
        "days_since_last_seen": 40.0, "drop_orders": 0, "coupon_orders": 0, "page_views_30d": 3.0,
    },
    "lurker_researcher": {
        "orders": 0, "page_views_30d": 45.0, "quiz_completed": True, "assessment_score": 64, "events_30d": 60.0,
        "subscription_active": False, "days_since_last_seen": 3.0, "first_touch_channel": "search",
    },
    "deal_seeker": {
        "orders": 2, "monetary_minor": 9000, "coupon_orders": 2, "first_touch_channel": "paid",
        "subscription_active": False, "drop_orders": 0, "gift_orders": 0, "page_views_30d": 10.0,
    },
}  # fmt: skip

BRIEF_FEATURES = {
    "orders", "monetary_minor", "drop_orders", "minutes_to_first_drop_purchase", "weekend_share",
    "subscription_active", "renewals", "modules_completed", "page_views_30d", "quiz_completed",
    "assessment_score", "coupon_orders", "gift_orders", "community_posts_30d", "days_since_last_seen",
    "suppressed_share", "events_30d", "first_touch_channel",
}  # fmt: skip


def _documented_features() -> set[str]:
    header = [line for line in DEMO.read_text(encoding="utf-8").splitlines() if line.startswith("#")]
    pattern = re.compile(r"^#\s{3}([a-z_0-9]+)\s+(int|float|bool|str)\s")
    return {m.group(1) for line in header if (m := pattern.match(line))}


def test_six_personas_in_the_simulators_order() -> None:
    assert PS.names == SIM_PERSONAS
    assert PS.threshold == 0.5
    assert all(2 <= len(p.signals) <= 4 for p in PS.personas)
    assert all(p.description for p in PS.personas)


def test_every_feature_used_is_documented() -> None:
    documented = _documented_features()
    assert documented == BRIEF_FEATURES
    used = {s.feature for p in PS.personas for s in p.signals}
    assert used <= documented
    assert set().union(*(b.keys() for b in PROTOTYPES.values())) <= documented


@pytest.mark.parametrize("persona", list(PROTOTYPES))
def test_prototypical_buyer_gets_their_persona(persona: str) -> None:
    result = infer(PROTOTYPES[persona], PS)
    assert result.name == persona
    assert result.confidence > 0.6


@pytest.mark.parametrize("persona", list(PROTOTYPES))
def test_low_confidence_evidence_counts_less(persona: str) -> None:
    full = infer(PROTOTYPES[persona], PS)
    shaky = infer(PROTOTYPES[persona], PS, signal_confidence=0.3)
    assert shaky.top == persona
    assert shaky.confidence < full.confidence


def test_a_buyer_with_no_features_is_unassigned() -> None:
    result = infer({}, PS)
    assert result.name == "unassigned"
    assert result.posterior == pytest.approx(PS.priors(), abs=1e-12)
    assert result.confidence < PS.threshold
