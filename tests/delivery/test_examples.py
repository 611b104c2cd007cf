"""Every journey shipped in examples/ loads, and names only steps and channels that exist."""

from __future__ import annotations

from pathlib import Path

import pytest

from offerloop.delivery.journeys.loading import parse_journey
from offerloop.delivery.journeys.spec import SendStep

EXAMPLES = sorted((Path(__file__).parents[2] / "examples" / "demo" / "journeys").glob("*.yaml"))


def test_the_day_one_journeys_are_there() -> None:
    assert [p.stem for p in EXAMPLES] == [
        "abandoned_checkout", "canceled", "credit_note", "deliverable_ready", "drop_announcement", "dunning",
        "entitlement_expiring", "module_unlocked", "next_step", "onboarding", "promise_late", "receipt",
        "renewal_notice", "trial_ending", "weekly_digest", "win_back",
    ]  # fmt: skip


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.stem)
def test_each_example_journey_loads(path: Path) -> None:
    journey = parse_journey(path.read_text(encoding="utf-8"), path=str(path))
    assert journey.name == path.stem
    assert any(isinstance(s, SendStep) for s in journey.steps) or journey.name == "win_back"
