"""Every SQL statement of the checkout domain: orders, holds and stock, fulfilment tasks, provider events."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import exists, func, select
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import Session, aliased

from offerloop.db.scoped import newest_first, scoped_select, scoped_update
from offerloop.identity import service as identity_service
from offerloop.models import (
    BuyerClaim,
    Coupon,
    DropStock,
    FulfilmentTask,
    Job,
    Order,
    PaymentEvent,
    StockHold,
)


def add(session: Session, obj: Any) -> None:
    session.add(obj)


def flush(session: Session) -> None:
    session.flush()


def order(session: Session, workspace_id: str, order_id: str) -> Order | None:
    return session.scalars(scoped_select(Order, workspace_id).where(Order.id == order_id)).one_or_none()


def order_for_update(session: Session, workspace_id: str, order_id: str) -> Order | None:
    """The order, its row locked until the transaction ends (PostgreSQL; SQLite has one writer anyway), so
    payment, refund and fulfilment of one order see each other's committed state."""
    stmt = scoped_select(Order, workspace_id).where(Order.id == order_id)
    session.flush()  # sessions do not autoflush, and populate_existing would drop this transaction's changes
    return session.scalars(stmt.with_for_update().execution_options(populate_existing=True)).one_or_none()


def order_for_webhook(
    session: Session, workspace_id: str | None, order_id: str | None, provider_ref: str | None
) -> Order | None:
    """The order a verified provider event is about. When its metadata names the workspace, every lookup is
    scoped to it (an order id of another workspace matches nothing); an event without that metadata is
    matched by the order id we wrote into it or the provider's own reference, both globally unique. The
    order found carries the workspace every later step uses."""
    base = scoped_select(Order, workspace_id) if workspace_id else select(Order)
    if order_id:
        found = session.scalars(base.where(Order.id == order_id)).one_or_none()
        if found is not None:
            return found
    if provider_ref:
        return session.scalars(base.where(Order.provider_ref == provider_ref).order_by(Order.id)).first()
    return None


def orders_of(session: Session, workspace_id: str, buyer_id: str) -> list[Order]:
    stmt = scoped_select(Order, workspace_id).where(Order.buyer_id == buyer_id)
    return list(session.scalars(stmt.order_by(Order.created_at)))


def orders_page(
    session: Session, workspace_id: str, *, limit: int, before_id: str | None, status: str | None,
    buyer_ids: Sequence[str] | None,
) -> list[Order]:  # fmt: skip
    """Up to ``limit`` orders, newest id first, older than ``before_id``, of one status if given, of any of
    ``buyer_ids`` (a buyer's lineage) if given."""
    stmt = newest_first(Order, workspace_id, limit=limit, before_id=before_id, status=status)
    if buyer_ids is not None:
        stmt = stmt.where(Order.buyer_id.in_(buyer_ids))
    return list(session.scalars(stmt))


def sold_since(session: Session, workspace_id: str, offer_key: str, since: datetime) -> int:
    """Units of an offer in orders created since ``since`` that are paid or still pending."""
    stmt = scoped_select(Order, workspace_id, Order.lines).where(
        Order.created_at >= since,
        Order.status.in_(("pending", "paid", "partially_refunded")),
    )  # fmt: skip
    return sum(int(line.get("quantity", 1)) for (lines,) in session.execute(stmt) for line in lines
               if line["offer_key"] == offer_key)  # fmt: skip


def _rowcount(result: Any) -> int:
    return int(getattr(result, "rowcount", 0) or 0)


# -- coupon uses and per-buyer limits: counters the database checks -------------------------------------


def coupon_redemptions(session: Session, workspace_id: str, code: str) -> int:
    """Uses of the coupon so far (orders pending or paid with it): the one count ``max_redemptions`` reads."""
    stmt = scoped_select(Coupon, workspace_id, Coupon.redemptions).where(Coupon.code == code)
    return int(session.scalar(stmt) or 0)


