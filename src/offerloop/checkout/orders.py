"""Orders: the quote, drop holds and coupon uses of a checkout, payment, refunds, reads and the checkout itself.

Orders are created ``pending`` with a priced quote; a drop's units are held for a short time with a
conditional UPDATE (sold + held never exceeds the stock, on SQLite and PostgreSQL alike). Payment —
marked by an admin (manual provider) or reported by a verified webhook (``checkout.payments``) — is
idempotent: the order becomes ``paid``, its hold converts to a sale, the ledger gets a balanced sale entry,
the buyer record gets an "Order Completed" event (features, personas and decision rewards follow), a plan
starts its subscription, and one fulfilment task per component is queued (``checkout.fulfilment``).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from offerloop.checkout import buyers, due, fulfilment, repository
from offerloop.checkout.exceptions import CheckoutError, OrderNotFound, SoldOut
from offerloop.checkout.schemas import (
    FulfilmentRead,
    OrderDetail,
    OrderLine,
    OrderRead,
    OrderStatus,
    UpsellRead,
)
from offerloop.checkout.stripe_provider import StripeProvider
from offerloop.core.clock import utcnow
from offerloop.core.ids import new_id
from offerloop.core.money import Money
from offerloop.core.pages import InvalidCursor, Page, decode_cursor, page_of
from offerloop.entitlements import service as entitlements_service
from offerloop.identity import service as identity_service
from offerloop.ledger import service as ledger_service
from offerloop.ledger.postings import Account, Entry, EntryKind, Posting, balance, refund_entry, sale_entry
from offerloop.models import Order, StockHold
from offerloop.offers import service as offers_service
from offerloop.offers.catalog import Catalog, Offer, price_of
from offerloop.offers.exceptions import NotForSale, PricingError
from offerloop.personas import service as persona_service
from offerloop.subscriptions import service as subscriptions_service

HOLD_MINUTES = 15


def load(session: Session, workspace_id: str, order_id: str, *, lock: bool = False) -> Order:
    """The order (its row locked with ``lock``); OrderNotFound when the workspace has none by that id."""
    order = (repository.order_for_update if lock else repository.order)(session, workspace_id, order_id)
    if order is None:
        raise OrderNotFound(f"order {order_id} does not exist")
    return order


def order_read(order: Order) -> OrderRead:
    return OrderRead(
        id=order.id, buyer_id=order.buyer_id, status=order.status, provider=order.provider,
        currency=order.currency, subtotal=order.subtotal, discount=order.discount, tax=order.tax,
        total=order.total, refunded=order.refunded, coupon=order.coupon,
        lines=[OrderLine.model_validate(line) for line in order.lines], decision_id=order.decision_id,
        checkout_url=order.checkout_url, provider_ref=order.provider_ref,
        formatted_total=Money(order.currency, order.total).format(), created_at=order.created_at,
        paid_at=order.paid_at,
    )  # fmt: skip


def begin(
    *, session: Session, workspace_id: str, buyer_id: str, offer_key: str, currency: str, provider: str = "manual",
    coupon: str | None = None, bumps: Sequence[str] = (), quantity: int = 1, decision_id: str | None = None,
    tax_percent: str = "0", now: datetime | None = None, variant: str | None = None,
) -> OrderRead:  # fmt: skip
    """A pending order with its quote; a drop's units are held for HOLD_MINUTES (SoldOut when none are left).
    An offer with variants is sold in ``variant`` (else the one ``decision_id`` presented, else as itself)."""
    now = now or utcnow()
    catalog = offers_service.catalog_for(session=session, workspace_id=workspace_id)
    offer = offers_service.get_offer(session=session, workspace_id=workspace_id, key=offer_key)
    if not offer.active:
        raise NotForSale(f"{offer_key} is not for sale")
    if offer.kind == "micro_offer" and offer.daily_capacity is not None:
        sold_today = repository.sold_since(
            session, workspace_id, offer_key, now.replace(hour=0, minute=0, second=0, microsecond=0)
        )
        if sold_today + quantity > offer.daily_capacity:
            raise SoldOut(
                f"{offer.title}: today's {offer.daily_capacity} slots are taken", code="capacity_reached"
            )
    found = catalog.coupon(coupon) if coupon else None
    redemptions = repository.coupon_redemptions(session, workspace_id, found.code) if found else 0
    mine = repository.claimed(session, workspace_id, "coupon", found.code, buyer_id) if found else 0
    variant = offers_service.variant_sold(session=session, workspace_id=workspace_id, offer=offer, variant=variant,
                                          decision_id=decision_id)  # fmt: skip
    quote = price_of(catalog, offer_key, currency, coupon=coupon, bumps=bumps, now=now, quantity=quantity,
                     coupon_redemptions=redemptions, buyer_redeemed_coupon=mine > 0, variant=variant)  # fmt: skip
    lines = [_due_now(catalog, _with_bundle(offer, line.to_dict())) for line in quote.lines]
    subtotal, discount = sum(d["subtotal"] for d in lines), sum(d["discount"] for d in lines)
    tax = Money(quote.currency, subtotal - discount).percent(tax_percent)
    order = Order(
        id=new_id("ord"), workspace_id=workspace_id, buyer_id=buyer_id, status="pending", provider=provider,
        currency=quote.currency, subtotal=subtotal, discount=discount, tax=tax.amount,
        total=subtotal - discount + tax.amount, refunded=0, coupon=quote.coupon, tax_percent=str(tax_percent),
        platform_fee_percent="0", lines=lines, decision_id=decision_id, created_at=now, updated_at=now,
    )  # fmt: skip
    repository.add(session, order)
    if found is not None and quote.coupon:
        _redeem(session, workspace_id, found.code, found.max_redemptions, found.once_per_buyer, buyer_id)
    for line in quote.lines:
        item = catalog.offer(line.offer_key)
        if item is not None and item.kind == "drop":
            _hold(session, workspace_id, item, order, buyer_id, line.quantity, now)
    repository.flush(session)
    return order_read(order)


def _with_bundle(offer: Offer, line: dict[str, Any]) -> dict[str, Any]:
    """A variant's extra components are recorded on its line: what was sold is granted, whatever the catalog
    says by the time it is paid."""
    variant = offer.variant(line["variant"]) if line.get("variant") else None
    return {**line, "bundle": [c.to_dict() for c in variant.bundle]} if variant and variant.bundle else line


def _due_now(catalog: Catalog, line: dict[str, Any]) -> dict[str, Any]:
    """The line as charged by this order: a plan with a trial is charged at the trial's end (by the
    subscription), so the checkout charges nothing for it and records what the trial turns into."""
    offer = catalog.offer(line["offer_key"])
    if offer is None or not offer.recurring or not offer.trial_days:
        return line
    return {**line, "trial_days": offer.trial_days, "after_trial": line["subtotal"], "subtotal": 0, "discount": 0,
            "total": 0}  # fmt: skip


def _redeem(
    session: Session, workspace_id: str, code: str, limit: int | None, once_per_buyer: bool, buyer_id: str
) -> None:
    """Count one use of the coupon (a pending checkout holds it until it is canceled): the database checks
    ``max_redemptions`` and ``once_per_buyer``, so concurrent checkouts cannot exceed them."""
    if not repository.redeem_coupon(session, workspace_id, code, limit):
        raise PricingError(
            f"coupon {code} has been redeemed {limit} times, its limit", code="coupon_exhausted"
        )
    if not repository.claim(
        session, workspace_id, "coupon", code, buyer_id, 1, 1 if once_per_buyer else None
    ):
        raise PricingError(f"coupon {code} can be used once per buyer", code="coupon_already_used")


def _release_coupon(session: Session, order: Order) -> None:
    if order.coupon:
        repository.unredeem_coupon(session, order.workspace_id, order.coupon)
        repository.unclaim(session, order.workspace_id, "coupon", order.coupon, order.buyer_id, 1)


def _hold(
    session: Session,
    workspace_id: str,
    drop: Offer,
    order: Order,
    buyer_id: str,
    quantity: int,
    now: datetime,
) -> None:
    state = offers_service.state_of(session=session, workspace_id=workspace_id, offer=drop, now=now)
    if state not in ("live", "sold_out"):
        raise NotForSale(f"{drop.title} is {state}", details={"state": state})
    repository.release_expired_holds(session, workspace_id, drop.key, now)
    # the buyer's units held or bought, counted by a row the database checks (concurrent checkouts of one
    # buyer serialise on it), so the limit holds on PostgreSQL as on SQLite
    if not repository.claim(
        session, workspace_id, "drop", drop.key, buyer_id, quantity, drop.per_buyer_limit
    ):
        raise CheckoutError(f"{drop.title}: at most {drop.per_buyer_limit} per buyer", code="per_buyer_limit")
    if not repository.take_stock(session, workspace_id, drop.key, quantity):
        raise SoldOut(f"{drop.title} is sold out")
    expires = now + timedelta(minutes=HOLD_MINUTES)
    repository.add(session, StockHold(workspace_id=workspace_id, offer_key=drop.key, order_id=order.id, buyer_id=buyer_id,
                                      quantity=quantity, status="held", created_at=now, expires_at=expires))  # fmt: skip
    offers_service.stock_changed(session=session, workspace_id=workspace_id, offer_key=drop.key)
    due.at(session, due.HOLD_EXPIRY, order.id, workspace_id, expires)


def attach_session(
    *, session: Session, workspace_id: str, order_id: str, provider_ref: str, url: str | None
) -> OrderRead:
    order = load(session, workspace_id, order_id)
    order.provider_ref, order.checkout_url, order.updated_at = provider_ref, url, utcnow()
    return order_read(order)


def cancel_pending(*, session: Session, workspace_id: str, order_id: str, reason: str) -> OrderRead:
    """A pending order that will not be paid: its holds go back to stock."""
    order = load(session, workspace_id, order_id, lock=True)
    if order.status not in ("pending", "canceled"):  # a paid order is refunded, never silently "canceled"
        raise CheckoutError(f"order {order.id} is {order.status}: only a pending order can be canceled "
                            "(refund a paid one)", code="not_cancelable")  # fmt: skip
    if order.status == "pending":
        for hold in repository.holds(session, workspace_id, order.id):
            offers_service.stock_changed(session=session, workspace_id=workspace_id, offer_key=hold.offer_key)
        repository.release_holds(session, workspace_id, order.id, "released")
        _release_coupon(session, order)
        order.status, order.updated_at = "canceled", utcnow()
    return order_read(order)


# -- payment ---------------------------------------------------------------------------------------


def mark_paid(
    *, session: Session, workspace_id: str, order_id: str, actor: str, processor_fee: int | None = None,
    provider_ref: str | None = None, paid_at: datetime | None = None, platform_fee_percent: str = "0",
    subscription_ref: str | None = None, book: bool = True,
) -> OrderRead:  # fmt: skip
    """Record payment (idempotent). A hold that expired before payment is honoured if stock allows it.
    ``book=False``: nothing was charged (a plan's trial started); the first real charge books."""
    order = load(session, workspace_id, order_id, lock=True)
    if order.status != "pending":
        return order_read(order)  # paid already (a webhook delivered twice, or a second admin click)
    at = paid_at or utcnow()
    for hold in repository.holds(session, workspace_id, order.id):
        offers_service.stock_changed(session=session, workspace_id=workspace_id, offer_key=hold.offer_key)
        if hold.status == "held":
            repository.convert_hold(session, hold)
        elif hold.status in ("expired", "released"):  # paid after the hold lapsed: take the unit again if any
            if not repository.take_stock(session, workspace_id, hold.offer_key, hold.quantity):
                raise SoldOut(
                    "the hold expired and the drop sold out meanwhile; refund this payment",
                    code="sold_out_after_expiry",
                )
            repository.convert_hold(session, hold)
    order.status, order.paid_at, order.updated_at = "paid", at, at
    if provider_ref:
        order.provider_ref = provider_ref
    order.platform_fee_percent = str(platform_fee_percent)
    if book:
        book_sale(session, order, processor_fee, at)
    catalog = offers_service.catalog_for(session=session, workspace_id=workspace_id)
    completed = []
    for line in order.lines:
        offer = catalog.offer(line["offer_key"])
        if offer is None:
            continue
        source = order.id
        if offer.recurring:
            source = subscriptions_service.start(
                session=session, order=order, offer=offer, at=at, provider_ref=subscription_ref
            )
        specs = [*fulfilment.components(catalog, offer), *line.get("bundle", ())]  # a variant's bundle too
        for spec in specs:
            fulfilment.queue_task(session, order, spec, source, at)
        # an order of a variant rewards the decision that showed that variant
        action = offers_service.action_key(offer.key, line.get("variant"))
        completed.append(buyers.track(session, workspace_id, order.buyer_id, "Order Completed", {
            "order_id": order.id, "offer_key": offer.key, "offer_action": action,
            "total_minor": line["total"], "currency": order.currency, "revenue": Money(order.currency, line["total"]).format(),
            "kind": offer.kind,
        }, f"{order.id}-{offer.key}-completed"))  # fmt: skip
    if completed:
        buyers.ingest(session, workspace_id, completed)  # one batch for the whole order
    repository.flush(session)
    return order_read(order)


def book_sale(session: Session, order: Order, processor_fee: int | None, at: datetime) -> None:
    """The sale entry of a paid order: one rule for checkouts, renewals and plan-change charges (tax and
    platform fee at the order's rates). An order that charged nothing (a trial) books nothing."""
    if order.subtotal - order.discount <= 0 and order.tax <= 0:
        return
    cur = order.currency
    # Only a fee the provider reported is booked: Stripe's depends on the account, card and method (see _pay)
    fee = Money(cur, processor_fee) if processor_fee is not None else Money.zero(cur)
    gross, discount = Money(cur, order.subtotal), Money(cur, order.discount)
    entry = sale_entry(order.id, gross=gross, discount=discount, tax=Money(cur, order.tax), processor_fee=fee,
                       platform_fee=(gross - discount).percent(order.platform_fee_percent or "0"), occurred_at=at)  # fmt: skip
    ledger_service.record(
        session=session, workspace_id=order.workspace_id, entry=entry, tags=_tags(session, order)
    )


def _tags(session: Session, order: Order) -> dict[str, Any]:
    buyer = identity_service.get_buyer(
        session=session, workspace_id=order.workspace_id, buyer_id=order.buyer_id
    )
    persona = persona_service.brief(session=session, workspace_id=order.workspace_id, buyer_id=order.buyer_id)
    return {
        "offers": [line["offer_key"] for line in order.lines],
        "persona": persona["name"] if persona else None,
        "first_touch": buyer.first_touch.channel if buyer.first_touch else None,
        "last_touch": buyer.last_touch.channel if buyer.last_touch else None,
        "currency": order.currency,
    }


# -- reads -----------------------------------------------------------------------------------------


def get_order(*, session: Session, workspace_id: str, order_id: str) -> OrderDetail:
    """The order and the state of each component's fulfilment."""
    order = load(session, workspace_id, order_id)
    tasks = [FulfilmentRead(component=t.component, ref=t.ref, status=t.status, attempts=t.attempts,
                            last_error=t.last_error, result=t.result) for t in repository.tasks(session, workspace_id, order_id)]  # fmt: skip
    upsells: list[Any] = []
    if order.status in ("paid", "partially_refunded"):  # what to offer next, once this is paid
        upsells = offers_service.upsells_for(session=session, workspace_id=workspace_id, buyer_id=order.buyer_id,
                                             offer_keys=[line["offer_key"] for line in order.lines], currency=order.currency)  # fmt: skip
    return OrderDetail(
        **order_read(order).model_dump(),
        fulfilment=tasks,
        upsells=[UpsellRead.model_validate(u) for u in upsells],
    )


def list_orders(
    *, session: Session, workspace_id: str, limit: int, cursor: str | None = None,
    status: OrderStatus | None = None, buyer_id: str | None = None,
) -> Page[OrderRead]:  # fmt: skip
    """The workspace's orders, newest first (ids are time-ordered and unique), of one status or buyer. A
    buyer's orders are those of its lineage (the buyers merged into it, whose orders a merge does not move);
    a merged-away id answers with its survivor's."""
    after = decode_cursor(cursor, types=(str,))
    if after is not None and not after[0].startswith("ord_"):  # another list's cursor
        raise InvalidCursor("cursor does not belong to this list: pass the next_cursor of its previous page")
    buyer_ids = None
    if buyer_id is not None:
        buyer_ids = identity_service.survivor_lineage(
            session=session, workspace_id=workspace_id, buyer_id=buyer_id
        )
    rows = repository.orders_page(
        session, workspace_id, limit=limit + 1, before_id=after[0] if after else None, status=status,
        buyer_ids=buyer_ids,
    )  # fmt: skip
    return page_of(rows, limit, key=lambda o: (o.id,), item=order_read)


# -- refunds ---------------------------------------------------------------------------------------


def refund(
    *, session: Session, workspace_id: str, order_id: str, amount: int | None = None, actor: str,
    at: datetime | None = None, reason: str | None = None,
) -> OrderRead:  # fmt: skip
    """Full (amount None) or partial refund: a balanced ledger entry, the buyer event, and on a full refund
    the order's access ended: its entitlements revoked, its undelivered tasks canceled, and a subscription
    it paid for canceled with its grants."""
    order = load(session, workspace_id, order_id, lock=True)
    refund_order(session, order, amount, actor=actor, at=at or utcnow(), reason=reason)
    return order_read(order)


def refund_value(session: Session, order: Order, amount: int | None) -> Money:
    """What a refund of ``amount`` (None: all that is left) takes back, checked against the order's status
    and what its books still hold (CheckoutError ``not_refundable`` / ``invalid_refund_amount``)."""
    if order.status not in ("paid", "partially_refunded"):
        raise CheckoutError(
            f"order {order.id} is {order.status}: only paid orders can be refunded", code="not_refundable"
        )
    if order.total <= 0:
        raise CheckoutError(
            f"order {order.id} charged nothing: there is nothing to refund", code="not_refundable"
        )
    left = ledger_service.refundable(session=session, workspace_id=order.workspace_id, order_id=order.id)
    value = left if amount is None else Money(order.currency, amount)
    if value.amount <= 0 or value.amount > left.amount:
        raise CheckoutError(
            f"refund must be between 1 and {left.amount} ({left.format()})", code="invalid_refund_amount"
        )
    return value


def refunds_booked(session: Session, order: Order) -> int:
    """How many refund entries the order's books hold (whoever made them): the sequence number of its next
    refund, which never repeats because entries are never removed."""
    entries = ledger_service.entries(session=session, workspace_id=order.workspace_id, order_id=order.id)
    return sum(1 for e, _ in entries if e.kind == EntryKind.REFUND)


def refund_order(
    session: Session, order: Order, amount: int | None, *, actor: str, at: datetime, reason: str | None,
    tax_part: int | None = None, end_access: bool = True, status: str | None = None,
    provider_refund: str | None = None, provider_status: str | None = None,
    provider: StripeProvider | None = None,
) -> None:  # fmt: skip
    """The refund itself. The platform fee is returned in proportion to the refund (the platform keeps no fee
    on money the creator gives back); the processor's fee is not (processors keep it). ``end_access`` False:
    a plan-change credit, which never ends the subscription it belongs to. ``provider_refund``: the
    provider's id of the refund that moved the money, kept as the entry's reference (unique: booked once),
    with its ``provider_status`` (``pending`` can still fail: ``reverse_refund``) in the entry's tags.
    ``provider``: the subscription a full refund cancels is canceled in Stripe first."""
    workspace_id = order.workspace_id
    value = refund_value(session, order, amount)
    prior = [
        e for e, _ in ledger_service.entries(session=session, workspace_id=workspace_id, order_id=order.id)
    ]
    left = ledger_service.refundable(session=session, workspace_id=workspace_id, order_id=order.id)
    booked = balance(prior, currency=order.currency)
    fee_left = booked[Account.PLATFORM_FEES]
    fee_back = fee_left if value == left or fee_left.amount <= 0 else (
        fee_left.allocate([value.amount, left.amount - value.amount])[0])  # fmt: skip
    # a charge that never went through (an unpaid renewal) cost no processor fee either
    processor_back = booked[Account.PROCESSOR_FEES] if status == "unpaid" else None
    entry = refund_entry(order.id, prior=prior, amount=value, occurred_at=at, platform_fee_returned=fee_back,
                         fee_returned=processor_back,
                         tax_part=None if tax_part is None or value == left else Money(order.currency, tax_part))  # fmt: skip
    tags = _tags(session, order)
    if provider_refund:
        tags |= {"provider_refund": provider_refund, "provider_refund_status": provider_status}
    order.refunded += value.amount
    order.status = status or ("refunded" if order.refunded >= order.total else "partially_refunded")
    order.updated_at = at
    why = reason or "order refunded"
    if order.status in ("refunded", "unpaid"):
        tags["ended_access"] = why  # what a reversal of this refund gives back (``reverse_refund``)
    ledger_service.record(session=session, workspace_id=workspace_id, entry=entry, tags=tags,
                          reference=provider_refund)  # fmt: skip
    if order.status in ("refunded", "unpaid"):
        repository.cancel_pending_tasks(session, workspace_id, order.id, why)
        entitlements_service.revoke_source(session=session, workspace_id=workspace_id, source=order.id,
                                           reason=why, actor=actor)  # fmt: skip
        if end_access and order.status == "refunded":
            subscriptions_service.end_for_refund(session=session, order=order, at=at, actor=actor, reason=why,
                                                 provider=provider)  # fmt: skip
    if order.status != "unpaid":  # a charge that failed is no refund to the buyer
        buyers.event(
            session,
            workspace_id,
            order.buyer_id,
            "Order Refunded",
            {
                "order_id": order.id,
                "amount_minor": value.amount,
                "currency": order.currency,
                "full": order.status == "refunded",
            },
            f"{order.id}-refund-{order.refunded}",
        )


def reverse_refund(session: Session, order: Order, *, refund_id: str, at: datetime, actor: str) -> str:
    """A provider refund booked here (``refund_order`` with ``provider_refund``) that the provider reports failed
    or canceled after all: the money never went back to the buyer. Its refund entry stays (entries are never
    removed, and the order's refund sequence never repeats) and is balanced by an adjustment with the opposite
    postings; the order's refunded amount and status are restored, and the access that refund ended (the
    order's grants and undelivered components) is given back. Idempotent by the refund id; the caller holds the
    order's row lock. Returns ``refund_reversed``, ``refund_failure_already_recorded`` or ``refund_not_booked``
    (no refund of that id is booked on this order: nothing to undo)."""
    every = ledger_service.entries(session=session, workspace_id=order.workspace_id, order_id=order.id)
    mine = [(e, tags) for e, tags in every if tags.get("provider_refund") == refund_id]
    if any(e.kind is EntryKind.ADJUSTMENT for e, _ in mine):
        return "refund_failure_already_recorded"
    booked = next(((e, tags) for e, tags in mine if e.kind is EntryKind.REFUND), None)
    if booked is None:
        return "refund_not_booked"
    entry, _ = booked
    returned = sum(-p.amount.amount for p in entry.postings
                   if p.account is Account.BUYER_PAYMENTS and p.amount.amount < 0)  # fmt: skip
    reversal = Entry(EntryKind.ADJUSTMENT, order.id, at,
                     tuple(Posting(p.account, -p.amount, f"refund {refund_id} failed: {p.memo}") for p in entry.postings))  # fmt: skip
    ledger_service.record(session=session, workspace_id=order.workspace_id, entry=reversal,
                          tags=_tags(session, order) | {"provider_refund": refund_id, "reverses_refund": refund_id},
                          reference=f"{refund_id}:failed")  # fmt: skip
    # the refund that ended access (the one that made the order fully refunded) need not be the one that failed
    ended = next((t.get("ended_access") for e, t in reversed(every) if e.kind is EntryKind.REFUND
                  and t.get("ended_access")), None) if order.status == "refunded" else None  # fmt: skip
    order.refunded = max(order.refunded - returned, 0)
    order.status = "partially_refunded" if order.refunded else "paid"
    order.updated_at = at
    if isinstance(ended, str):
        _restore_access(session, order, ended, actor)
    buyers.event(session, order.workspace_id, order.buyer_id, "Order Refund Failed",
                 {"order_id": order.id, "amount_minor": returned, "currency": order.currency, "refund_id": refund_id},
                 f"{order.id}-refund-failed-{refund_id}")  # fmt: skip
    return "refund_reversed"


def _restore_access(session: Session, order: Order, why: str, actor: str) -> None:
    """Give back what a full refund ended (``refund_order``): the order's grants it revoked, its components it
    canceled before delivery. A subscription the refund canceled stays canceled (a canceled subscription does
    not restart): its grants are not the order's."""
    ws = order.workspace_id
    for e in entitlements_service.list_for_buyer(session=session, workspace_id=ws, buyer_id=order.buyer_id):
        if e.source == order.id and e.status == "revoked" and e.reason == why:
            entitlements_service.grant(session=session, workspace_id=ws, buyer_id=e.buyer_id, component=e.component,
                                       ref=e.ref, source=e.source, quantity=e.quantity,
                                       access_ends_at=e.access_ends_at, actor=actor)  # fmt: skip
    for task in repository.tasks(session, ws, order.id):
        if task.status == "canceled" and task.last_error == why:
            fulfilment.retry_task(session=session, workspace_id=ws, order_id=order.id, component=task.component,
                                  ref=task.ref)  # fmt: skip


# -- due work: a drop hold's expiry (handler in checkout/tasks.py) -----------------------------------


def hold_expiry_due(*, session: Session, workspace_id: str, order_id: str, now: datetime) -> datetime | None:
    """The drop units an unpaid order still holds past their expiry go back to stock and to the buyer's
    allowance, as the lazy release at the next checkout does. The order stays pending: a payment that still
    arrives takes the units again if any are left, or is refused ``sold_out_after_expiry`` (``mark_paid``).
    Returns when a hold still running expires."""
    order = repository.order_for_update(session, workspace_id, order_id)  # serialised with its payment
    if order is None:
        return None
    later: datetime | None = None
    for hold in repository.holds(session, workspace_id, order_id):
        if hold.status != "held":
            continue
        if hold.expires_at <= now:
            offers_service.stock_changed(session=session, workspace_id=workspace_id, offer_key=hold.offer_key)
            repository.expire_hold(
                session, workspace_id, hold.id, hold.offer_key, hold.quantity, hold.buyer_id
            )
        else:
            later = min(later or hold.expires_at, hold.expires_at)
    return later


def schedule_missing_holds(*, session: Session, limit: int) -> int:
    """Enqueue the expiry of holds whose job is missing (see ``sweep_due``); returns how many."""
    holds = repository.unscheduled_holds(session, kind=due.HOLD_EXPIRY, limit=limit)
    for hold in holds:
        due.at(session, due.HOLD_EXPIRY, hold.order_id, hold.workspace_id, hold.expires_at)
    return len(holds)
