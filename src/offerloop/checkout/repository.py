"""Every SQL statement of the checkout domain: orders, holds and stock, fulfilment tasks, subscriptions,
provider events."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import func, or_, select, update
from sqlalchemy.orm import Session

from offerloop.models import DropStock, FulfilmentTask, Order, PaymentEvent, StockHold, Subscription


def add(session: Session, obj: Any) -> None:
    session.add(obj)


def flush(session: Session) -> None:
    session.flush()


def order(session: Session, workspace_id: str, order_id: str) -> Order | None:
    return session.scalars(
        select(Order).where(Order.workspace_id == workspace_id, Order.id == order_id)
    ).one_or_none()


def order_by_any(session: Session, order_id: str | None, provider_ref: str | None) -> Order | None:
    if order_id:
        found = session.get(Order, order_id)
        if found is not None:
            return found
    if provider_ref:
        return session.scalars(select(Order).where(Order.provider_ref == provider_ref)).first()
    return None


def orders_of(session: Session, workspace_id: str, buyer_id: str) -> list[Order]:
    stmt = select(Order).where(Order.workspace_id == workspace_id, Order.buyer_id == buyer_id)
    return list(session.scalars(stmt.order_by(Order.created_at)))


def sold_since(session: Session, workspace_id: str, offer_key: str, since: datetime) -> int:
    """Units of an offer in orders created since ``since`` that are paid or still pending."""
    stmt = select(Order.lines).where(
        Order.workspace_id == workspace_id, Order.created_at >= since,
        Order.status.in_(("pending", "paid", "partially_refunded")),
    )  # fmt: skip
    return sum(int(line.get("quantity", 1)) for (lines,) in session.execute(stmt) for line in lines
               if line["offer_key"] == offer_key)  # fmt: skip


def coupon_uses(session: Session, workspace_id: str, code: str, buyer_id: str | None = None) -> int:
    stmt = select(func.count()).select_from(Order).where(
        Order.workspace_id == workspace_id, func.upper(Order.coupon) == code.strip().upper(),
        Order.status.in_(("paid", "partially_refunded")),
    )  # fmt: skip
    if buyer_id is not None:
        stmt = stmt.where(Order.buyer_id == buyer_id)
    return int(session.scalar(stmt) or 0)


# -- drop stock: sold + held <= total, enforced by conditional UPDATEs -----------------------------------


def take_stock(session: Session, workspace_id: str, offer_key: str, quantity: int) -> bool:
    """Hold ``quantity`` units if that many are left: one UPDATE whose WHERE re-checks the stock under the
    row lock (PostgreSQL) or the single writer (SQLite), so concurrent checkouts can never oversell."""
    result = session.execute(
        update(DropStock)
        .where(
            DropStock.workspace_id == workspace_id,
            DropStock.offer_key == offer_key,
            DropStock.sold + DropStock.held + quantity <= DropStock.total,
        )
        .values(held=DropStock.held + quantity)
    )
    return int(getattr(result, "rowcount", 0) or 0) == 1


def _unhold(session: Session, workspace_id: str, offer_key: str, quantity: int, *, sold: int) -> None:
    session.execute(
        update(DropStock)
        .where(DropStock.workspace_id == workspace_id, DropStock.offer_key == offer_key)
        .values(held=DropStock.held - quantity, sold=DropStock.sold + sold)
    )


def _set_hold_status(session: Session, hold_id: int, before: tuple[str, ...], after: str) -> bool:
    """Move a hold from one of ``before`` to ``after``; False when another transaction moved it first."""
    result = session.execute(
        update(StockHold).where(StockHold.id == hold_id, StockHold.status.in_(before)).values(status=after)
    )
    return int(getattr(result, "rowcount", 0) or 0) == 1


def release_expired_holds(session: Session, workspace_id: str, offer_key: str, now: datetime) -> int:
    stmt = select(StockHold.id, StockHold.quantity).where(
        StockHold.workspace_id == workspace_id, StockHold.offer_key == offer_key, StockHold.status == "held",
        StockHold.expires_at < now,
    )  # fmt: skip
    released = 0
    for hold_id, quantity in session.execute(stmt).all():
        if _set_hold_status(session, hold_id, ("held",), "expired"):
            _unhold(session, workspace_id, offer_key, quantity, sold=0)
            released += quantity
    return released


def holds(session: Session, order_id: str) -> list[StockHold]:
    return list(
        session.scalars(select(StockHold).where(StockHold.order_id == order_id).order_by(StockHold.id))
    )


def convert_hold(session: Session, hold: StockHold) -> None:
    """A held unit is sold (the stock's held count was taken for it, by the checkout or just now)."""
    if _set_hold_status(session, hold.id, ("held", "expired", "released"), "converted"):
        _unhold(session, hold.workspace_id, hold.offer_key, hold.quantity, sold=hold.quantity)
    session.refresh(hold)


def release_holds(session: Session, order_id: str, status: str) -> None:
    for hold in holds(session, order_id):
        if _set_hold_status(session, hold.id, ("held",), status):
            _unhold(session, hold.workspace_id, hold.offer_key, hold.quantity, sold=0)


def units_bought_or_held(
    session: Session, workspace_id: str, offer_key: str, buyer_id: str, now: datetime
) -> int:
    stmt = select(func.coalesce(func.sum(StockHold.quantity), 0)).where(
        StockHold.workspace_id == workspace_id, StockHold.offer_key == offer_key, StockHold.buyer_id == buyer_id,
        or_(StockHold.status == "converted", (StockHold.status == "held") & (StockHold.expires_at >= now)),
    )  # fmt: skip
    return int(session.scalar(stmt) or 0)


def stock(session: Session, workspace_id: str, offer_key: str) -> DropStock | None:
    stmt = select(DropStock).where(DropStock.workspace_id == workspace_id, DropStock.offer_key == offer_key)
    return session.scalars(stmt).one_or_none()


# -- fulfilment tasks --------------------------------------------------------------------------------


def task(session: Session, order_id: str, component: str, ref: str) -> FulfilmentTask | None:
    stmt = select(FulfilmentTask).where(
        FulfilmentTask.order_id == order_id, FulfilmentTask.component == component, FulfilmentTask.ref == ref
    )
    return session.scalars(stmt).one_or_none()


def task_by_id(session: Session, task_id: int) -> FulfilmentTask | None:
    return session.get(FulfilmentTask, task_id)


def tasks(session: Session, order_id: str) -> list[FulfilmentTask]:
    stmt = select(FulfilmentTask).where(FulfilmentTask.order_id == order_id)
    return list(session.scalars(stmt.order_by(FulfilmentTask.id)))


def due_tasks(session: Session, now: datetime, limit: int) -> list[FulfilmentTask]:
    stmt = select(FulfilmentTask).where(
        FulfilmentTask.status == "pending", FulfilmentTask.next_attempt_at <= now
    )
    return list(
        session.scalars(stmt.order_by(FulfilmentTask.next_attempt_at, FulfilmentTask.id).limit(limit))
    )


# -- subscriptions and provider events -----------------------------------------------------------------


def subscription(session: Session, workspace_id: str, subscription_id: str) -> Subscription | None:
    stmt = select(Subscription).where(
        Subscription.workspace_id == workspace_id, Subscription.id == subscription_id
    )
    return session.scalars(stmt).one_or_none()


def subscription_by_provider(session: Session, workspace_id: str, provider_id: str) -> Subscription | None:
    stmt = select(Subscription).where(
        Subscription.workspace_id == workspace_id, Subscription.provider_subscription_id == provider_id
    )
    return session.scalars(stmt).first()


def subscriptions_of(session: Session, workspace_id: str, buyer_id: str) -> list[Subscription]:
    stmt = select(Subscription).where(
        Subscription.workspace_id == workspace_id, Subscription.buyer_id == buyer_id
    )
    return list(session.scalars(stmt.order_by(Subscription.created_at)))


def payment_event(session: Session, provider: str, provider_event_id: str) -> PaymentEvent | None:
    stmt = select(PaymentEvent).where(
        PaymentEvent.provider == provider, PaymentEvent.provider_event_id == provider_event_id
    )
    return session.scalars(stmt).one_or_none()


def deferred_payment_events(session: Session, workspace_id: str, order_id: str) -> list[PaymentEvent]:
    """Provider events that waited for an order to be paid, in the order they happened."""
    stmt = select(PaymentEvent).where(
        PaymentEvent.workspace_id == workspace_id, PaymentEvent.order_id == order_id,
        PaymentEvent.outcome == "deferred",
    )  # fmt: skip
    return list(session.scalars(stmt.order_by(PaymentEvent.occurred_at, PaymentEvent.id)))


def payment_events_of(session: Session, workspace_id: str, order_id: str) -> list[PaymentEvent]:
    stmt = select(PaymentEvent).where(
        PaymentEvent.workspace_id == workspace_id, PaymentEvent.order_id == order_id
    )
    return list(session.scalars(stmt.order_by(PaymentEvent.id)))


def lock_order(session: Session, order: Order) -> None:
    """Reload the order under a row lock (PostgreSQL; SQLite has a single writer) until the transaction ends."""
    session.refresh(order, with_for_update=True)