def redeem_coupon(session: Session, workspace_id: str, code: str, limit: int | None) -> bool:
    """One more use of the coupon if ``limit`` allows it (a conditional UPDATE: concurrent checkouts never
    exceed the limit). The row is created with the catalog; a coupon without one is created here."""
    _ensure(session, Coupon, workspace_id=workspace_id, code=code, definition={}, redemptions=0)
    stmt = scoped_update(Coupon, workspace_id).where(Coupon.code == code)
    if limit is not None:
        stmt = stmt.where(Coupon.redemptions + 1 <= limit)
    return _rowcount(session.execute(stmt.values(redemptions=Coupon.redemptions + 1))) == 1


def unredeem_coupon(session: Session, workspace_id: str, code: str) -> None:
    session.execute(
        scoped_update(Coupon, workspace_id)
        .where(Coupon.code == code, Coupon.redemptions > 0)
        .values(redemptions=Coupon.redemptions - 1)
    )


def _ensure(session: Session, model: Any, **values: Any) -> None:
    """Insert the row unless one with the same unique key exists (never an error under concurrency)."""
    insert = postgresql.insert if session.get_bind().dialect.name == "postgresql" else sqlite.insert
    session.execute(insert(model).values(**values).on_conflict_do_nothing())


def _lineage(session: Session, workspace_id: str, buyer_id: str) -> tuple[str, ...]:
    """The buyers whose claims count as this buyer's: the lineage of the live buyer ``buyer_id`` answers with
    (a merge moves no claim row, and an undo must give each its own back). A per-buyer limit is the person's,
    not one record's: a buyer merged from two records never gets it twice."""
    return identity_service.survivor_lineage(session=session, workspace_id=workspace_id, buyer_id=buyer_id)


def _used_by(workspace_id: str, scope: str, key: str, buyer_ids: Sequence[str]) -> Any:
    """The units the given buyers hold of the limit (0 for none): a one-value SELECT."""
    other = aliased(BuyerClaim)
    return scoped_select(other, workspace_id, func.coalesce(func.sum(other.used), 0)).where(
        other.scope == scope, other.key == key, other.buyer_id.in_(buyer_ids)
    )


def claimed(session: Session, workspace_id: str, scope: str, key: str, buyer_id: str) -> int:
    """Units of the limit the buyer holds, with every buyer merged into the same person."""
    lineage = _lineage(session, workspace_id, buyer_id)
    return int(session.scalar(_used_by(workspace_id, scope, key, lineage)) or 0)


def claim(
    session: Session, workspace_id: str, scope: str, key: str, buyer_id: str, n: int, limit: int | None
) -> bool:
    """Add ``n`` to the buyer's count if it stays within ``limit`` (None: always), counting what the buyers
    merged with it hold. One UPDATE of this buyer's row whose WHERE re-checks the count under the row lock, so
    concurrent checkouts of one buyer cannot both pass (they resolve to the same live buyer, so to one row;
    the lineage's other rows only ever go down, by a release)."""
    _ensure(session, BuyerClaim, workspace_id=workspace_id, scope=scope, key=key, buyer_id=buyer_id, used=0)
    stmt = scoped_update(BuyerClaim, workspace_id).where(
        BuyerClaim.scope == scope, BuyerClaim.key == key, BuyerClaim.buyer_id == buyer_id,
    )  # fmt: skip
    if limit is not None:
        others = [b for b in _lineage(session, workspace_id, buyer_id) if b != buyer_id]
        held = _used_by(workspace_id, scope, key, others).scalar_subquery() if others else 0
        stmt = stmt.where(BuyerClaim.used + n + held <= limit)
    return _rowcount(session.execute(stmt.values(used=BuyerClaim.used + n))) == 1


def unclaim(session: Session, workspace_id: str, scope: str, key: str, buyer_id: str, n: int) -> None:
    session.execute(
        scoped_update(BuyerClaim, workspace_id)
        .where(
            BuyerClaim.scope == scope,
            BuyerClaim.key == key,
            BuyerClaim.buyer_id == buyer_id,
            BuyerClaim.used >= n,
        )
        .values(used=BuyerClaim.used - n)
    )


# -- drop stock: sold + held <= total, enforced by conditional UPDATEs -----------------------------------


