"""Segment rendering: a record becomes a Segment-spec message dict; malformed messages; ``sentAt`` stamping."""

from __future__ import annotations

import hashlib
import random
from collections.abc import Callable, Sequence
from datetime import UTC, datetime
from typing import Any, Final

from offerloop.sim.audience.catalog import _SHOP_PRODUCTS
from offerloop.sim.audience.clock import _HOUR_MS, _MIN_MS, _iso, _ms
from offerloop.sim.audience.ids import _UUID_CLEAR, _UUID_MASK, _UUID_SET, _rng_uuid
from offerloop.sim.audience.population import _Plan
from offerloop.sim.audience.run import _Rec

_LIB_JS: Final = {"name": "analytics.js", "version": "npm:next-1.72.0"}
_LIB_IOS: Final = {"name": "analytics-ios", "version": "4.1.8"}
_LIB_SERVER: Final = {"name": "analytics-python", "version": "2.3.3"}

_MALFORMED_KINDS: Final = (
    "missing_type",
    "unknown_type",
    "track_without_event",
    "no_ids",
    "bad_timestamp",
    "properties_list",
    "oversized_properties",
    "junk_id",
)
_JUNK_IDS: Final = ("undefined", "null", "00000000-0000-0000-0000-000000000000", "None", "")


def _clone(value: Any) -> Any:
    """Copy of a JSON-like value (dicts and lists copied, scalars shared)."""
    if isinstance(value, dict):
        return {k: _clone(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_clone(v) for v in value]
    return value


def _render_malformed(
    i: int, kind: str, plans: Sequence[_Plan], seed_key: str, now_ms: int
) -> dict[str, Any]:
    """The ``i``-th malformed message (of ``kind``), as an ingestion API must refuse it."""
    rng = random.Random(f"{seed_key}:malformed:{i}")
    message_id = _rng_uuid(rng)  # same first draw as in __init__
    plan = plans[rng.randrange(len(plans))]
    msg: dict[str, Any] = {
        "messageId": message_id,
        "type": "track",
        "event": rng.choice(("Product Viewed", "Order Completed", "Lesson Started", "Drop Viewed")),
        "anonymousId": _rng_uuid(rng),
        "properties": {"product_id": rng.choice(_SHOP_PRODUCTS).product_id},
        "context": {
            "library": dict(_LIB_JS),
            "userAgent": plan.devices[0].user_agent,
            "ip": plan.devices[0].ip,
        },
        "timestamp": _iso(now_ms),
        "sentAt": _iso(now_ms + rng.randint(10, 2000)),
    }
    if kind == "missing_type":
        del msg["type"]
    elif kind == "unknown_type":
        msg["type"] = rng.choice(("pageview", "purchase", "trak", "event", "click"))
    elif kind == "track_without_event":
        variant = rng.randrange(3)
        if variant == 0:
            del msg["event"]
        else:
            msg["event"] = "" if variant == 1 else None
    elif kind == "no_ids":
        del msg["anonymousId"]
        if rng.random() < 0.5:
            msg["userId"] = None
    elif kind == "bad_timestamp":
        msg["timestamp"] = rng.choice(("yesterday", "yesterday", "not-a-date", "2026-13-45T25:61:00Z"))
    elif kind == "properties_list":
        msg["properties"] = [msg["properties"], {"price": "49.00"}]
    elif kind == "oversized_properties":
        msg["properties"] = {"product_id": "pb_viral_hooks", "debug_dump": rng.randbytes(20_480).hex()}
    else:  # junk_id
        junk = rng.choice(_JUNK_IDS)
        del msg["anonymousId"]
        if rng.random() < 0.5:
            msg["userId"] = junk
        else:
            msg["anonymousId"] = junk
    return msg


def _render(rec: _Rec, plan: _Plan, seed_key: str) -> dict[str, Any]:
    """Render a record of ``plan``'s buyer as a fresh Segment message dict (pure: same record, same message)."""
    t, buyer, seq, kind, fields, device, identified, page, campaign, context_traits = rec
    digest = hashlib.blake2b(f"{seed_key}:{buyer}:{seq}".encode(), digest_size=24).digest()
    bits = int.from_bytes(digest, "big")
    h = f"{(bits & _UUID_MASK & _UUID_CLEAR) | _UUID_SET:032x}"
    jitter = bits >> 128  # 64 more bits for the send delay
    msg: dict[str, Any] = {"messageId": f"{h[:8]}-{h[8:12]}-{h[12:16]}-{h[16:20]}-{h[20:]}", "type": kind}
    for key, value in fields.items():
        msg[key] = _clone(value)
    if device < 0:
        msg["userId"] = plan.user_id
        msg["timestamp"] = _iso(t)
        msg["sentAt"] = _iso(t + 40 + jitter % 2460)
        msg["context"] = {"library": dict(_LIB_SERVER)}
        return msg
    dev = plan.devices[device]
    if identified:
        msg["userId"] = plan.user_id
    msg["anonymousId"] = dev.anonymous_id
    if dev.app:
        if jitter % 10:
            delay = 5000 + (jitter >> 8) % 25_000
        else:  # offline: the queue flushes minutes to hours later
            delay = 2 * _MIN_MS + (jitter >> 8) % (4 * _HOUR_MS)
        ctx: dict[str, Any] = {
            "library": dict(_LIB_IOS),
            "app": {"name": "Rowan Vale Community", "version": "2.3.1", "build": "231"},
            "device": {"type": "ios", "manufacturer": "Apple", "model": "iPhone15,2"},
            "os": {"name": "iOS", "version": "17.5.1"},
        }
    else:
        delay = 10 + jitter % 1500
        ctx = {"library": dict(_LIB_JS)}
        if page is not None:
            ctx["page"] = dict(page)
        if campaign is not None:
            ctx["campaign"] = dict(campaign)
    ctx["userAgent"] = dev.user_agent
    ctx["ip"] = dev.ip
    ctx["locale"] = plan.locale
    ctx["timezone"] = plan.zone
    if context_traits is not None:
        ctx["traits"] = _clone(context_traits)
    msg["context"] = ctx
    msg["timestamp"] = _iso(t + dev.skew_ms)
    msg["sentAt"] = _iso(t + delay + dev.skew_ms)
    return msg


def _clock_ms(clock: Callable[[], datetime]) -> int:
    now = clock()
    return _ms(now if now.tzinfo is not None else now.replace(tzinfo=UTC))  # naive: UTC


def _stamp(msg: dict[str, Any], now_ms: int, skew_ms: int) -> None:
    """Set ``sentAt`` to the real send time ``now_ms`` as read on a device ``skew_ms`` off."""
    msg["sentAt"] = _iso(now_ms + skew_ms)


def stamp_sent(chunk: list[tuple[dict[str, Any], int]], now: datetime) -> list[dict[str, Any]]:
    """The batch of an ``unsent_batches`` chunk sent at ``now``, as each device's clock reads it."""
    return _sent(chunk, lambda: now)


def _sent(
    chunk: list[tuple[dict[str, Any], int]], sent_at: Callable[[], datetime] | None
) -> list[dict[str, Any]]:
    if sent_at is not None:
        now_ms = _clock_ms(sent_at)
        for msg, skew in chunk:
            _stamp(msg, now_ms, skew)
    return [msg for msg, _ in chunk]
