"""Every SQL statement of the offers domain."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy.orm import Session

from offerloop.db.scoped import scoped_select
from offerloop.models import Coupon, DropStock, Offer, Order


def add(session: Session, obj: Any) -> None:
    session.add(obj)


def flush(session: Session) -> None:
    session.flush()


def offers(session: Session, workspace_id: str) -> list[Offer]:
    return list(session.scalars(scoped_select(Offer, workspace_id).order_by(Offer.key)))


def offer(session: Session, workspace_id: str, key: str, *, lock: bool = False) -> Offer | None:
    stmt = scoped_select(Offer, workspace_id).where(Offer.key == key)
    return session.scalars(stmt.with_for_update() if lock else stmt).one_or_none()


def coupons(session: Session, workspace_id: str) -> list[Coupon]:
    return list(session.scalars(scoped_select(Coupon, workspace_id)))


def stock(session: Session, workspace_id: str, offer_key: str) -> DropStock | None:
    stmt = scoped_select(DropStock, workspace_id).where(DropStock.offer_key == offer_key)
    return session.scalars(stmt).one_or_none()


def owned_counts(session: Session, workspace_id: str, buyer_ids: Sequence[str]) -> dict[str, int]:
    """Units of each offer any of ``buyer_ids`` (a buyer's lineage) has paid for (refunded orders excluded),
    from the order lines."""
    stmt = scoped_select(Order, workspace_id, Order.lines).where(
        Order.buyer_id.in_(buyer_ids),
        Order.status.in_(("paid", "partially_refunded")),
    )
    counts: dict[str, int] = {}
    for (lines,) in session.execute(stmt):
        for line in lines:
            counts[line["offer_key"]] = counts.get(line["offer_key"], 0) + int(line.get("quantity", 1))
    return counts
