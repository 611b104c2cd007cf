"""The seeded audience's output is pinned: a refactor of the simulator must not change a single byte.

The digests were computed before ``sim/audience.py`` became a package (hand-coded DST rules then; zoneinfo
and the pinned tzdata now agree with them for every date since 2022-10-30, see ``sim.audience.clock``).
"""

from __future__ import annotations

import hashlib
import json
from datetime import UTC, datetime

import pytest

from offerloop.sim.audience import Audience


def _digest(audience: Audience) -> str:
    h = hashlib.sha256()
    for buyer in audience.buyers:
        h.update(repr(buyer).encode())
    for message in audience.messages():
        h.update(json.dumps(message, sort_keys=True, ensure_ascii=False).encode() + b"\n")
    return h.hexdigest()


@pytest.mark.parametrize(
    ("kwargs", "expected"),
    [
        # the default window (Aug-Oct): Sydney's DST starts, Europe's and North America's end
        (
            {"buyers": 150, "events": 6000, "seed": 11},
            "4579b2560b4d0afdc2fdbe4b83f7eb824226b09f4e5ded27fcfa2aa664779985",
        ),
        # late winter to spring: North America's and Europe's DST start, Sydney's ends
        (
            {
                "buyers": 150,
                "events": 6000,
                "seed": 12,
                "start": datetime(2026, 2, 20, tzinfo=UTC),
                "days": 60,
            },
            "45c04c9cc51b0b14eb66bee9bdb9615bed617106b457aec54b289d665c79dad8",
        ),
    ],
)
def test_output_for_a_seed_is_pinned(kwargs: dict[str, object], expected: str) -> None:
    assert _digest(Audience(**kwargs)) == expected  # type: ignore[arg-type]
