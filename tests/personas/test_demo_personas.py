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
        "orders": 4, "drop_views": 9, "minutes_to_first_drop_view": 3.0, "weekend_share": 0.3,
        "community_posts": 12, "subscription_active": False, "lessons_started": 3, "coupon_attempts": 0,
        "gift_orders": 0, "product_view_share": 0.01,
    },
    "weekend_collector": {
        "orders": 2, "drop_views": 5, "minutes_to_first_drop_view": 1500.0, "weekend_share": 0.9,
        "community_posts": 1, "subscription_active": False, "coupon_attempts": 0, "gift_orders": 0,
        "product_view_share": 0.0,
    },
    "subscription_loyalist": {
        "orders": 0, "subscription_active": True, "lessons_started": 9, "weekend_share": 0.3, "drop_views": 0,
        "minutes_to_first_drop_view": -1.0, "coupon_attempts": 0, "gift_orders": 0, "community_posts": 3,
        "product_view_share": 0.02,
    },
    "gifting_guest": {
        "orders": 1, "gift_orders": 1, "subscription_active": False, "drop_views": 0, "coupon_attempts": 0,
        "product_view_share": 0.09, "weekend_share": 0.1,
    },
    "lurker_researcher": {
        "orders": 0, "quiz_completed": True, "product_view_share": 0.03, "drop_views": 0, "coupon_attempts": 0,
        "subscription_active": False, "weekend_share": 0.25, "minutes_to_first_drop_view": -1.0,
    },
    "deal_seeker": {
        "orders": 2, "coupon_attempts": 3, "product_view_share": 0.21, "subscription_active": False,
        "drop_views": 0, "gift_orders": 0, "quiz_completed": False, "weekend_share": 0.2,
    },
}  # fmt: skip

BRIEF_FEATURES = {
    "orders", "gift_orders", "drop_views", "minutes_to_first_drop_view", "weekend_share", "community_posts",
    "subscription_active", "lessons_started", "modules_completed", "quiz_completed", "coupon_attempts", "product_view_share",
    "suppressed_share",
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
    assert used | {"suppressed_share"} == documented
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
