"""Limited drops: where a drop stands (draft, scheduled, live, closed) at a given instant."""

from __future__ import annotations

from datetime import datetime

from offerloop.offers.model import DropState, Offer, utc


def drop_state(drop: Offer, now: datetime, signed_off: bool, *, sold: int = 0) -> DropState:
    """Where a limited drop stands at ``now``.

    ``closed`` from ``closes_at`` on (the instant itself included) or once ``sold`` reaches the
    inventory; before that ``draft`` until signed off (or while inactive); then ``scheduled`` before
    ``opens_at`` and ``live`` from ``opens_at`` (included).
    """
    if drop.kind != "drop" or drop.opens_at is None or drop.closes_at is None:
        raise ValueError(f"{drop.key!r} is a {drop.kind}, not a drop with a sale window")
    now = utc(now)
    if now >= drop.closes_at or (drop.inventory is not None and sold >= drop.inventory):
        return "closed"
    if not drop.active or (drop.requires_signoff and not signed_off):
        return "draft"
    if now < drop.opens_at:
        return "scheduled"
    return "live"