def take_stock(session: Session, workspace_id: str, offer_key: str, quantity: int) -> bool:
    """Hold ``quantity`` units if that many are left: one UPDATE whose WHERE re-checks the stock under the
    row lock (PostgreSQL) or the single writer (SQLite), so concurrent checkouts can never oversell."""
    result = session.execute(
        scoped_update(DropStock, workspace_id)
        .where(
            DropStock.offer_key == offer_key,
            DropStock.sold + DropStock.held + quantity <= DropStock.total,
        )
        .values(held=DropStock.held + quantity)
    )
    return int(getattr(result, "rowcount", 0) or 0) == 1


def _unhold(session: Session, workspace_id: str, offer_key: str, quantity: int, *, sold: int) -> None:
    session.execute(
        scoped_update(DropStock, workspace_id)
        .where(DropStock.offer_key == offer_key)
        .values(held=DropStock.held - quantity, sold=DropStock.sold + sold)
    )


def _set_hold_status(
    session: Session, workspace_id: str, hold_id: int, before: tuple[str, ...], after: str
) -> bool:
    """Move a hold from one of ``before`` to ``after``; False when another transaction moved it first."""
    result = session.execute(
        scoped_update(StockHold, workspace_id)
        .where(StockHold.id == hold_id, StockHold.status.in_(before))
        .values(status=after)
    )
    return int(getattr(result, "rowcount", 0) or 0) == 1


def release_expired_holds(session: Session, workspace_id: str, offer_key: str, now: datetime) -> int:
    stmt = scoped_select(StockHold, workspace_id, StockHold.id, StockHold.quantity, StockHold.buyer_id).where(
        StockHold.offer_key == offer_key, StockHold.status == "held",
        StockHold.expires_at < now,
    )  # fmt: skip
    released = 0
    for hold_id, quantity, buyer_id in session.execute(stmt).all():
        if expire_hold(session, workspace_id, hold_id, offer_key, quantity, buyer_id):
            released += quantity
    return released


def expire_hold(
    session: Session, workspace_id: str, hold_id: int, offer_key: str, quantity: int, buyer_id: str
) -> bool:
    """A hold that lapsed unpaid: its units go back to stock and to the buyer's allowance (False: it had moved)."""
    if not _set_hold_status(session, workspace_id, hold_id, ("held",), "expired"):
        return False
    _unhold(session, workspace_id, offer_key, quantity, sold=0)
    unclaim(session, workspace_id, "drop", offer_key, buyer_id, quantity)
    return True


def holds(session: Session, workspace_id: str, order_id: str) -> list[StockHold]:
    stmt = scoped_select(StockHold, workspace_id).where(StockHold.order_id == order_id)
    return list(session.scalars(stmt.order_by(StockHold.id)))


def convert_hold(session: Session, hold: StockHold) -> None:
    """A held unit is sold (the stock's held count was taken for it, by the checkout or just now). A lapsed
    hold that is paid all the same counts for the buyer's limit again (the payment happened)."""
    before = hold.status
    if _set_hold_status(session, hold.workspace_id, hold.id, ("held", "expired", "released"), "converted"):
        _unhold(session, hold.workspace_id, hold.offer_key, hold.quantity, sold=hold.quantity)
        if before != "held":
            claim(session, hold.workspace_id, "drop", hold.offer_key, hold.buyer_id, hold.quantity, None)
    session.refresh(hold)


def release_holds(session: Session, workspace_id: str, order_id: str, status: str) -> None:
    for hold in holds(session, workspace_id, order_id):
        if _set_hold_status(session, workspace_id, hold.id, ("held",), status):
            _unhold(session, hold.workspace_id, hold.offer_key, hold.quantity, sold=0)
            unclaim(session, hold.workspace_id, "drop", hold.offer_key, hold.buyer_id, hold.quantity)


def stock(session: Session, workspace_id: str, offer_key: str) -> DropStock | None:
    stmt = scoped_select(DropStock, workspace_id).where(DropStock.offer_key == offer_key)
    return session.scalars(stmt).one_or_none()


# -- fulfilment tasks --------------------------------------------------------------------------------


def task(
    session: Session, workspace_id: str, order_id: str, component: str, ref: str
) -> FulfilmentTask | None:
    stmt = scoped_select(FulfilmentTask, workspace_id).where(
        FulfilmentTask.order_id == order_id, FulfilmentTask.component == component, FulfilmentTask.ref == ref
    )
    return session.scalars(stmt).one_or_none()


