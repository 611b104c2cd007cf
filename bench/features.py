"""Cost of keeping buyer features fresh: apply_event per event and read_features per read, default spec.

    python bench/features.py

Target (issue 3 budget for the ingest path): well under 30 us per event.
"""

from __future__ import annotations

import random
import timeit
from datetime import UTC, datetime, timedelta
from typing import Any

from _common import machine

from offerloop.features.spec import DEFAULT_FEATURE_SPEC
from offerloop.features.state import FeatureEvent, apply_event, new_state, read_features

NOW = datetime(2026, 9, 1, 12, 0, tzinfo=UTC)


def event(name: str | None, when: datetime, props: dict[str, Any], *, type: str = "track", tz: str | None = None,
          channel: str | None = None, suppressed: bool = False) -> FeatureEvent:  # fmt: skip
    return FeatureEvent(
        type=type, name=name, timestamp=when, properties=props, context={"timezone": tz} if tz else {},
        weight=1.0, confidence=0.4 if suppressed else 1.0, suppressed=suppressed, high_signal=False, channel=channel,
    )  # fmt: skip


def stream(n: int) -> list[FeatureEvent]:
    """A realistic mix: mostly page views and product views, some orders, community, modules, identifies."""
    rng = random.Random(3)
    shapes = [
        lambda when, tz: event(
            "Home", when, {"path": "/"}, type="page", tz=tz, channel="social", suppressed=True
        ),
        lambda when, tz: event("Product Viewed", when, {"product_id": "pb_1", "price": "29.00"}, tz=tz),
        lambda when, tz: event(
            "Order Completed",
            when,
            {
                "revenue": "49.00",
                "product_type": "drop",
                "drop_opened_at": "2026-08-20T18:00:00Z",
                "coupon": "X",
            },
            tz=tz,
            channel="email",
        ),
        lambda when, tz: event("Community Comment Created", when, {"post_id": "p"}, tz=tz),
        lambda when, tz: event("Module Completed", when, {"module_id": f"m{rng.randint(1, 20)}"}, tz=tz),
        lambda when, tz: event(None, when, {"email": "a@example.com"}, type="identify", tz=tz),
        lambda when, tz: event(
            "Quiz Completed", when, {"answers": {"goal": "x", "platform": "tiktok"}}, tz=tz
        ),
    ]
    weights = (40, 25, 5, 10, 8, 5, 2)
    zones = ("America/New_York", "Europe/London", "Asia/Tokyo", None)
    return [
        rng.choices(shapes, weights)[0](
            NOW - timedelta(seconds=rng.randint(0, 60 * 86_400)), rng.choice(zones)
        )
        for _ in range(n)
    ]


def main() -> None:
    events = stream(100_000)

    def run() -> None:
        state = new_state()
        for e in events:
            apply_event(state, e, DEFAULT_FEATURE_SPEC)

    per_event = min(timeit.repeat(run, number=1, repeat=3)) / len(events) * 1e6
    state = new_state()
    for e in events[:500]:
        apply_event(state, e, DEFAULT_FEATURE_SPEC)
    per_read = (
        min(timeit.repeat(lambda: read_features(state, DEFAULT_FEATURE_SPEC, now=NOW), number=2000, repeat=3))
        / 2000
        * 1e6
    )
    print(f"machine: {machine()}")
    print(f"apply_event: {per_event:.1f} us per event (100,000-event mixed stream, default spec)")
    print(f"read_features: {per_read:.1f} us per read-out")


if __name__ == "__main__":
    main()
