"""Checkout, orders, drop holds, payments (manual and Stripe webhooks), refunds, subscriptions, fulfilment.

Orders are created ``pending`` with a priced quote; a drop's units are held for a short time with a
conditional UPDATE (sold + held never exceeds the stock, on SQLite and PostgreSQL alike). Payment —
marked by an admin (manual provider) or reported by a verified webhook — is idempotent: the order becomes
``paid``, its hold converts to a sale, the ledger gets a balanced sale entry, the buyer record gets an
"Order Completed" event (features, personas and decision rewards follow), and one fulfilment task per
component is queued with its job. Jobs run after commit, each on its own, retried with backoff, so a failing
component never fails the order nor blocks the others.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any, Literal

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from offerloop.assembly import service as assembly_service
from offerloop.checkout import due, repository
from offerloop.checkout.exceptions import CheckoutError, OrderNotFound, SoldOut
from offerloop.checkout.stripe_provider import (
    CheckoutLine,
    PaymentEvent,
    StripeProvider,
    WebhookEvent,
    normalize,
)
from offerloop.core.clock import utcnow
from offerloop.core.ids import new_id
from offerloop.core.money import Money
from offerloop.entitlements import service as entitlements_service
from offerloop.events import service as event_service
from offerloop.identity import service as identity_service
from offerloop.identity.exceptions import BuyerNotFound
from offerloop.jobs import queue, runner
from offerloop.ledger import service as ledger_service
from offerloop.ledger.postings import Account, balance, refund_entry, sale_entry
from offerloop.models import FulfilmentTask, Order, StockHold
from offerloop.models import PaymentEvent as PaymentEventRow
from offerloop.models import Subscription as SubscriptionRow
from offerloop.offers import service as offers_service
from offerloop.offers.catalog import Catalog, Offer, price_of
from offerloop.offers.exceptions import NotForSale, PricingError
from offerloop.offers.subscriptions import (
    Cancel,
    Downgrade,
    Effect,
    Pause,
    PaymentFailed,
    PaymentSucceeded,
    Renew,
    Resume,
    Start,
    Subscription,
    Upgrade,
    apply,
    new_subscription,
)
from offerloop.personas import service as persona_service

HOLD_MINUTES = 15
MAX_ATTEMPTS = 5


# -- buyers and events -------------------------------------------------------------------------------


def _ingest(session: Session, workspace_id: str, messages: list[dict[str, Any]]) -> None:
    batch = event_service.prepare_batch(messages, received_at=utcnow(), max_event_bytes=64 * 1024)
    result = event_service.ingest(session=session, workspace_id=workspace_id, batch=batch)
    refused = [i for i in result.items if i.status == "quarantined"]
    if refused:
        raise CheckoutError(f"the buyer event was refused: {refused[0].message}", code="event_refused")


def buyer_for(
    *, session: Session, workspace_id: str, user_id: str | None = None, anonymous_id: str | None = None,
    email: str | None = None,
) -> str:  # fmt: skip
    """The buyer behind the identifiers, identified now if we never saw them (an identify event)."""
    given = {k: v for k, v in {"user_id": user_id, "anonymous_id": anonymous_id, "email": email}.items() if v}
    if not given:
        raise CheckoutError("give user_id, anonymous_id or email", code="buyer_required")
    known = _known_buyer(session, workspace_id, given)
    if known is not None:
        return known
    message: dict[str, Any] = {"type": "identify", "traits": {"email": email} if email else {}}
    if user_id:
        message["userId"] = user_id
    if anonymous_id:
        message["anonymousId"] = anonymous_id
    if not user_id and not anonymous_id:
        message["userId"] = email
    message["messageId"] = new_id("msg")
    _ingest(session, workspace_id, [message])  # the record of it, for the consumers like any identify
    # Identities are written through the driver (COPY on PostgreSQL): its own IntegrityError, not SQLAlchemy's.
    duplicate = (IntegrityError, session.get_bind().dialect.loaded_dbapi.IntegrityError)
    try:
        with session.begin_nested():
            return identity_service.identify_now(
                session=session, workspace_id=workspace_id, message_id=message["messageId"],
                user_id=message.get("userId"), anonymous_id=anonymous_id, traits=message["traits"], at=utcnow(),
            )  # fmt: skip
    except duplicate:
        # The identity consumer (or another request) stored these identifiers first and has committed: that
        # buyer is this one. Each statement reads what is committed, so the lookup sees it now.
        known = _known_buyer(session, workspace_id, given)
        if known is None:
            raise
        return known


def _known_buyer(session: Session, workspace_id: str, given: dict[str, str]) -> str | None:
    for kind, value in given.items():
        try:
            return identity_service.lookup(session=session, workspace_id=workspace_id, **{kind: value}).id
        except BuyerNotFound:
            continue
    return None


def _buyer_message(session: Session, workspace_id: str, buyer_id: str) -> dict[str, Any]:
    buyer = identity_service.get_buyer(session=session, workspace_id=workspace_id, buyer_id=buyer_id)
    if buyer.user_id:
        return {"userId": buyer.user_id}
    anonymous = next((i.value for i in buyer.identities if i.kind == "anonymous_id"), None)
    if anonymous:
        return {"anonymousId": anonymous}
    email = next((i.value for i in buyer.identities if i.kind == "email"), None)
    return {"userId": email or buyer_id}


def _event(
    session: Session,
    order_or_ws: Order | str,
    buyer_id: str,
    name: str,
    props: dict[str, Any],
    message_id: str,
) -> None:
    workspace_id = order_or_ws if isinstance(order_or_ws, str) else order_or_ws.workspace_id
    _ingest(session, workspace_id, [_track(session, workspace_id, buyer_id, name, props, message_id)])


def _track(
    session: Session, workspace_id: str, buyer_id: str, name: str, props: dict[str, Any], message_id: str
) -> dict[str, Any]:
    """A track message on the buyer's record (under the identifier ingestion resolves back to them)."""
    return {"type": "track", "event": name, "messageId": message_id, "properties": props,
            **_buyer_message(session, workspace_id, buyer_id)}  # fmt: skip


# -- checkout --------------------------------------------------------------------------------------


def _order(session: Session, workspace_id: str, order_id: str, *, lock: bool = False) -> Order:
    order = (repository.order_for_update if lock else repository.order)(session, workspace_id, order_id)
    if order is None:
        raise OrderNotFound(f"order {order_id} does not exist")
    return order


def order_read(order: Order) -> dict[str, Any]:
    return {
        "id": order.id, "buyer_id": order.buyer_id, "status": order.status, "provider": order.provider,
        "currency": order.currency, "subtotal": order.subtotal, "discount": order.discount, "tax": order.tax,
        "total": order.total, "refunded": order.refunded, "coupon": order.coupon, "lines": order.lines,
        "decision_id": order.decision_id, "checkout_url": order.checkout_url, "provider_ref": order.provider_ref,
        "formatted_total": Money(order.currency, order.total).format(),
        "created_at": order.created_at.isoformat(), "paid_at": order.paid_at.isoformat() if order.paid_at else None,
    }  # fmt: skip


def begin(
    *, session: Session, workspace_id: str, buyer_id: str, offer_key: str, currency: str, provider: str = "manual",
    coupon: str | None = None, bumps: Sequence[str] = (), quantity: int = 1, decision_id: str | None = None,
    tax_percent: str = "0", now: datetime | None = None,
) -> dict[str, Any]:  # fmt: skip
    """A pending order with its quote; a drop's units are held for HOLD_MINUTES (SoldOut when none are left)."""
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
    quote = price_of(catalog, offer_key, currency, coupon=coupon, bumps=bumps, now=now, quantity=quantity,
                     coupon_redemptions=redemptions, buyer_redeemed_coupon=mine > 0)  # fmt: skip
    lines = [_due_now(catalog, line.to_dict()) for line in quote.lines]
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
    due.at(session, due.HOLD_EXPIRY, order.id, workspace_id, expires)


