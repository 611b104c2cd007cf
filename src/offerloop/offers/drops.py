"""Limited drops: where a drop stands (draft, scheduled, live, closed) at a given instant."""

from __future__ import annotations

from datetime import datetime

from offerloop.offers.model import DropState, Offer, utc


def drop_state(
    drop: Offer,
    now: datetime,
    signed_off: bool,
    *,
    sold: int = 0,
    opened_at: datetime | None = None,
    closed_at: datetime | None = None,
) -> DropState:
    """Where a limited drop stands at ``now``.

    ``closed`` from ``closes_at`` on (the instant itself included) or once ``sold`` reaches the
    inventory; before that ``draft`` until signed off (or while inactive); then ``scheduled`` before
    ``opens_at`` and ``live`` from ``opens_at`` (included).

    The creator may open a drop early (``opened_at``: live from then, until ``closes_at``) or close it
    before its end (``closed_at``: closed from then on, whatever the schedule says).
    """
    if drop.kind != "drop" or drop.opens_at is None or drop.closes_at is None:
        raise ValueError(f"{drop.key!r} is a {drop.kind}, not a drop with a sale window")
    now = utc(now)
    if now >= drop.closes_at or (drop.inventory is not None and sold >= drop.inventory):
        return "closed"
    if closed_at is not None and now >= utc(closed_at):
        return "closed"
    if not drop.active or (drop.requires_signoff and not signed_off):
        return "draft"
    opens = drop.opens_at if opened_at is None else min(drop.opens_at, utc(opened_at))
    if now < opens:
        return "scheduled"
    return "live"