def task_by_id(
    session: Session, workspace_id: str, task_id: int, *, lock: bool = False
) -> FulfilmentTask | None:
    stmt = scoped_select(FulfilmentTask, workspace_id).where(FulfilmentTask.id == task_id)
    return session.scalars(stmt.with_for_update() if lock else stmt).one_or_none()


def tasks(session: Session, workspace_id: str, order_id: str) -> list[FulfilmentTask]:
    stmt = scoped_select(FulfilmentTask, workspace_id).where(FulfilmentTask.order_id == order_id)
    return list(session.scalars(stmt.order_by(FulfilmentTask.id)))


def cancel_pending_tasks(session: Session, workspace_id: str, order_id: str, reason: str) -> int:
    """Tasks of the order not delivered yet will not be: the order was refunded or canceled."""
    result = session.execute(
        scoped_update(FulfilmentTask, workspace_id)
        .where(
            FulfilmentTask.order_id == order_id,
            FulfilmentTask.status.in_(("pending", "failed")),
        )
        .values(status="canceled", last_error=reason)
    )
    return _rowcount(result)


# -- due work and provider events ----------------------------------------------------------------------


def unscheduled_holds(session: Session, *, kind: str, limit: int) -> list[StockHold]:
    """Drop holds still held (every workspace) whose order has no queued ``kind`` job."""
    key = StockHold.workspace_id.concat("/").concat(StockHold.order_id)  # checkout.due.key
    queued = exists().where(Job.kind == kind, Job.key == key, Job.state == "queued")
    stmt = select(StockHold).where(StockHold.status == "held", ~queued).order_by(StockHold.id).limit(limit)
    return list(session.scalars(stmt))


def payment_event(session: Session, provider: str, provider_event_id: str) -> PaymentEvent | None:
    stmt = select(PaymentEvent).where(
        PaymentEvent.provider == provider, PaymentEvent.provider_event_id == provider_event_id
    )
    return session.scalars(stmt).one_or_none()


def deferred_payment_events(
    session: Session, workspace_id: str, order_id: str, outcome: str = "deferred"
) -> list[PaymentEvent]:
    """Provider events of an order kept with ``outcome`` to be applied later (``deferred``: waiting for the order
    to be paid), in the order they happened."""
    stmt = scoped_select(PaymentEvent, workspace_id).where(
        PaymentEvent.order_id == order_id, PaymentEvent.outcome == outcome
    )
    return list(session.scalars(stmt.order_by(PaymentEvent.occurred_at, PaymentEvent.id)))


def unmatched_payment_events(session: Session, provider: str, payment_ref: str) -> list[PaymentEvent]:
    """Events about a payment that matched no order when they arrived, in the order they happened. A provider's
    payment reference is globally unique, so this is the one lookup not scoped by workspace (such an event
    may carry none); the caller checks the workspace of any it finds."""
    stmt = select(PaymentEvent).where(
        PaymentEvent.provider == provider,
        PaymentEvent.payment_ref == payment_ref,
        PaymentEvent.outcome == "ignored_no_order",
    )
    return list(session.scalars(stmt.order_by(PaymentEvent.occurred_at, PaymentEvent.id)))


def payment_events_of(
    session: Session, workspace_id: str, order_id: str, *, limit: int, after_id: int | None = None
) -> list[PaymentEvent]:
    """Up to ``limit`` of the order's provider events in the order they were received, after ``after_id``."""
    stmt = scoped_select(PaymentEvent, workspace_id).where(PaymentEvent.order_id == order_id)
    if after_id is not None:
        stmt = stmt.where(PaymentEvent.id > after_id)
    return list(session.scalars(stmt.order_by(PaymentEvent.id).limit(limit)))


def payment_events_by_ref(
    session: Session, workspace_id: str, provider: str, payment_ref: str
) -> list[PaymentEvent]:
    """The workspace's events about one provider payment (an invoice, an intent), in the order they happened."""
    stmt = scoped_select(PaymentEvent, workspace_id).where(
        PaymentEvent.provider == provider, PaymentEvent.payment_ref == payment_ref
    )
    return list(session.scalars(stmt.order_by(PaymentEvent.occurred_at, PaymentEvent.id)))