def attach_session(
    *, session: Session, workspace_id: str, order_id: str, provider_ref: str, url: str | None
) -> dict[str, Any]:
    order = _order(session, workspace_id, order_id)
    order.provider_ref, order.checkout_url, order.updated_at = provider_ref, url, utcnow()
    return order_read(order)


def cancel_pending(*, session: Session, workspace_id: str, order_id: str, reason: str) -> dict[str, Any]:
    """A pending order that will not be paid: its holds go back to stock."""
    order = _order(session, workspace_id, order_id, lock=True)
    if order.status not in ("pending", "canceled"):  # a paid order is refunded, never silently "canceled"
        raise CheckoutError(f"order {order.id} is {order.status}: only a pending order can be canceled "
                            "(refund a paid one)", code="not_cancelable")  # fmt: skip
    if order.status == "pending":
        repository.release_holds(session, workspace_id, order.id, "released")
        _release_coupon(session, order)
        order.status, order.updated_at = "canceled", utcnow()
    return order_read(order)


# -- payment ---------------------------------------------------------------------------------------


def mark_paid(
    *, session: Session, workspace_id: str, order_id: str, actor: str, processor_fee: int | None = None,
    provider_ref: str | None = None, paid_at: datetime | None = None, platform_fee_percent: str = "0",
    subscription_ref: str | None = None, book_sale: bool = True,
) -> dict[str, Any]:  # fmt: skip
    """Record payment (idempotent). A hold that expired before payment is honoured if stock allows it.
    ``book_sale=False``: nothing was charged (a plan's trial started); the first real charge books."""
    order = _order(session, workspace_id, order_id, lock=True)
    if order.status != "pending":
        return order_read(order)  # paid already (a webhook delivered twice, or a second admin click)
    at = paid_at or utcnow()
    for hold in repository.holds(session, workspace_id, order.id):
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
    if book_sale:
        _book_sale(session, order, processor_fee, at)
    catalog = offers_service.catalog_for(session=session, workspace_id=workspace_id)
    completed = []
    for line in order.lines:
        offer = catalog.offer(line["offer_key"])
        if offer is None:
            continue
        source = order.id
        if offer.recurring:
            source = _start_subscription(session, order, offer, at, subscription_ref)
        for spec in _components(catalog, offer):
            _queue(session, order, spec, source, at)
        completed.append(_track(session, workspace_id, order.buyer_id, "Order Completed", {
            "order_id": order.id, "offer_key": offer.key, "offer_action": f"{offers_service.ACTION_PREFIX}{offer.key}",
            "total_minor": line["total"], "currency": order.currency, "revenue": Money(order.currency, line["total"]).format(),
            "kind": offer.kind,
        }, f"{order.id}-{offer.key}-completed"))  # fmt: skip
    if completed:
        _ingest(session, workspace_id, completed)  # one batch for the whole order
    repository.flush(session)
    return order_read(order)


def _book_sale(session: Session, order: Order, processor_fee: int | None, at: datetime) -> None:
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


def _components(catalog: Catalog, offer: Offer) -> list[dict[str, Any]]:
    specs = [c.to_dict() for c in offer.components]
    for key in offer.includes:  # a bundle grants what each included offer grants
        included = catalog.offer(key)
        if included is not None:
            specs.extend(c.to_dict() for c in included.components)
    if (
        offer.kind == "micro_offer"
        and offer.deliverable_policy
        and not any(s["component"] == "deliverable" for s in specs)
    ):
        specs.append(
            {
                "component": "deliverable",
                "ref": offer.deliverable_policy,
                "quantity": None,
                "access_days": None,
            }
        )
    return specs


FULFIL_KIND = "checkout.fulfil"


def _queue(session: Session, order: Order, spec: dict[str, Any], source: str, at: datetime) -> None:
    """One fulfilment task per component, driven by its job (kind ``checkout.fulfil``, key the task id)."""
    if repository.task(session, order.workspace_id, order.id, spec["component"], spec["ref"]) is not None:
        return
    task = FulfilmentTask(
        workspace_id=order.workspace_id, order_id=order.id, buyer_id=order.buyer_id, component=spec["component"],
        ref=spec["ref"], spec={**spec, "source": source}, status="pending", attempts=0, next_attempt_at=at,
    )  # fmt: skip
    repository.add(session, task)
    repository.flush(session)  # the job is keyed by the task's id
    queue.enqueue(session, kind=FULFIL_KIND, key=str(task.id), workspace_id=order.workspace_id, run_at=at)


# -- fulfilment (after commit, one task at a time) -----------------------------------------------------


def fulfil(*, session: Session, task: FulfilmentTask, now: datetime) -> dict[str, Any]:
    """Deliver one component: entitlements for access, a personalized deliverable for "deliverable".

    The order (and the subscription a grant comes from) is read under its row lock, as refunds and
    cancellations take it: a task of a refunded or canceled order, or of a canceled subscription, is
    skipped (``{"skipped": why}``), whichever of the payment, the refund and this task ran first. A plan's
    quota is not granted during its trial: quotas start with the first paid period (``quota_reset``)."""
    spec = task.spec
    order = repository.order_for_update(session, task.workspace_id, task.order_id)
    if order is None or order.status not in ("paid", "partially_refunded"):
        return {"skipped": f"order is {order.status if order else 'gone'}"}
    source = str(spec.get("source") or task.order_id)
    sub = (
        repository.subscription_for_update(session, task.workspace_id, source) if source != order.id else None
    )
    if sub is not None and sub.status == "canceled":
        return {"skipped": "subscription is canceled"}
    if identity_service.get_buyer(
        session=session, workspace_id=task.workspace_id, buyer_id=task.buyer_id
    ).deleted:
        return {"skipped": "buyer is erased"}  # paid after the erasure: booked, but delivered to no one
    if sub is not None and sub.status == "trialing" and spec.get("quantity") is not None:
        return {"deferred": "quotas start with the first paid period"}
    if task.component == "deliverable":
        artifact = assembly_service.request_artifact(session=session, workspace_id=task.workspace_id, buyer_id=task.buyer_id,
                                                     policy_id=task.ref, trigger=f"order:{task.order_id}",
                                                     offer_value_minor=order.total)  # fmt: skip
        return {"artifact_id": artifact["id"]}
    ends = now + timedelta(days=int(spec["access_days"])) if spec.get("access_days") else None
    if sub is not None:  # access follows the subscription (a paused or ending one has an access end)
        ends = _sub_access_end(sub, ends)
    granted = entitlements_service.grant(
        session=session, workspace_id=task.workspace_id, buyer_id=task.buyer_id, component=task.component, ref=task.ref,
        source=source, access_ends_at=ends, quantity=spec.get("quantity"), actor="fulfilment",
    )  # fmt: skip
    return {"entitlement_id": granted.id}


def run_task(*, session: Session, workspace_id: str, task_id: int, now: datetime) -> FulfilmentTask | None:
    """The fulfilment job's work, in the job's transaction: deliver a pending task once (done, or canceled
    when its order no longer wants it). A task no longer pending (delivered, canceled) is left alone."""
    # Not locked here: `fulfil` locks the order first, in the order refunds take their locks.
    task = repository.task_by_id(session, workspace_id, task_id)
    if task is None or task.status != "pending":
        return None
    task.result = fulfil(session=session, task=task, now=now)
    task.status = "canceled" if "skipped" in task.result else "done"
    task.done_at, task.attempts = now, task.attempts + 1
    return task


def task_failed(
    *, session: Session, workspace_id: str, task_id: int, attempts: int, error: str, retry_at: datetime,
    gave_up: bool,
) -> None:  # fmt: skip
    """The task mirrors its job's failure: attempts, the error, the next try, or failed when it gave up."""
    task = repository.task_by_id(session, workspace_id, task_id, lock=True)
    if task is None or task.status != "pending":
        return
    task.attempts, task.last_error = attempts, error[:2000]
    if gave_up:
        task.status = "failed"
    else:
        task.next_attempt_at = retry_at


def run_fulfilment(*, db: Any, now: datetime | None = None, limit: int = 100) -> list[tuple[str, str, str]]:
    """Run the fulfilment jobs due now in this thread (tests, CLI): (order, component, status) of each task
    run, status done, canceled, retrying or failed. Retries and giving up come from the job mechanism."""
    from offerloop.checkout import tasks  # noqa: F401  (registers the fulfilment job; it imports this module)

    done: list[tuple[str, str, str]] = []
    owner = runner.owner_id(":fulfil")
    while len(done) < limit and (
        ran := runner.run_due(db, owner=owner, now=now, only=(FULFIL_KIND,), deps={"fulfilled": done})
    ):
        for r in ran:
            if r.status in ("retrying", "parked"):
                with db.read() as session:
                    task = repository.task_by_id(session, str(r.workspace_id), int(r.key))
                    if task is not None:
                        status = "retrying" if r.status == "retrying" else "failed"
                        done.append((task.order_id, task.component, status))
    return done


def get_order(*, session: Session, workspace_id: str, order_id: str) -> dict[str, Any]:
    """The order and the state of each component's fulfilment."""
    order = _order(session, workspace_id, order_id)
    fulfilment = [{"component": t.component, "ref": t.ref, "status": t.status, "attempts": t.attempts,
                   "last_error": t.last_error, "result": t.result} for t in repository.tasks(session, workspace_id, order_id)]  # fmt: skip
    upsells: list[dict[str, Any]] = []
    if order.status in ("paid", "partially_refunded"):  # what to offer next, once this is paid
        upsells = offers_service.upsells_for(session=session, workspace_id=workspace_id, buyer_id=order.buyer_id,
                                             offer_keys=[line["offer_key"] for line in order.lines], currency=order.currency)  # fmt: skip
    return {**order_read(order), "fulfilment": fulfilment, "upsells": upsells}


def retry_task(
    *, session: Session, workspace_id: str, order_id: str, component: str, ref: str
) -> dict[str, Any]:
    task = repository.task(session, workspace_id, order_id, component, ref)
    if task is None or task.workspace_id != workspace_id:
        raise OrderNotFound(f"no {component} {ref} task on order {order_id}")
    task.status, task.next_attempt_at, task.attempts = "pending", utcnow(), 0
    queue.enqueue(
        session, kind=FULFIL_KIND, key=str(task.id), workspace_id=workspace_id, run_at=task.next_attempt_at
    )
    return {"component": component, "ref": ref, "status": task.status}


# -- refunds ---------------------------------------------------------------------------------------


def refund(
    *, session: Session, workspace_id: str, order_id: str, amount: int | None = None, actor: str,
    at: datetime | None = None, reason: str | None = None,
) -> dict[str, Any]:  # fmt: skip
    """Full (amount None) or partial refund: a balanced ledger entry, the buyer event, and on a full refund
    the order's access ended: its entitlements revoked, its undelivered tasks canceled, and a subscription
    it paid for canceled with its grants."""
    order = _order(session, workspace_id, order_id, lock=True)
    _refund(session, order, amount, actor=actor, at=at or utcnow(), reason=reason)
    return order_read(order)


def _refund(
    session: Session, order: Order, amount: int | None, *, actor: str, at: datetime, reason: str | None,
    tax_part: int | None = None, end_access: bool = True, status: str | None = None,
) -> None:  # fmt: skip
    """The refund itself. The platform fee is returned in proportion to the refund (the platform keeps no fee
    on money the creator gives back); the processor's fee is not (processors keep it). ``end_access`` False:
    a plan-change credit, which never ends the subscription it belongs to."""
    workspace_id = order.workspace_id
    if order.status not in ("paid", "partially_refunded"):
        raise CheckoutError(
            f"order {order.id} is {order.status}: only paid orders can be refunded", code="not_refundable"
        )
    if order.total <= 0:
        raise CheckoutError(
            f"order {order.id} charged nothing: there is nothing to refund", code="not_refundable"
        )
    prior = [
        e for e, _ in ledger_service.entries(session=session, workspace_id=workspace_id, order_id=order.id)
    ]
    left = ledger_service.refundable(session=session, workspace_id=workspace_id, order_id=order.id)
    value = left if amount is None else Money(order.currency, amount)
    if value.amount <= 0 or value.amount > left.amount:
        raise CheckoutError(
            f"refund must be between 1 and {left.amount} ({left.format()})", code="invalid_refund_amount"
        )
    booked = balance(prior, currency=order.currency)
    fee_left = booked[Account.PLATFORM_FEES]
    fee_back = fee_left if value == left or fee_left.amount <= 0 else (
        fee_left.allocate([value.amount, left.amount - value.amount])[0])  # fmt: skip
    # a charge that never went through (an unpaid renewal) cost no processor fee either
    processor_back = booked[Account.PROCESSOR_FEES] if status == "unpaid" else None
    entry = refund_entry(order.id, prior=prior, amount=value, occurred_at=at, platform_fee_returned=fee_back,
                         fee_returned=processor_back,
                         tax_part=None if tax_part is None or value == left else Money(order.currency, tax_part))  # fmt: skip
    ledger_service.record(session=session, workspace_id=workspace_id, entry=entry, tags=_tags(session, order))
    order.refunded += value.amount
    order.status = status or ("refunded" if order.refunded >= order.total else "partially_refunded")
    order.updated_at = at
    if order.status in ("refunded", "unpaid"):
        why = reason or "order refunded"
        repository.cancel_pending_tasks(session, workspace_id, order.id, why)
        entitlements_service.revoke_source(session=session, workspace_id=workspace_id, source=order.id,
                                           reason=why, actor=actor)  # fmt: skip
        if end_access and order.status == "refunded":
            _end_subscriptions_of(session, order, at, actor, why)
    if order.status != "unpaid":  # a charge that failed is no refund to the buyer
        _event(session, order, order.buyer_id, "Order Refunded",
               {"order_id": order.id, "amount_minor": value.amount, "currency": order.currency, "full": order.status == "refunded"},
               f"{order.id}-refund-{order.refunded}")  # fmt: skip


def _end_subscriptions_of(session: Session, order: Order, at: datetime, actor: str, reason: str) -> None:
    """A fully refunded order that started or renewed a subscription: the subscription is canceled now and
    everything it granted is revoked."""
    subs = {line.get("subscription_id") for line in order.lines} - {None}
    for row in repository.subscriptions_of(session, order.workspace_id, order.buyer_id):
        if row.order_id == order.id or row.id in subs:
            if row.status not in ("canceled", "incomplete"):
                subscription_action(session=session, workspace_id=order.workspace_id, subscription_id=row.id,
                                    action="cancel", at_period_end=False, at=at, actor=actor)  # fmt: skip
            entitlements_service.revoke_source(session=session, workspace_id=order.workspace_id, source=row.id,
                                               reason=reason, actor=actor)  # fmt: skip


# -- subscriptions ---------------------------------------------------------------------------------


def _sub_to_json(sub: Subscription) -> dict[str, Any]:
    data: dict[str, Any] = {}
    for f in dataclasses.fields(sub):
        v = getattr(sub, f.name)
        if isinstance(v, datetime):
            v = v.isoformat()
        elif isinstance(v, Mapping):
            v = dict(v)
        elif isinstance(v, tuple):
            v = list(v)
        data[f.name] = v
    return data


def _sub_from_json(data: Mapping[str, Any]) -> Subscription:
    values = dict(data)
    for f in dataclasses.fields(Subscription):
        v = values.get(f.name)
        if isinstance(v, str) and "datetime" in str(f.type):
            values[f.name] = datetime.fromisoformat(v)
    values["retry_days"] = tuple(values.get("retry_days") or ())
    return Subscription(**values)


def _start_subscription(
    session: Session, order: Order, offer: Offer, at: datetime, provider_ref: str | None
) -> str:
    sub = new_subscription(offer, order.currency)
    sub, effects = apply(sub, Start(trial_days=offer.trial_days), at=at)
    if sub.state != "trialing":
        sub, more = apply(sub, PaymentSucceeded(), at=at)
        effects += more
    row = SubscriptionRow(id=new_id("sub"), workspace_id=order.workspace_id, buyer_id=order.buyer_id, order_id=order.id,
                          offer_key=offer.key, status=sub.state, state=_sub_to_json(sub),
                          provider_subscription_id=provider_ref, created_at=at, updated_at=at)  # fmt: skip
    repository.add(session, row)
    _event(session, order, order.buyer_id, "Subscription Started",
           {"subscription_id": row.id, "plan": offer.key, "state": sub.state, "order_id": order.id}, f"{row.id}-started")  # fmt: skip
    _schedule(session, row, order)
    return row.id


def subscription_read(row: SubscriptionRow) -> dict[str, Any]:
    return {"id": row.id, "buyer_id": row.buyer_id, "order_id": row.order_id, "offer_key": row.offer_key,
            "status": row.status, "state": row.state, "provider_subscription_id": row.provider_subscription_id}  # fmt: skip


def _sub_access_end(row: SubscriptionRow, ends: datetime | None) -> datetime | None:
    """When access granted now from the subscription ends: at the pause of a paused one."""
    if row.status == "paused":
        paused = _sub_from_json(row.state).paused_at
        return paused if paused is not None else ends
    return ends


def get_subscription(
    *, session: Session, workspace_id: str, subscription_id: str, lock: bool = False
) -> SubscriptionRow:
    find = repository.subscription_for_update if lock else repository.subscription
    row = find(session, workspace_id, subscription_id)
    if row is None:
        raise OrderNotFound(f"subscription {subscription_id} does not exist", code="subscription_not_found")
    return row


def subscription_action(
    *, session: Session, workspace_id: str, subscription_id: str, action: str, plan: str | None = None,
    at_period_end: bool = True, at: datetime | None = None, actor: str = "api",
) -> dict[str, Any]:  # fmt: skip
    """Drive the lifecycle: renew, payment_failed, payment_succeeded, pause, resume, cancel, change_plan.
    Every step is an event on the buyer record; charges and credits go to the ledger; access follows."""
    row = get_subscription(
        session=session, workspace_id=workspace_id, subscription_id=subscription_id, lock=True
    )
    at = at or utcnow()
    sub = _sub_from_json(row.state)
    event: Any
    if action == "renew":
        event = Renew()
    elif action == "payment_failed":
        event = PaymentFailed()
    elif action == "payment_succeeded":
        event = PaymentSucceeded()
    elif action == "pause":
        event = Pause()
    elif action == "resume":
        event = Resume()
    elif action == "cancel":
        event = Cancel(at_period_end=at_period_end)
    elif action == "change_plan":
        if not plan:
            raise CheckoutError("change_plan needs the new plan's offer key", code="plan_required")
        target = offers_service.get_offer(session=session, workspace_id=workspace_id, key=plan)
        price = target.price(sub.currency)
        if not target.recurring or price is None:
            raise CheckoutError(f"{plan} is not a plan offered in {sub.currency}", code="invalid_plan")
        kind = Upgrade if price.amount >= sub.amount else Downgrade
        event = kind(plan=plan, amount=price.amount, quotas=dict(target.quotas), interval=target.interval)
    else:
        raise CheckoutError(f"unknown action {action!r}", code="invalid_action")
    before, old_plan, period = sub.state, sub.plan, (sub.current_period_start, sub.current_period_end)
    sub, effects = apply(sub, event, at=at)
    row.state, row.status, row.updated_at = _sub_to_json(sub), sub.state, at
    if action == "change_plan":
        row.offer_key = sub.plan
    _effects(session, row, effects, at, actor)
    if action == "change_plan":
        _switch_grants(session, row, old_plan, sub.plan, actor)
    if before == "active" and sub.state in ("past_due", "canceled") and action == "payment_failed":
        _renewal_unpaid(session, row, period, at, actor)
    elif before == "past_due" and sub.state == "active":
        _renewal_recovered(session, row, at)
    name = {"renew": "Subscription Renewed", "payment_failed": "Payment Failed", "payment_succeeded": "Payment Succeeded",
            "pause": "Subscription Paused", "resume": "Subscription Resumed", "cancel": "Subscription Canceled",
            "change_plan": "Subscription Changed"}[action]  # fmt: skip
    _event(session, workspace_id, row.buyer_id, name,
           {"subscription_id": row.id, "plan": sub.plan, "from": before, "to": sub.state},
           f"{row.id}-{action}-{int(at.timestamp() * 1000)}")  # fmt: skip
    _schedule(session, row)
    return subscription_read(row)


def _renewal_order(session: Session, row: SubscriptionRow, amount: Money, at: datetime, reason: str) -> None:
    """A renewal (or a plan change's charge) is an order of its own, paid, on the buyer's record and ledger,
    booked by the same rule as a checkout: tax and platform fee at the rates of the subscription's order."""
    first = repository.order(session, row.workspace_id, row.order_id)
    tax_percent = first.tax_percent if first else "0"
    tax = amount.percent(tax_percent)
    order = Order(
        id=new_id("ord"), workspace_id=row.workspace_id, buyer_id=row.buyer_id, status="paid",
        provider=first.provider if first else "manual", currency=amount.currency, subtotal=amount.amount, discount=0,
        tax=tax.amount, total=amount.amount + tax.amount, refunded=0, coupon=None, created_at=at, paid_at=at,
        updated_at=at, tax_percent=tax_percent, platform_fee_percent=first.platform_fee_percent if first else "0",
        lines=[{"offer_key": row.offer_key, "title": row.offer_key, "role": "offer", "unit_amount": amount.amount,
                "quantity": 1, "subtotal": amount.amount, "discount": 0, "total": amount.amount, "subscription_id": row.id,
                "reason": reason}],
    )  # fmt: skip
    repository.add(session, order)
    repository.flush(session)
    _book_sale(session, order, None, at)


def _orders_of_subscription(session: Session, row: SubscriptionRow) -> list[Order]:
    """The subscription's orders, newest first: the checkout that started it and every charge since."""
    mine = [o for o in repository.orders_of(session, row.workspace_id, row.buyer_id)
            if o.id == row.order_id or any(line.get("subscription_id") == row.id for line in o.lines)]  # fmt: skip
    return sorted(mine, key=lambda o: (o.created_at, o.id), reverse=True)


def _renewal_unpaid(
    session: Session,
    row: SubscriptionRow,
    period: tuple[datetime | None, datetime | None],
    at: datetime,
    actor: str,
) -> None:
    """The charge of the current period failed: its renewal order is booked back (no revenue for a period
    nobody paid) and marked unpaid; a later successful payment books it again. A failure at or after the
    period's end is the next period's charge, which was never booked: nothing to take back."""
    start, end = period
    if start is None or end is None or not start <= at < end:
        return
    for order in _orders_of_subscription(session, row):
        renewal = any(line.get("reason") in ("renewal", "first_period") for line in order.lines)
        if renewal and order.status == "paid" and order.refunded == 0 and order.created_at >= start:
            _refund(session, order, None, actor=actor, at=at, reason="renewal unpaid", end_access=False,
                    status="unpaid")  # fmt: skip
            return


def _renewal_recovered(session: Session, row: SubscriptionRow, at: datetime) -> None:
    for order in _orders_of_subscription(session, row):
        if order.status == "unpaid":
            order.status, order.refunded, order.paid_at, order.updated_at = "paid", 0, at, at
            _book_sale(session, order, None, at)
            return


def _credit(session: Session, row: SubscriptionRow, amount: Money, at: datetime, actor: str) -> None:
    """Unused time given back on a downgrade, by the rule charges follow: the credit plus its tax, with the
    platform fee returned in proportion, taken from the subscription's paid orders (newest first)."""
    first = repository.order(session, row.workspace_id, row.order_id)
    tax = amount.percent(first.tax_percent if first else "0")
    want, tax_want = amount.amount + tax.amount, tax.amount
    for order in _orders_of_subscription(session, row):
        if want <= 0:
            return
        if order.status not in ("paid", "partially_refunded") or order.total <= 0:
            continue
        left = ledger_service.refundable(
            session=session, workspace_id=row.workspace_id, order_id=order.id
        ).amount
        part = min(want, left)
        if part <= 0:
            continue
        part_tax = min(tax_want, tax_want * part // want)
        _refund(session, order, part, actor=actor, at=at, reason="plan downgraded: credit for unused time",
                tax_part=part_tax, end_access=False)  # fmt: skip
        want, tax_want = want - part, tax_want - part_tax


def _switch_grants(session: Session, row: SubscriptionRow, old_key: str, new_key: str, actor: str) -> None:
    """A plan change changes access: the old plan's components the new one lacks are revoked, the new plan's
    are granted (its quotas only once paid periods run: not during a trial)."""
    if old_key == new_key:
        return
    old = offers_service.get_offer(session=session, workspace_id=row.workspace_id, key=old_key)
    new = offers_service.get_offer(session=session, workspace_id=row.workspace_id, key=new_key)
    keep = {(c.component, c.ref) for c in new.components}
    for c in old.components:
        if (c.component, c.ref) not in keep:
            entitlements_service.revoke_grant(session=session, workspace_id=row.workspace_id, buyer_id=row.buyer_id,
                                              component=c.component, ref=c.ref, source=row.id,
                                              reason=f"plan changed to {new_key}", actor=actor)  # fmt: skip
    ends = _sub_access_end(row, None)
    for c in new.components:
        if c.component == "deliverable" or (c.quantity is not None and row.status == "trialing"):
            continue
        entitlements_service.grant(session=session, workspace_id=row.workspace_id, buyer_id=row.buyer_id,
                                   component=c.component, ref=c.ref, source=row.id, quantity=c.quantity,
                                   access_ends_at=ends, actor=actor)  # fmt: skip


def _effects(session: Session, row: SubscriptionRow, effects: list[Effect], at: datetime, actor: str) -> None:
    for effect in effects:
        if effect.kind == "charge" and effect.amount is not None and effect.amount.amount > 0:
            _renewal_order(session, row, effect.amount, at, effect.reason or "renewal")
        elif effect.kind == "credit" and effect.amount is not None and effect.amount.amount > 0:
            _credit(session, row, effect.amount, at, actor)
        elif effect.kind == "access_end":
            entitlements_service.set_access_end(session=session, workspace_id=row.workspace_id, source=row.id,
                                                access_ends_at=effect.at or at, actor=actor)  # fmt: skip
        elif effect.kind == "access_start":
            entitlements_service.set_access_end(session=session, workspace_id=row.workspace_id, source=row.id,
                                                access_ends_at=None, actor=actor)  # fmt: skip
        elif effect.kind == "quota_reset":
            _reset_quotas(session, row, actor)


def _reset_quotas(session: Session, row: SubscriptionRow, actor: str) -> None:
    """A new period restores each quota component of the plan to its granted quantity (access end kept); the
    first paid period grants them (a trial has none)."""
    plan = offers_service.get_offer(session=session, workspace_id=row.workspace_id, key=row.offer_key)
    held = {(e.component, e.ref): e for e in entitlements_service.list_for_buyer(
        session=session, workspace_id=row.workspace_id, buyer_id=row.buyer_id) if e.source == row.id}  # fmt: skip
    for component in plan.components:
        current = held.get((component.component, component.ref))
        if component.quantity is not None and (current is None or current.status == "active"):
            entitlements_service.grant(session=session, workspace_id=row.workspace_id, buyer_id=row.buyer_id,
                                       component=component.component, ref=component.ref, source=row.id,
                                       quantity=component.quantity, actor=actor,
                                       access_ends_at=current.access_ends_at if current else _sub_access_end(row, None))  # fmt: skip


# -- due work: subscriptions and holds act by themselves at their time (handlers in checkout/tasks.py) ----

SCHEDULER = "schedule"  # the actor of due work on the buyer's record and the entitlements' history
SWEEP_LIMIT = 500  # rows per kind per sweep pass; a full pass runs again at once


def _collects_itself(session: Session, row: SubscriptionRow, first: Order | None = None) -> bool:
    """Whether we bill this subscription ourselves (manual provider). Stripe renews, retries and cancels its
    own subscriptions and reports each by webhook: acting on them too would charge a period twice."""
    first = first or repository.order(session, row.workspace_id, row.order_id)
    return first is not None and first.provider == "manual" and row.provider_subscription_id is None


def _period_due(row: SubscriptionRow) -> datetime | None:
    """When the period (or trial) of a trialing or active subscription ends; None for other states."""
    return _sub_from_json(row.state).current_period_end if row.status in ("trialing", "active") else None


def _retry_due(row: SubscriptionRow) -> datetime | None:
    return _sub_from_json(row.state).next_retry_at if row.status == "past_due" else None


def _schedule(session: Session, row: SubscriptionRow, first: Order | None = None) -> None:
    """Enqueue what the subscription's state makes due next (nothing for a Stripe subscription)."""
    if not _collects_itself(session, row, first):
        return
    for kind, when in ((due.PERIOD_END, _period_due(row)), (due.PAYMENT_RETRY, _retry_due(row))):
        if when is not None:
            due.at(session, kind, row.id, row.workspace_id, when)


def _due_subscription(session: Session, workspace_id: str, subscription_id: str) -> SubscriptionRow | None:
    row = repository.subscription_for_update(session, workspace_id, subscription_id)
    return row if row is not None and _collects_itself(session, row) else None


def period_end_due(
    *, session: Session, workspace_id: str, subscription_id: str, now: datetime
) -> datetime | None:
    """A manual subscription whose period (or trial) has ended by ``now`` takes the renew step, as the renew
    action does: a charged renewal order, a trial converted with its first charge, or the end of one set to
    cancel at period end (access ends at the period's end). Nothing when it is not due (renewed, canceled,
    paused, past due since). Returns when its period next ends."""
    row = _due_subscription(session, workspace_id, subscription_id)
    if row is None:
        return None
    end = _period_due(row)
    if end is not None and end <= now:  # on the period's end, as the state machine dates the charge
        subscription_action(session=session, workspace_id=workspace_id, subscription_id=row.id, action="renew",
                            at=end, actor=SCHEDULER)  # fmt: skip
    return _period_due(row)


def payment_retry_due(
    *, session: Session, workspace_id: str, subscription_id: str, now: datetime
) -> datetime | None:
    """A past-due manual subscription at its retry date. The manual provider has no card to charge again: the
    retry succeeds when the payment was recorded (``payment_succeeded``) before it, which made the subscription
    active and this a no-op; otherwise the attempt fails, scheduling the next retry or, after the last one,
    canceling the subscription and ending access (``offers.subscriptions``: +1, +3, +5 days). Returns when
    the next retry is due."""
    row = _due_subscription(session, workspace_id, subscription_id)
    if row is None:
        return None
    when = _retry_due(row)
    if when is not None and when <= now:
        subscription_action(session=session, workspace_id=workspace_id, subscription_id=row.id,
                            action="payment_failed", at=when, actor=SCHEDULER)  # fmt: skip
    return _retry_due(row)


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
            repository.expire_hold(
                session, workspace_id, hold.id, hold.offer_key, hold.quantity, hold.buyer_id
            )
        else:
            later = min(later or hold.expires_at, hold.expires_at)
    return later


def sweep_due(*, session: Session, limit: int = SWEEP_LIMIT) -> int:
    """Enqueue the due work whose job is missing (rows from before due work existed, an enqueue lost with a
    database restored from backup); idempotent. Returns how many objects it scheduled."""
    rows = repository.unscheduled_subscriptions(
        session, kind=due.PERIOD_END, statuses=("trialing", "active"), limit=limit
    ) + repository.unscheduled_subscriptions(
        session, kind=due.PAYMENT_RETRY, statuses=("past_due",), limit=limit
    )
    for row in rows:
        _schedule(session, row)
    holds = repository.unscheduled_holds(session, kind=due.HOLD_EXPIRY, limit=limit)
    for hold in holds:
        due.at(session, due.HOLD_EXPIRY, hold.order_id, hold.workspace_id, hold.expires_at)
    return len(rows) + len(holds)


# -- provider webhooks -----------------------------------------------------------------------------


def event_seen(*, session: Session, provider: str, provider_event_id: str) -> bool:
    return repository.payment_event(session, provider, provider_event_id) is not None


# -- Stripe: what a Checkout Session charges -------------------------------------------------------
#
# All the money math of a provider checkout lives here, not in the route: the lines Stripe is asked to
# charge sum to the order's total exactly (tax included, quantities exact), and a webhook pays an order
# only when the amount and currency it reports are what the order asked for.


@dataclasses.dataclass(frozen=True, slots=True)
class ProviderCharge:
    """What a Checkout Session charges for an order. ``lines`` sum to ``order.total`` exactly;
    ``due_now`` is what the buyer pays at checkout (0 when the subscription starts with a trial)."""

    mode: Literal["payment", "subscription"]
    lines: list[CheckoutLine]
    due_now: int
    trial_days: int | None


def _provider_line(line: Mapping[str, Any]) -> CheckoutLine:
    """One order line as a Checkout line. Stripe charges ``unit_amount x quantity``: when the line's total
    does not divide by its quantity (a coupon's share), it is sent as one unit at the exact total."""
    total, quantity = int(line["total"]), int(line["quantity"])
    out: CheckoutLine
    if quantity > 1 and total % quantity:
        out = {"name": f"{line['title']} x {quantity}", "unit_amount": total, "quantity": 1}
    else:
        out = {"name": line["title"], "unit_amount": total // quantity, "quantity": quantity}
    if line.get("interval"):
        out["interval"] = line["interval"]
    return out


def _trial_days(catalog: Catalog, lines: Sequence[Mapping[str, Any]]) -> int:
    days = [
        o.trial_days for line in lines if line.get("interval") and (o := catalog.offer(line["offer_key"]))
    ]
    return max(days, default=0)


def recurring_tax(amount: int, currency: str, tax_percent: str) -> int:
    """The tax Stripe adds to each recurring charge of ``amount`` (the recurring "Tax" line)."""
    return Money(currency, amount).percent(tax_percent).amount


def provider_charge(*, catalog: Catalog, order: Mapping[str, Any], tax_percent: str) -> ProviderCharge:
    """The Checkout lines for an order (see :class:`ProviderCharge`). Tax is a line of its own: recurring with
    the plan when the order is a subscription (Stripe then charges it on every renewal), one-time otherwise."""
    cur, lines = order["currency"], list(order["lines"])
    recurring = [line for line in lines if line.get("interval")]
    one_time = [line for line in lines if not line.get("interval")]
    if any(line.get("discount") for line in recurring):
        raise CheckoutError(
            "a coupon on a plan would be charged on every renewal by Stripe: not supported with the Stripe provider",
            code="provider_unsupported",
        )
    trial = _trial_days(catalog, recurring)
    if trial and one_time:
        raise CheckoutError(
            "a plan with a trial cannot be combined with one-time items in one Stripe checkout",
            code="provider_unsupported",
        )
    # A plan with a trial is charged nothing at checkout (its order line totals 0): Stripe is given the price
    # it turns into (``after_trial``) and the trial's length, and charges both at the trial's end.
    out = [_provider_line({**line, "total": line.get("after_trial", line["total"])}) for line in lines]
    tax = int(order["tax"])
    r_tax = 0
    if recurring:
        r_total = sum(int(line.get("after_trial", line["total"])) for line in recurring)
        r_tax = recurring_tax(r_total, cur, tax_percent) if trial else (
            tax if not one_time else min(tax, recurring_tax(r_total, cur, tax_percent)))  # fmt: skip
    if r_tax:
        out.append({"name": "Tax", "unit_amount": r_tax, "quantity": 1, "interval": recurring[0]["interval"]})
    if tax - (0 if trial else r_tax):
        out.append({"name": "Tax", "unit_amount": tax - r_tax, "quantity": 1})
    charged = sum(line["unit_amount"] * line["quantity"] for line in out)
    if (0 if trial else charged) != order[
        "total"
    ]:  # an invariant: the lines are built from the order's own amounts
        raise CheckoutError(
            f"the checkout lines sum to {charged}, the order to {order['total']}", code="charge_mismatch"
        )
    return ProviderCharge(mode="subscription" if recurring else "payment", lines=out,
                          due_now=0 if trial else charged, trial_days=trial or None)  # fmt: skip


def checkout(
    *, db: Any, workspace_id: str, offer_key: str, currency: str, provider_name: str = "manual",
    provider: StripeProvider | None = None, user_id: str | None = None, anonymous_id: str | None = None,
    email: str | None = None, coupon: str | None = None, bumps: Sequence[str] = (), quantity: int = 1,
    decision_id: str | None = None, tax_percent: str = "0", success_url: str = "", cancel_url: str = "",
) -> dict[str, Any]:  # fmt: skip
    """The whole checkout: the buyer, a pending order with its quote, and for a provider the hosted session.

    The provider call happens outside any transaction (no lock held across the network); if it fails the
    order is canceled and its held units go back to stock."""
    if provider_name != "manual" and provider is None:
        raise CheckoutError(f"provider {provider_name} is not configured", code="provider_not_configured")
    with db.write() as session:
        buyer_id = buyer_for(session=session, workspace_id=workspace_id, user_id=user_id,
                             anonymous_id=anonymous_id, email=email)  # fmt: skip
        order = begin(
            session=session, workspace_id=workspace_id, buyer_id=buyer_id, offer_key=offer_key, currency=currency,
            provider=provider_name, coupon=coupon, bumps=bumps, quantity=quantity, decision_id=decision_id,
            tax_percent=tax_percent,
        )  # fmt: skip
        catalog = offers_service.catalog_for(session=session, workspace_id=workspace_id)
        charge = provider_charge(catalog=catalog, order=order, tax_percent=tax_percent) if provider else None
    if provider is None or charge is None:
        return order
    try:
        created = provider.create_checkout_session(
            order_id=order["id"], workspace_id=workspace_id, mode=charge.mode, currency=order["currency"],
            lines=charge.lines, success_url=success_url, cancel_url=cancel_url, customer_email=email,
            trial_days=charge.trial_days,
        )  # fmt: skip
    except Exception:
        with db.write() as session:
            cancel_pending(session=session, workspace_id=workspace_id, order_id=order["id"],
                           reason="provider refused the checkout")  # fmt: skip
        raise
    with db.write() as session:
        return attach_session(session=session, workspace_id=workspace_id, order_id=order["id"],
                              provider_ref=created.id, url=created.url)  # fmt: skip


# -- provider webhooks: applied once, checked against the order, reordering tolerated --------------------


@dataclasses.dataclass(frozen=True, slots=True)
class WebhookTerms:
    """The workspace's money settings a webhook needs: the platform's cut and the tax rate on renewals."""

    platform_fee_percent: str = "0"
    tax_percent: str = "0"


def handle_payment_event(
    *, session: Session, event: PaymentEvent, payload: Mapping[str, Any], terms: WebhookTerms | None = None
) -> str:
    """Apply a verified provider event once (by its id), whatever the delivery order. Returns the outcome,
    which is also stored with the event (``GET /v1/orders/{id}/payments``).

    An event that needs a subscription that does not exist yet (a renewal, a failure or an update delivered
    before the checkout's completion) is stored ``deferred`` and applied when the order is paid."""
    terms = terms or WebhookTerms()
    if repository.payment_event(session, event.provider, event.provider_event_id) is not None:
        return "duplicate"
    order = _event_order(session, event)
    outcome = "ignored_no_order"
    if order is not None:
        # One order's events apply one at a time: a checkout's completion and its first invoice arrive together.
        order = _order(session, order.workspace_id, order.id, lock=True)
        outcome = _apply_event(session, order, event, terms)
    if order is not None:  # an erased buyer's order: the event is kept, their personal data is not
        payload = identity_service.storable(
            session=session, workspace_id=order.workspace_id, buyer_id=order.buyer_id, value=payload
        )
    repository.add(session, PaymentEventRow(
        workspace_id=order.workspace_id if order else event.workspace_id, provider=event.provider,
        provider_event_id=event.provider_event_id, type=event.kind, order_id=order.id if order else event.order_id,
        payment_ref=(event.payment_intent_id or event.invoice_id or "")[:200] or None,
        occurred_at=event.occurred_at, received_at=utcnow(), outcome=outcome[:40], payload=dict(payload),
    ))  # fmt: skip
    repository.flush(session)
    if order is not None and outcome in ("paid", "trial_started"):
        _replay_deferred(session, order, terms)
    if order is not None and order.status != "pending":
        _adopt_unmatched(session, order, terms)
    return outcome


def _event_order(session: Session, event: PaymentEvent) -> Order | None:
    """The order an event is about: the one its payment (intent or invoice) paid, else its reference."""
    order = None
    for ref in (event.payment_intent_id, event.invoice_id):
        if order is None and ref:
            order = repository.order_for_webhook(session, event.workspace_id, None, ref)
    if order is None:
        order = repository.order_for_webhook(session, event.workspace_id, event.order_id, event.session_id)
    if order is None and event.subscription_id and event.workspace_id:
        row = repository.subscription_by_provider(session, event.workspace_id, event.subscription_id)
        order = repository.order(session, row.workspace_id, row.order_id) if row else None
    if order is not None and event.workspace_id and order.workspace_id != event.workspace_id:
        return None
    return order


def _replay_deferred(session: Session, order: Order, terms: WebhookTerms) -> None:
    """Apply, in the order they happened, the events that waited for this order to be paid."""
    for row in repository.deferred_payment_events(session, order.workspace_id, order.id):
        event = normalize(_stored_event(row.payload))
        if event is None:
            continue
        row.outcome = _apply_event(session, order, event, terms)[:40]
    repository.flush(session)


def _adopt_unmatched(session: Session, order: Order, terms: WebhookTerms) -> None:
    """Apply the events that named this order's payment before the order was known by it (a refund without
    order metadata that overtook the checkout's completion) instead of leaving them ignored."""
    if not order.provider_ref:
        return
    for row in repository.unmatched_payment_events(session, order.provider, order.provider_ref):
        if row.workspace_id not in (None, order.workspace_id):
            continue
        event = normalize(_stored_event(row.payload))
        if event is None:
            continue
        row.workspace_id, row.order_id = order.workspace_id, order.id
        row.outcome = _apply_event(session, order, event, terms)[:40]
    repository.flush(session)


def _stored_event(payload: Mapping[str, Any]) -> WebhookEvent:
    data = payload.get("data")
    obj = data.get("object") if isinstance(data, dict) else None
    return WebhookEvent(id=str(payload["id"]), type=str(payload["type"]), created=int(payload["created"]),
                        object=obj if isinstance(obj, dict) else {}, raw=dict(payload))  # fmt: skip


def _amount_problem(order: Order, event: PaymentEvent, expected: int) -> str | None:
    """``currency_mismatch`` / ``amount_mismatch`` when the provider's amount is not what was asked for."""
    if (event.currency or "").upper() != order.currency.upper():
        return "currency_mismatch"
    if event.amount != expected:
        return "amount_mismatch"
    return None


def _subscription_of(session: Session, order: Order, event: PaymentEvent) -> SubscriptionRow | None:
    if event.subscription_id:
        row = repository.subscription_by_provider(session, order.workspace_id, event.subscription_id)
        if row is not None:
            return row
    return next((s for s in repository.subscriptions_of(session, order.workspace_id, order.buyer_id)
                 if s.order_id == order.id), None)  # fmt: skip


def _renewal_due(session: Session, row: SubscriptionRow) -> int:
    """What a renewal invoice charges: the plan's amount and its tax at the rate of the subscription's order."""
    sub = _sub_from_json(row.state)
    first = repository.order(session, row.workspace_id, row.order_id)
    return sub.amount + recurring_tax(sub.amount, sub.currency, first.tax_percent if first else "0")


def _tag_renewal(session: Session, row: SubscriptionRow, event: PaymentEvent) -> None:
    """The renewal order just booked carries the invoice's payment, so its refund finds it."""
    ref = event.payment_intent_id or event.invoice_id
    if not ref:
        return
    for order in reversed(repository.orders_of(session, row.workspace_id, row.buyer_id)):
        lines = order.lines or []
        if order.provider_ref is None and lines and lines[0].get("subscription_id") == row.id:
            order.provider_ref = ref
            return


def _pay(session: Session, order: Order, event: PaymentEvent, terms: WebhookTerms) -> str:
    """A pending order's payment (or trial start), checked against what the checkout asked for.

    The processor fee is the one Stripe reports (a charge's expanded ``balance_transaction.fee``); without
    it none is booked: Stripe's fee depends on the account's country, the card's origin and the payment
    method, so any table would book a wrong number for most accounts. The platform fee is the workspace's
    ``platform_fee_percent`` of the net sale, as for the manual provider."""
    due = order.total  # a plan's trial is charged nothing at checkout (its line totals 0)
    problem = _amount_problem(order, event, due)
    if problem:
        return problem
    mark_paid(session=session, workspace_id=order.workspace_id, order_id=order.id, actor="stripe",
              processor_fee=event.fee or 0, provider_ref=event.payment_intent_id or event.session_id,
              paid_at=event.occurred_at, subscription_ref=event.subscription_id,
              platform_fee_percent=terms.platform_fee_percent, book_sale=due > 0)  # fmt: skip
    return "paid" if due > 0 else "trial_started"


def _apply_event(session: Session, order: Order, event: PaymentEvent, terms: WebhookTerms) -> str:
    if event.kind in ("checkout_completed", "payment_succeeded"):
        return _on_payment(session, order, event, terms)
    if event.kind == "payment_failed":
        return _on_failure(session, order, event)
    if event.kind == "refunded":
        return _on_refund(session, order, event, terms)
    if event.kind == "subscription_updated":
        return _on_subscription_update(session, order, event, terms)
    if event.kind == "subscription_canceled":
        row = _subscription_of(session, order, event)
        if row is None:
            return "deferred" if order.status == "pending" else "ignored_state"
        if row.status == "canceled":
            return "ignored_state"
        subscription_action(session=session, workspace_id=order.workspace_id, subscription_id=row.id, action="cancel",
                            at_period_end=False, at=event.occurred_at, actor="stripe")  # fmt: skip
        return "canceled"
    return "ignored_kind"


def _on_payment(session: Session, order: Order, event: PaymentEvent, terms: WebhookTerms) -> str:
    ws = order.workspace_id
    unpaid = event.payment_status not in (None, "paid", "no_payment_required")
    if event.kind == "checkout_completed" and unpaid:
        return "awaiting_payment"
    if order.status == "pending":
        if event.invoice_id and event.billing_reason not in (None, "subscription_create"):
            return "deferred"  # a renewal delivered before the subscription exists: applied when it does
        return _pay(session, order, event, terms)
    if order.status not in ("paid", "partially_refunded"):
        return f"order_{order.status}"
    row = _subscription_of(session, order, event) if event.invoice_id else None
    if row is None or event.kind != "payment_succeeded" or row.order_id != order.id:
        return "already_paid"  # (an order found by this payment's id: its renewal is booked already)
    if event.billing_reason == "subscription_create":
        if event.payment_intent_id and (order.provider_ref or "cs_").startswith("cs_"):
            order.provider_ref = event.payment_intent_id  # the session's first invoice: refunds name it
        return "already_paid"
    if event.billing_reason not in (None, "subscription_cycle"):
        return "already_paid"  # a plan change's proration: booked with the change itself
    for paid_by in (event.payment_intent_id, event.invoice_id):
        # Looked up again under the order's lock: another event about this invoice, found before the renewal
        # it booked was committed, must not book a second period for the same payment.
        if paid_by and repository.order_for_webhook(session, order.workspace_id, None, paid_by) is not None:
            return "already_paid"
    end = _sub_from_json(row.state).current_period_end
    if end is None or (event.billing_reason is None and event.occurred_at < end and row.status != "past_due"):
        return "already_paid"
    if row.status not in ("active", "trialing", "past_due"):
        return "ignored_state"
    problem = _amount_problem(order, event, _renewal_due(session, row))
    if problem:
        return problem
    outcome = "subscription_renewed"
    if row.status == "past_due":  # a retry of the failed renewal invoice went through
        subscription_action(session=session, workspace_id=ws, subscription_id=row.id, action="payment_succeeded",
                            at=event.occurred_at, actor="stripe")  # fmt: skip
        outcome = "subscription_recovered"
    # One paid cycle invoice is one period, whatever order the invoices arrive in.
    subscription_action(session=session, workspace_id=ws, subscription_id=row.id, action="renew",
                        at=max(event.occurred_at, end), actor="stripe")  # fmt: skip
    _tag_renewal(session, row, event)
    return outcome


def _on_failure(session: Session, order: Order, event: PaymentEvent) -> str:
    if event.invoice_id is None:  # checkout.session.async_payment_failed: the delayed payment did not arrive
        if order.status != "pending":
            return "ignored_state"
        cancel_pending(session=session, workspace_id=order.workspace_id, order_id=order.id,
                       reason="the delayed payment failed")  # fmt: skip
        return "order_canceled"
    row = _subscription_of(session, order, event)
    if row is None:
        first_invoice = event.billing_reason in (None, "subscription_create")
        return "deferred" if order.status == "pending" and not first_invoice else "ignored_state"
    if row.status not in ("active", "past_due"):
        return "ignored_state"
    if event.occurred_at < row.updated_at:
        return "ignored_stale"  # the invoice was paid (or the subscription changed) after this attempt
    sub = _sub_from_json(row.state)
    if (
        row.status == "past_due"
        and event.attempt_count is not None
        and sub.failed_attempts >= event.attempt_count
    ):
        return "failure_already_recorded"
    subscription_action(session=session, workspace_id=order.workspace_id, subscription_id=row.id,
                        action="payment_failed", at=event.occurred_at, actor="stripe")  # fmt: skip
    return "payment_failed"


def _on_refund(session: Session, order: Order, event: PaymentEvent, terms: WebhookTerms) -> str:
    if order.status == "pending":  # the refund overtook the payment confirmation: record both, in order
        paid = _pay(session, order, event, terms)
        if paid != "paid":
            return paid
    if (event.currency or "").upper() != order.currency.upper():
        return "currency_mismatch"
    # Stripe reports the cumulative refunded amount: the delta makes repeats and reordering harmless.
    delta = (event.amount_refunded or 0) - order.refunded
    if delta <= 0:
        return "refund_already_recorded"
    left = ledger_service.refundable(session=session, workspace_id=order.workspace_id, order_id=order.id)
    if order.status not in ("paid", "partially_refunded") or delta > left.amount:
        return "refund_mismatch"  # more than the order booked, or an order that cannot be refunded
    refund(session=session, workspace_id=order.workspace_id, order_id=order.id, amount=delta, actor="stripe",
           at=event.occurred_at)  # fmt: skip
    return "refunded"


def _plan_of(session: Session, order: Order, event: PaymentEvent, terms: WebhookTerms) -> str | None:
    """The plan a Stripe subscription is on: ``metadata.plan`` when it names one, else the catalog's only
    recurring offer with the subscription's amount (with or without its tax line) and interval."""
    catalog = offers_service.catalog_for(session=session, workspace_id=order.workspace_id)
    named = catalog.offer(event.metadata.get("plan", ""))
    if named is not None and named.recurring:
        return named.key
    if event.amount is None:
        return None
    found = []
    for offer in catalog.offers:
        price = offer.price(order.currency)
        if not offer.recurring or price is None or (event.interval and offer.interval != event.interval):
            continue
        if event.amount in (
            price.amount,
            price.amount
            + recurring_tax(price.amount, order.currency, order.tax_percent or terms.tax_percent),
        ):
            found.append(offer.key)
    return found[0] if len(found) == 1 else None


def _on_subscription_update(session: Session, order: Order, event: PaymentEvent, terms: WebhookTerms) -> str:
    """``customer.subscription.updated``: its status, ``cancel_at_period_end`` and plan, applied when they
    differ from ours. Money does not move here: the invoices that follow book it."""
    row = _subscription_of(session, order, event)
    if row is None:
        return "deferred" if order.status == "pending" else "ignored_state"
    if row.status == "canceled":
        return "ignored_state"
    if event.occurred_at < row.updated_at:
        return "ignored_stale"  # a newer event already moved the subscription
    ws, done = order.workspace_id, []

    def act(action: str, **kw: Any) -> None:
        subscription_action(session=session, workspace_id=ws, subscription_id=row.id, action=action,
                            at=event.occurred_at, actor="stripe", **kw)  # fmt: skip

    status = event.subscription_status
    if status in ("canceled", "incomplete_expired"):
        act("cancel", at_period_end=False)
        return "canceled"
    if status in ("past_due", "unpaid") and row.status == "active":
        act("payment_failed")
        done.append("past_due")
    elif status == "active" and row.status == "past_due":
        act("payment_succeeded")
        done.append("recovered")
    plan = _plan_of(session, order, event, terms)
    if plan and plan != row.offer_key and row.status in ("active", "trialing"):
        act("change_plan", plan=plan)
        done.append("plan_changed")
    scheduled = _sub_from_json(row.state).cancel_at_period_end
    if event.cancel_at_period_end is True and not scheduled and row.status in ("active", "trialing"):
        act("cancel", at_period_end=True)
        done.append("cancel_scheduled")
    elif event.cancel_at_period_end is False and scheduled and row.status == "active":
        act("resume")
        done.append("cancel_withdrawn")
    return ",".join(done) or "no_change"


def payment_events(*, session: Session, workspace_id: str, order_id: str) -> list[dict[str, Any]]:
    """The provider events about an order and what each did (a refused amount stays visible here)."""
    _order(session, workspace_id, order_id)
    return [{"provider": e.provider, "provider_event_id": e.provider_event_id, "type": e.type, "outcome": e.outcome,
             "occurred_at": e.occurred_at.isoformat(), "received_at": e.received_at.isoformat()}
            for e in repository.payment_events_of(session, workspace_id, order_id)]  # fmt: skip
