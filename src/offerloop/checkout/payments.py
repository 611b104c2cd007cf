"""Payments: what a provider's hosted checkout charges, and provider webhooks applied once, checked against
the order, in whatever order they arrive."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, Literal

from sqlalchemy.orm import Session

from offerloop.checkout import buyers, orders, repository
from offerloop.checkout.exceptions import CheckoutError, ProviderError, RefundRefused
from offerloop.checkout.schemas import OrderLine, OrderRead, PaymentEventRead
from offerloop.checkout.stripe_events import PROVIDER as STRIPE
from offerloop.checkout.stripe_provider import (
    CheckoutLine,
    PaymentEvent,
    StripeProvider,
    WebhookEvent,
    normalize,
    refund_idempotency_key,
)
from offerloop.core.clock import utcnow
from offerloop.core.money import Money
from offerloop.core.pages import InvalidCursor, Page, decode_cursor, page_of
from offerloop.db.uow import Database, after_rollback
from offerloop.identity import service as identity_service
from offerloop.ledger import service as ledger_service
from offerloop.models import Order
from offerloop.models import PaymentEvent as PaymentEventRow
from offerloop.models import Subscription as SubscriptionRow
from offerloop.offers import service as offers_service
from offerloop.offers.catalog import Catalog
from offerloop.subscriptions import service as subscriptions_service


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


def _charged(line: OrderLine) -> int:
    """What Stripe charges for a line: a plan in trial is given the price it turns into (``after_trial``)."""
    return line.after_trial if line.after_trial is not None else line.total


def _provider_line(line: OrderLine) -> CheckoutLine:
    """One order line as a Checkout line. Stripe charges ``unit_amount x quantity``: when the line's total
    does not divide by its quantity (a coupon's share), it is sent as one unit at the exact total."""
    total, quantity = _charged(line), line.quantity
    out: CheckoutLine
    if quantity > 1 and total % quantity:
        out = {"name": f"{line.title} x {quantity}", "unit_amount": total, "quantity": 1}
    else:
        out = {"name": line.title, "unit_amount": total // quantity, "quantity": quantity}
    if line.interval:
        out["interval"] = line.interval
    return out


def _trial_days(catalog: Catalog, lines: Sequence[OrderLine]) -> int:
    days = [o.trial_days for line in lines if line.interval and (o := catalog.offer(line.offer_key))]
    return max(days, default=0)


def recurring_tax(amount: int, currency: str, tax_percent: str) -> int:
    """The tax Stripe adds to each recurring charge of ``amount`` (the recurring "Tax" line)."""
    return Money(currency, amount).percent(tax_percent).amount


def provider_charge(*, catalog: Catalog, order: OrderRead, tax_percent: str) -> ProviderCharge:
    """The Checkout lines for an order (see :class:`ProviderCharge`). Tax is a line of its own: recurring with
    the plan when the order is a subscription (Stripe then charges it on every renewal), one-time otherwise."""
    cur, lines = order.currency, order.lines
    recurring = [line for line in lines if line.interval]
    one_time = [line for line in lines if not line.interval]
    if any(line.discount for line in recurring):
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
    out = [_provider_line(line) for line in lines]
    tax = order.tax
    r_tax = 0
    if recurring:
        r_total = sum(_charged(line) for line in recurring)
        r_tax = recurring_tax(r_total, cur, tax_percent) if trial else (
            tax if not one_time else min(tax, recurring_tax(r_total, cur, tax_percent)))  # fmt: skip
    interval = recurring[0].interval if recurring else None
    if r_tax and interval is not None:
        out.append({"name": "Tax", "unit_amount": r_tax, "quantity": 1, "interval": interval})
    if tax - (0 if trial else r_tax):
        out.append({"name": "Tax", "unit_amount": tax - r_tax, "quantity": 1})
    charged = sum(line["unit_amount"] * line["quantity"] for line in out)
    if (0 if trial else charged) != order.total:  # an invariant: the lines are built from the order's amounts
        raise CheckoutError(
            f"the checkout lines sum to {charged}, the order to {order.total}", code="charge_mismatch"
        )
    return ProviderCharge(mode="subscription" if recurring else "payment", lines=out,
                          due_now=0 if trial else charged, trial_days=trial or None)  # fmt: skip


def checkout(
    *, db: Any, workspace_id: str, offer_key: str, currency: str, provider_name: str = "manual",
    provider: StripeProvider | None = None, user_id: str | None = None, anonymous_id: str | None = None,
    email: str | None = None, coupon: str | None = None, bumps: Sequence[str] = (), quantity: int = 1,
    decision_id: str | None = None, tax_percent: str = "0", success_url: str = "", cancel_url: str = "",
    variant: str | None = None,
) -> OrderRead:  # fmt: skip
    """The whole checkout: the buyer, a pending order with its quote, and for a provider the hosted session.

    The provider call happens outside any transaction (no lock held across the network); if it fails the
    order is canceled and its held units go back to stock."""
    if provider_name != "manual" and provider is None:
        raise CheckoutError(f"provider {provider_name} is not configured", code="provider_not_configured")
    with db.write() as session:
        buyer_id = buyers.buyer_for(session=session, workspace_id=workspace_id, user_id=user_id,
                             anonymous_id=anonymous_id, email=email)  # fmt: skip
        order = orders.begin(
            session=session, workspace_id=workspace_id, buyer_id=buyer_id, offer_key=offer_key, currency=currency,
            provider=provider_name, coupon=coupon, bumps=bumps, quantity=quantity, decision_id=decision_id,
            tax_percent=tax_percent, variant=variant,
        )  # fmt: skip
        catalog = offers_service.catalog_for(session=session, workspace_id=workspace_id)
        charge = provider_charge(catalog=catalog, order=order, tax_percent=tax_percent) if provider else None
    if provider is None or charge is None:
        return order
    try:
        created = provider.create_checkout_session(
            order_id=order.id, workspace_id=workspace_id, mode=charge.mode, currency=order.currency,
            lines=charge.lines, success_url=success_url, cancel_url=cancel_url, customer_email=email,
            trial_days=charge.trial_days,
        )  # fmt: skip
    except Exception:
        with db.write() as session:
            orders.cancel_pending(session=session, workspace_id=workspace_id, order_id=order.id,
                           reason="provider refused the checkout")  # fmt: skip
        raise
    with db.write() as session:
        return orders.attach_session(session=session, workspace_id=workspace_id, order_id=order.id,
                              provider_ref=created.id, url=created.url)  # fmt: skip


# -- refunds: the provider's money moves first, then the books ------------------------------------------


def refund(
    *, session: Session, workspace_id: str, order_id: str, amount: int | None = None, actor: str,
    at: datetime | None = None, reason: str | None = None, provider: StripeProvider | None = None,
) -> OrderRead:  # fmt: skip
    """Full (amount None) or partial refund of a paid order (see ``orders.refund_order``).

    An order paid through Stripe is refunded in Stripe first (``POST /v1/refunds`` on its payment) and booked
    only once Stripe accepted the refund (``succeeded`` or ``pending``), with Stripe's refund id as the ledger
    entry's reference. Stripe refusing it (RefundRefused, 409) or failing (ProviderError, 502) books nothing.
    Its later ``charge.refunded`` webhook books nothing more: it reports the cumulative amount refunded, which
    this booking already holds. A manual order's money moves outside offerloop: it is booked directly."""
    at = at or utcnow()
    # The order's row stays locked (PostgreSQL; SQLite's single writer) from here to the caller's commit,
    # across the call to Stripe. That is the choice made on purpose: a second refund of the same order, and
    # the charge.refunded webhook Stripe sends the moment it refunds, wait for this booking and then see it
    # (the second request is refused or refunds what is left; the webhook's cumulative amount adds nothing).
    # Releasing the lock during the call would let that webhook book the refund before this request does,
    # and both would book it. The idempotency key (order id + attempt sequence, see ``refund_sequence``)
    # covers what the lock cannot: the SDK's retries of one call, and a retry after a transaction that failed
    # once Stripe had answered, which get Stripe's first refund back rather than a second one.
    order = orders.load(session, workspace_id, order_id, lock=True)
    if order.provider != STRIPE:
        orders.refund_order(session, order, amount, actor=actor, at=at, reason=reason)
        return orders.order_read(order)
    value = orders.refund_value(session, order, amount)
    refund_in_stripe(session, order, value.amount, provider=provider, actor=actor, at=at, reason=reason)
    return orders.order_read(order)


#: The type of the payment-event row that remembers a refund Stripe definitively refused (its key is spent).
REFUSED = "refund_refused"


def refund_sequence(session: Session, order: Order) -> int:
    """The sequence of the order's next Stripe refund key (``offerloop-refund-<order>-<n>``): its refunds
    booked plus the attempts Stripe definitively refused. Stripe keeps a key's answer for 24 hours, errors
    included, so a key Stripe refused (a 4xx, or a refund it created as failed) is never sent again, while
    an attempt whose outcome is unknown (unreachable, timed out, a 5xx) remembers nothing: its retry reuses
    the key and gets the refund Stripe may have made back, instead of a second one."""
    events = repository.payment_events_of(session, order.workspace_id, order.id, limit=10_000)
    return orders.refunds_booked(session, order) + sum(1 for e in events if e.type == REFUSED)


def refund_in_stripe(
    session: Session, order: Order, amount: int, *, provider: StripeProvider | None, actor: str, at: datetime,
    reason: str | None, tax_part: int | None = None, end_access: bool = True,
) -> str:  # fmt: skip
    """Refund ``amount`` of a Stripe-paid ``order`` (its row locked by the caller) in Stripe, then book it with
    Stripe's refund id as the entry's reference (``orders.refund_order``); returns that id. Stripe accepts a
    refund as ``succeeded`` or ``pending`` (a pending one that later fails is undone by its webhook:
    ``orders.reverse_refund``). Stripe refusing it (RefundRefused, 409: the refusal is remembered, see
    ``refund_sequence``) or failing (ProviderError, 502) books nothing."""
    if provider is None:
        raise CheckoutError(
            f"order {order.id} was paid through Stripe and Stripe is not configured here "
            "(OFFERLOOP_STRIPE_API_KEY, OFFERLOOP_STRIPE_WEBHOOK_SECRET): refund it in Stripe's dashboard, "
            "whose webhook books it", code="provider_not_configured",
        )  # fmt: skip
    orders.refund_value(session, order, amount)  # checked before any money moves
    kind, ref = _refundable_payment(session, order)
    sequence = refund_sequence(session, order)
    try:
        done = provider.create_refund(
            order_id=order.id, workspace_id=order.workspace_id, currency=order.currency, amount=amount,
            sequence=sequence, **{kind: ref},
        )  # fmt: skip
    except RefundRefused as exc:
        _remember_refusal(session, order, exc)
        raise
    about = {
        "provider": STRIPE,
        "refund_id": done.id,
        "status": done.status,
        "failure_reason": done.failure_reason,
        "idempotency_key": refund_idempotency_key(order.id, sequence),
    }
    refused: RefundRefused | None = None
    if done.status not in ("succeeded", "pending"):
        refused = RefundRefused(
            f"Stripe created refund {done.id} as {done.status}: nothing is booked (if Stripe completes it "
            "later, its charge.refunded webhook books it)", details={**about, "code": done.status},
        )  # fmt: skip
    elif _known_failed(session, order, done.id):
        # Stripe's replay of a pending refund (a retry after a transaction that failed) that has failed since
        refused = RefundRefused(
            f"Stripe reported refund {done.id} failed: nothing is booked; ask again for a new refund",
            details={**about, "code": "refund_failed"},
        )  # fmt: skip
    if refused is not None:
        _remember_refusal(session, order, refused)
        raise refused
    if done.amount != amount:  # Stripe's idempotency replays only an identical request: never expected
        raise ProviderError(
            f"Stripe refund {done.id} is for {done.amount}, not the {amount} asked: nothing is booked "
            "(its charge.refunded webhook books what Stripe refunded)",
            details={**about, "code": "refund_amount_mismatch", "amount": done.amount, "asked": amount},
        )  # fmt: skip
    orders.refund_order(session, order, amount, actor=actor, at=at, reason=reason, tax_part=tax_part,
                        end_access=end_access, provider_refund=done.id, provider_status=done.status,
                        provider=provider)  # fmt: skip
    return done.id


def _remember_refusal(session: Session, order: Order, refused: RefundRefused) -> None:
    """Record, once the caller's transaction has rolled back (the refusal is raised through it), that Stripe
    refused this order's refund key: the next attempt takes the next sequence (``refund_sequence``)."""
    details = dict(refused.details) if isinstance(refused.details, dict) else {}
    key = details.get("idempotency_key")
    if not isinstance(key, str):
        return
    ws, order_id, now = order.workspace_id, order.id, utcnow()
    code = str(details.get("code") or "refused")

    def store(db: Database) -> None:
        with db.write() as s:
            if repository.payment_event(s, STRIPE, key) is None:
                repository.add(s, PaymentEventRow(
                    workspace_id=ws, provider=STRIPE, provider_event_id=key, type=REFUSED, order_id=order_id,
                    payment_ref=None, occurred_at=now, received_at=now, outcome=code[:40],
                    payload={"id": key, "type": f"offerloop.{REFUSED}", "created": int(now.timestamp()),
                             "data": {"object": {**details, "message": refused.message}}},
                ))  # fmt: skip

    after_rollback(session, store)


def _known_failed(session: Session, order: Order, refund_id: str) -> bool:
    """Whether a webhook already said Stripe's refund ``refund_id`` of this order failed (or was canceled)."""
    return refund_id in _failed_refunds(session, order)


def _failed_refunds(session: Session, order: Order) -> dict[str, tuple[datetime, int]]:
    """The refunds of the order Stripe reported failed: refund id -> (when it first said so, amount)."""
    found: dict[str, tuple[datetime, int]] = {}
    for row in repository.payment_events_of(session, order.workspace_id, order.id, limit=10_000):
        if row.type != "refund_failed" or row.outcome not in ("refund_reversed", "refund_not_booked"):
            continue
        event = normalize(_stored_event(row.payload))
        if event is None or not event.refund_id:
            continue
        when, amount = row.occurred_at, event.amount or 0
        if event.refund_id not in found or when < found[event.refund_id][0]:
            found[event.refund_id] = (when, amount)
    return found


def _refundable_payment(session: Session, order: Order) -> tuple[Literal["payment_intent", "charge"], str]:
    """The Stripe payment an order's refund goes to: the PaymentIntent (else the Charge) that paid it.

    A checkout in payment mode, a subscription's first invoice and a renewal's invoice leave its PaymentIntent
    as the order's ``provider_ref``; otherwise (an invoice or session id) the provider events about that
    payment, or about this order's own checkout, name it."""
    found: Literal["payment_intent", "charge"]
    ref = order.provider_ref or ""
    if ref.startswith(("pi_", "ch_")):
        found = "payment_intent" if ref.startswith("pi_") else "charge"
        return found, ref
    rows = repository.payment_events_of(session, order.workspace_id, order.id, limit=200)
    if ref:
        rows = repository.payment_events_by_ref(session, order.workspace_id, STRIPE, ref) + rows
    for row in rows:
        event = normalize(_stored_event(row.payload))
        # this payment's events, or this order's checkout (its session, its subscription's first invoice)
        own = row.payment_ref == ref or (
            event is not None
            and event.kind in ("checkout_completed", "payment_succeeded")
            and (event.session_id is not None or event.billing_reason == "subscription_create")
        )
        if event is None or not own:
            continue
        if event.payment_intent_id:
            return "payment_intent", event.payment_intent_id
        if event.charge_id:
            return "charge", event.charge_id
    raise CheckoutError(
        f"order {order.id}: no Stripe payment is known for it (its reference is {ref or 'empty'}), so it cannot "
        "be refunded from here: refund it in Stripe's dashboard, whose webhook books it",
        code="provider_payment_unknown",
    )


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
        order = orders.load(session, order.workspace_id, order.id, lock=True)
        outcome = _apply_event(session, order, event, terms)
    if order is not None:  # an erased buyer's order: the event is kept, their personal data is not
        payload = identity_service.storable(
            session=session, workspace_id=order.workspace_id, buyer_id=order.buyer_id, value=payload
        )
    stored = PaymentEventRow(
        workspace_id=order.workspace_id if order else event.workspace_id, provider=event.provider,
        provider_event_id=event.provider_event_id, type=event.kind, order_id=order.id if order else event.order_id,
        payment_ref=(event.payment_intent_id or event.invoice_id or "")[:200] or None,
        occurred_at=event.occurred_at, received_at=utcnow(), outcome=outcome[:40], payload=dict(payload),
    )  # fmt: skip
    repository.add(session, stored)
    repository.flush(session)
    if order is not None and outcome in ("paid", "trial_started"):
        _replay_deferred(session, order, terms)
    if (
        order is not None
        and "plan_changed" not in outcome.split(",")
        and _release_held(session, order, event, terms)
    ):
        if stored.outcome == outcome:  # (a replay of the held invoices may have booked this very event)
            stored.outcome = f"{outcome},plan_changed"[:40]
        outcome = stored.outcome
    elif order is not None and "plan_changed" in outcome.split(","):
        _replay_held(session, order, terms)
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
        row = subscriptions_service.by_provider(
            session=session, workspace_id=event.workspace_id, provider_id=event.subscription_id
        )
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


#: The outcome of a cycle invoice carrying a plan change's prorations that arrived before the plan change's event.
HELD = "held_plan_change"


def _replay_held(session: Session, order: Order, terms: WebhookTerms) -> None:
    """Apply again, in the order they happened, the cycle invoices held for a plan change (``HELD``), now that
    one was applied: each is booked once (its stored outcome changes), or stays held, or is refused visibly."""
    for row in repository.deferred_payment_events(session, order.workspace_id, order.id, outcome=HELD):
        event = normalize(_stored_event(row.payload))
        if event is None:
            continue
        row.outcome = _apply_event(session, order, event, terms)[:40]
    repository.flush(session)


def _held_before(session: Session, order: Order, event: PaymentEvent) -> bool:
    """Whether a cycle invoice that happened before ``event`` is held for a plan change (``HELD``)."""
    rows = repository.deferred_payment_events(session, order.workspace_id, order.id, outcome=HELD)
    # (filtered here again: a replay changes outcomes in this transaction before they are flushed)
    return any(r.outcome == HELD and r.occurred_at < event.occurred_at and r.provider_event_id != event.provider_event_id
               for r in rows)  # fmt: skip


def _plan_charged(session: Session, order: Order, row: SubscriptionRow, event: PaymentEvent,
                  terms: WebhookTerms) -> str | None:  # fmt: skip
    """The plan a cycle invoice charges its period for: its amount less its prorations, a catalog plan's price on
    the subscription's interval (what Stripe charged, whatever the metadata it copied says)."""
    if (
        event.kind != "payment_succeeded"
        or event.billing_reason != "subscription_cycle"
        or event.amount is None
    ):
        return None
    period = event.amount - (event.proration or 0)
    return _plan_costing(session, order, period, subscriptions_service.state_of(row).interval, terms)


def _release_held(session: Session, order: Order, event: PaymentEvent, terms: WebhookTerms) -> bool:
    """Cycle invoices held for a plan change whose ``customer.subscription.updated`` was lost (or arrived stale,
    after a newer event, and was ignored) would wait forever: a later event of the subscription that shows Stripe
    on the plan a held invoice charges for (a ``customer.subscription.updated`` naming that plan, fresh or stale,
    or another paid cycle invoice charging for it) is the change's evidence. The plan change is applied (dated
    within the current period: the later of the subscription's last change and, at the latest, a second before
    the period's end) and the held invoices are booked in the order they happened. Returns whether it did."""
    if event.kind not in ("subscription_updated", "payment_succeeded"):
        return False
    held = [r for r in repository.deferred_payment_events(session, order.workspace_id, order.id, outcome=HELD)
            if r.provider_event_id != event.provider_event_id]  # fmt: skip
    row = _subscription_of(session, order, event) if held else None
    if row is None or row.status not in ("active", "trialing"):
        return False
    charged = set()
    for stored in held:
        invoice = normalize(_stored_event(stored.payload))
        plan = _plan_charged(session, order, row, invoice, terms) if invoice is not None else None
        if plan is not None:
            charged.add(plan)
    shown = (_plan_of(session, order, event, terms) if event.kind == "subscription_updated"
             else _plan_charged(session, order, row, event, terms))  # fmt: skip
    if shown is None or shown == row.offer_key or shown not in charged:
        return False
    sub = subscriptions_service.state_of(row)
    end = sub.current_period_end
    at = min(event.occurred_at, end - timedelta(seconds=1)) if end is not None else event.occurred_at
    at = max(at, row.updated_at)
    if end is not None and row.status == "active" and at >= end:
        return False  # no time left in the period to date the change in (its invoices stay held, visibly)
    subscriptions_service.act(session=session, workspace_id=order.workspace_id, subscription_id=row.id,
                              action="change_plan", plan=shown, at=at, actor="stripe")  # fmt: skip
    _replay_held(session, order, terms)
    return True


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
        row = subscriptions_service.by_provider(
            session=session, workspace_id=order.workspace_id, provider_id=event.subscription_id
        )
        if row is not None:
            return row
    return next(
        (
            s
            for s in subscriptions_service.of_buyer(
                session=session, workspace_id=order.workspace_id, buyer_id=order.buyer_id
            )
            if s.order_id == order.id
        ),
        None,
    )


def _renewal_due(session: Session, row: SubscriptionRow) -> int:
    """What a renewal invoice charges: the plan's amount and its tax at the rate of the subscription's order."""
    sub = subscriptions_service.state_of(row)
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
    orders.mark_paid(
        session=session,
        workspace_id=order.workspace_id,
        order_id=order.id,
        actor="stripe",
        processor_fee=event.fee or 0,
        provider_ref=event.payment_intent_id or event.session_id,
        paid_at=event.occurred_at,
        subscription_ref=event.subscription_id,
        platform_fee_percent=terms.platform_fee_percent,
        book=due > 0,
    )
    return "paid" if due > 0 else "trial_started"


def _apply_event(session: Session, order: Order, event: PaymentEvent, terms: WebhookTerms) -> str:
    if event.kind in ("checkout_completed", "payment_succeeded"):
        return _on_payment(session, order, event, terms)
    if event.kind == "payment_failed":
        return _on_failure(session, order, event)
    if event.kind == "refunded":
        return _on_refund(session, order, event, terms)
    if event.kind == "refund_failed":
        if not event.refund_id or order.status == "pending":
            return "ignored_state"
        return orders.reverse_refund(
            session, order, refund_id=event.refund_id, at=event.occurred_at, actor="stripe"
        )
    if (
        event.kind == "refund_updated"
    ):  # pending -> succeeded (booked already), requires_action…: nothing moves
        return f"refund_{event.payment_status or 'updated'}"[:40]
    if event.kind == "subscription_updated":
        return _on_subscription_update(session, order, event, terms)
    if event.kind == "subscription_canceled":
        row = _subscription_of(session, order, event)
        if row is None:
            return "deferred" if order.status == "pending" else "ignored_state"
        if row.status == "canceled":
            return "ignored_state"
        subscriptions_service.act(
            session=session,
            workspace_id=order.workspace_id,
            subscription_id=row.id,
            action="cancel",
            at_period_end=False,
            at=event.occurred_at,
            actor="stripe",
        )
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
    row = _subscription_of(session, order, event) if event.invoice_id else None
    own = row is not None and event.kind == "payment_succeeded" and row.order_id == order.id
    if order.status not in ("paid", "partially_refunded") and not (
        own and event.billing_reason in (None, "subscription_cycle")
    ):
        # (a cycle invoice of the subscription this order started is the subscription's money, whatever became of
        # the order: a full refund in Stripe's dashboard leaves the subscription running and charging)
        return f"order_{order.status}"
    if row is None or not own:
        return "already_paid"  # (an order found by this payment's id: its renewal is booked already)
    if event.billing_reason == "subscription_create":
        if event.payment_intent_id and (order.provider_ref or "cs_").startswith("cs_"):
            order.provider_ref = event.payment_intent_id  # the session's first invoice: refunds name it
        return "already_paid"
    if event.billing_reason == "subscription_update":
        return _paid_for_change(session, order, row, event)
    if event.billing_reason not in (None, "subscription_cycle"):
        return "already_paid"
    for paid_by in (event.payment_intent_id, event.invoice_id):
        # Looked up again under the order's lock: another event about this invoice, found before the renewal
        # it booked was committed, must not book a second period for the same payment.
        if paid_by and repository.order_for_webhook(session, order.workspace_id, None, paid_by) is not None:
            return "already_paid"
    end = subscriptions_service.state_of(row).current_period_end
    if end is None or (event.billing_reason is None and event.occurred_at < end and row.status != "past_due"):
        return "already_paid"
    if row.status not in ("active", "trialing", "past_due"):
        return _paid_while_ended(session, order, row, event)
    due = _renewal_due(session, row)
    extra = _cycle_prorations(session, order, row, event, due)
    credit, credit_tax = _split_tax(order, min(extra, 0))
    plan = subscriptions_service.state_of(row).amount
    if -credit.amount > plan or -credit_tax.amount > due - plan:
        return "amount_mismatch"  # a credit larger than the renewal it is taken from
    problem = _amount_problem(order, event, due + extra)
    if problem == "amount_mismatch" and (event.prorated or _held_before(session, order, event)):
        # Stripe lists prorations (even ones summing to 0: a plan change all the same), so a plan change was made
        # in Stripe, and its customer.subscription.updated has not reached us yet (Stripe does not order its
        # webhooks): the invoice is kept, booking nothing, and applied again once a plan change is applied here
        # (``_replay_held``). A later cycle invoice of another amount while one is held is the next period of
        # that change, held too: both are booked in the order they happened.
        return HELD
    if problem:
        return problem
    outcome = "subscription_renewed"
    if row.status == "past_due":  # a retry of the failed renewal invoice went through
        subscriptions_service.act(
            session=session,
            workspace_id=ws,
            subscription_id=row.id,
            action="payment_succeeded",
            at=event.occurred_at,
            actor="stripe",
        )
        outcome = "subscription_recovered"
    # One paid cycle invoice is one period, whatever order the invoices arrive in.
    subscriptions_service.act(
        session=session,
        workspace_id=ws,
        subscription_id=row.id,
        action="renew",
        at=max(event.occurred_at, end),
        actor="stripe",
        prorations=_split_tax(order, extra) if extra else None,
    )
    _tag_renewal(session, row, event)
    return outcome


def _cycle_prorations(
    session: Session, order: Order, row: SubscriptionRow, event: PaymentEvent, due: int
) -> int:
    """The part of a cycle invoice that is a plan change's prorations (signed; a credit is negative). A plan
    change Stripe reported with its default proration (``create_prorations``: a dashboard change) is charged or
    credited on the next invoice, with the new period. When the invoice lists its lines, its lines flagged
    ``proration`` say how much; when it does not, the difference from the plan's amount is taken as prorations
    only if Stripe reported a plan change during the period this invoice closes whose prorations nothing booked
    yet (otherwise the invoice is an ``amount_mismatch``, as before)."""
    if event.proration is not None:
        return event.proration
    if event.amount is None or event.amount == due or not _unbooked_reported_change(session, order, row):
        return 0
    return event.amount - due


def _unbooked_reported_change(session: Session, order: Order, row: SubscriptionRow) -> bool:
    """Whether Stripe reported a plan change (``customer.subscription.updated``, outcome ``plan_changed``) during
    the current period, and no invoice of a plan change (``proration_booked``) was booked since."""
    start = subscriptions_service.state_of(row).current_period_start
    if start is None:
        return False
    events = repository.payment_events_of(session, order.workspace_id, order.id, limit=10_000)
    changed = [e.occurred_at for e in events if e.type == "subscription_updated" and e.occurred_at >= start
               and "plan_changed" in (e.outcome or "").split(",")]  # fmt: skip
    if not changed:
        return False
    last = max(changed)
    return not any(e.outcome == "proration_booked" and e.occurred_at >= last for e in events)


def _split_tax(order: Order, total: int) -> tuple[Money, Money]:
    """``total`` (signed) as (net, tax) at the tax rate of the subscription's order, as ``_paid_for_change`` splits
    a plan change's invoice."""
    hundred = Decimal(100)
    size = abs(total)
    net = int((Decimal(size) * hundred / (hundred + Decimal(order.tax_percent or "0"))).to_integral_value())
    sign = 1 if total >= 0 else -1
    return Money(order.currency, sign * net), Money(order.currency, sign * (size - net))


def _paid_for_change(session: Session, order: Order, row: SubscriptionRow, event: PaymentEvent) -> str:
    """A paid invoice of a plan change (billing reason ``subscription_update``): Stripe charged the proration at
    once. One made here booked Stripe's answer with the change (its invoice is on the change's record); one Stripe
    reported itself (made in its dashboard, or made from here with the answer lost) books nothing with its
    ``customer.subscription.updated``: this invoice is what Stripe charged, booked as a proration order of its
    own (its payment as reference), split into tax at the rate of the subscription's order."""
    from offerloop.checkout import billing, stripe_subscriptions  # both book or change through this module

    if not event.amount:
        return "already_paid"  # nothing was taken
    if (event.currency or "").upper() != order.currency.upper():
        return "currency_mismatch"
    if event.invoice_id and stripe_subscriptions.invoiced_by_change(session, row, event.invoice_id):
        return "already_paid"  # booked with the change made here
    for paid_by in (event.payment_intent_id, event.invoice_id):
        if paid_by and repository.order_for_webhook(session, order.workspace_id, None, paid_by) is not None:
            return "already_paid"
    total = event.amount  # (ISO minor units, as every amount of a PaymentEvent)
    hundred = Decimal(100)
    net = int((Decimal(total) * hundred / (hundred + Decimal(order.tax_percent or "0"))).to_integral_value())
    booked = billing.charge(session, row, Money(order.currency, net), event.occurred_at, "proration",
                            tax=Money(order.currency, total - net))  # fmt: skip
    booked.provider_ref = event.payment_intent_id or event.invoice_id
    return "proration_booked"


def _paid_while_ended(session: Session, order: Order, row: SubscriptionRow, event: PaymentEvent) -> str:
    """A paid cycle invoice of a subscription held here as canceled (or paused): Stripe took the money, and it
    renews nothing here (Stripe charged just before a cancel made in its dashboard, an event delivered after the
    cancel's, a subscription canceled here before cancels were made in Stripe too). Dropping it would leave money
    taken and not booked, so it is booked as an order of the subscription of its own (line reason
    ``paid_while_<status>``, the invoice's payment as its reference, so ``POST /v1/orders/{id}/refund`` gives it
    back in Stripe), granting nothing; the outcome ``booked_while_<status>`` shows it on the order's payments.
    An invoice listing a plan change's prorations (``proration`` lines) is booked as Stripe charged it: the rest of
    the invoice is the period of the plan Stripe held (a plan change made in its dashboard before the pause or
    cancel, maybe never reported, and not applied here to a paused or canceled subscription), the prorations a
    line of their own (a credit the period's discount). Any other amount that is not the plan's is refused visibly
    (``amount_mismatch``), as a renewal's is."""
    from offerloop.checkout import billing  # billing refunds through this module

    if not event.amount:
        return "ignored_state"  # nothing was taken
    if (event.currency or "").upper() != order.currency.upper():
        return "currency_mismatch"
    due = _renewal_due(session, row)
    sub = subscriptions_service.state_of(row)
    net, tax = Money(sub.currency, sub.amount), Money(sub.currency, due - sub.amount)
    extra = event.proration or 0
    period = event.amount - extra
    if (
        event.prorated and period != due
    ):  # the period of another plan than ours: split at our order's tax rate
        net, tax = _split_tax(order, period)
    elif not event.prorated and event.amount != due:
        return "amount_mismatch"
    credit, credit_tax = _split_tax(order, min(extra, 0))
    if period < 0 or -credit.amount > net.amount or -credit_tax.amount > tax.amount:
        return "amount_mismatch"  # a credit larger than the period it is taken from
    booked = billing.charge(session, row, net, event.occurred_at, f"paid_while_{row.status}", tax=tax,
                            prorations=_split_tax(order, extra) if extra else None)  # fmt: skip
    booked.provider_ref = event.payment_intent_id or event.invoice_id
    return f"booked_while_{row.status}"


def _on_failure(session: Session, order: Order, event: PaymentEvent) -> str:
    if event.invoice_id is None:  # checkout.session.async_payment_failed: the delayed payment did not arrive
        if order.status != "pending":
            return "ignored_state"
        orders.cancel_pending(
            session=session,
            workspace_id=order.workspace_id,
            order_id=order.id,
            reason="the delayed payment failed",
        )
        return "order_canceled"
    row = _subscription_of(session, order, event)
    if row is None:
        first_invoice = event.billing_reason in (None, "subscription_create")
        return "deferred" if order.status == "pending" and not first_invoice else "ignored_state"
    sub = subscriptions_service.state_of(row)
    if row.status == "paused" and sub.paused_from == "past_due" and event.attempt_count is not None:
        # Stripe goes on retrying the invoice that was open when its collection was paused: its attempt_count is
        # Stripe's count of that invoice's attempts (authoritative), kept for when the subscription is resumed
        # past due; the pause itself stays as it is
        recorded = subscriptions_service.record_failed_attempts(
            session=session,
            workspace_id=order.workspace_id,
            subscription_id=row.id,
            attempts=event.attempt_count,
        )
        return "failure_recorded" if recorded else "failure_already_recorded"
    if row.status not in ("active", "past_due"):
        return "ignored_state"
    if event.occurred_at < row.updated_at:
        return "ignored_stale"  # the invoice was paid (or the subscription changed) after this attempt
    if (
        row.status == "past_due"
        and event.attempt_count is not None
        and sub.failed_attempts >= event.attempt_count
    ):
        return "failure_already_recorded"
    subscriptions_service.act(
        session=session,
        workspace_id=order.workspace_id,
        subscription_id=row.id,
        action="payment_failed",
        at=event.occurred_at,
        actor="stripe",
    )
    if event.attempt_count is not None:  # an attempt's event lost: Stripe's count, not ours plus one
        subscriptions_service.record_failed_attempts(
            session=session,
            workspace_id=order.workspace_id,
            subscription_id=row.id,
            attempts=event.attempt_count,
        )
    return "payment_failed"


def _on_refund(session: Session, order: Order, event: PaymentEvent, terms: WebhookTerms) -> str:
    if order.status == "pending":  # the refund overtook the payment confirmation: record both, in order
        paid = _pay(session, order, event, terms)
        if paid != "paid":
            return paid
    if (event.currency or "").upper() != order.currency.upper():
        return "currency_mismatch"
    # Stripe reports the cumulative refunded amount: the delta makes repeats and reordering harmless. A refund
    # that failed after this charge was sent is still in its cumulative amount but no longer in the order's.
    failed_since = sum(amount for when, amount in _failed_refunds(session, order).values()
                       if when >= event.occurred_at)  # fmt: skip
    delta = (event.amount_refunded or 0) - order.refunded - failed_since
    if delta <= 0:
        return "refund_already_recorded"
    left = ledger_service.refundable(session=session, workspace_id=order.workspace_id, order_id=order.id)
    if order.status not in ("paid", "partially_refunded") or delta > left.amount:
        return "refund_mismatch"  # more than the order booked, or an order that cannot be refunded
    orders.refund(
        session=session,
        workspace_id=order.workspace_id,
        order_id=order.id,
        amount=delta,
        actor="stripe",
        at=event.occurred_at,
    )
    return "refunded"


def _plan_of(session: Session, order: Order, event: PaymentEvent, terms: WebhookTerms) -> str | None:
    """The plan a Stripe subscription is on: ``metadata.plan`` when it names one, else the catalog's only
    recurring offer with the subscription's amount (with or without its tax line) and interval."""
    catalog = offers_service.catalog_for(session=session, workspace_id=order.workspace_id)
    named = catalog.offer(event.metadata.get("plan", ""))
    if named is not None and named.recurring:
        return named.key
    return _plan_costing(session, order, event.amount, event.interval, terms)


def _plan_costing(
    session: Session, order: Order, amount: int | None, interval: str | None, terms: WebhookTerms
) -> str | None:
    """The catalog's only recurring offer (on ``interval`` when given) whose price, with or without its tax line,
    is ``amount``."""
    if amount is None:
        return None
    catalog = offers_service.catalog_for(session=session, workspace_id=order.workspace_id)
    found = []
    for offer in catalog.offers:
        price = offer.price(order.currency)
        if not offer.recurring or price is None or (interval and offer.interval != interval):
            continue
        if amount in (
            price.amount,
            price.amount
            + recurring_tax(price.amount, order.currency, order.tax_percent or terms.tax_percent),
        ):
            found.append(offer.key)
    return found[0] if len(found) == 1 else None


def _on_subscription_update(session: Session, order: Order, event: PaymentEvent, terms: WebhookTerms) -> str:
    """``customer.subscription.updated``: its status, ``cancel_at_period_end``, ``pause_collection`` and plan,
    applied when they differ from ours. Money does not move here: the invoices that follow book it."""
    row = _subscription_of(session, order, event)
    if row is None:
        return "deferred" if order.status == "pending" else "ignored_state"
    if row.status == "canceled":
        return "ignored_state"
    if event.occurred_at < row.updated_at:
        return "ignored_stale"  # a newer event already moved the subscription
    ws, done = order.workspace_id, []

    def act(action: str, **kw: Any) -> None:
        subscriptions_service.act(
            session=session,
            workspace_id=ws,
            subscription_id=row.id,
            action=action,
            at=event.occurred_at,
            actor="stripe",
            **kw,
        )

    status = event.subscription_status
    if status in ("canceled", "incomplete_expired"):
        act("cancel", at_period_end=False)
        return "canceled"
    if status == "unpaid" and row.status == "past_due":
        # Stripe gave up retrying and left the subscription unpaid (its setting at the end of retries): access ends
        # now, as Stripe advises; its failures kept it past due until here (offerloop does not count them out)
        act("cancel", at_period_end=False)
        return "canceled_unpaid"
    if status in ("past_due", "unpaid") and row.status == "active":
        act("payment_failed")
        done.append("past_due")
    elif status == "active" and row.status == "past_due":
        act("payment_succeeded")
        done.append("recovered")
    if event.pause_collection == "" and row.status == "paused":
        act("resume")  # collection resumed in Stripe (its dashboard, or resumes_at reached)
        done.append("resumed")
    plan = _plan_of(session, order, event, terms)
    if plan and plan != row.offer_key and row.status in ("active", "trialing"):
        act("change_plan", plan=plan)
        done.append("plan_changed")
    scheduled = subscriptions_service.state_of(row).cancel_at_period_end
    if event.cancel_at_period_end is True and not scheduled and row.status in ("active", "trialing"):
        act("cancel", at_period_end=True)
        done.append("cancel_scheduled")
    elif event.cancel_at_period_end is False and scheduled and row.status in ("active", "trialing"):
        act("resume")
        done.append("cancel_withdrawn")
    if event.pause_collection and row.status in ("active", "trialing", "past_due"):
        # collection paused in Stripe: paused here too, its access ending as a pause made here does (Stripe's
        # status stays what it was; pause_collection is what says it is paused), in whatever state Stripe paused
        # it, even past our period's end (Stripe's paid invoice of the next period may still be on its way). A
        # buyer's pause asked for here whose answer was lost stays the buyer's.
        from offerloop.checkout import stripe_subscriptions  # it books through this module

        act("pause", by=stripe_subscriptions.pause_asked_by(session, row, event.metadata))
        done.append("paused")
    return ",".join(done) or "no_change"


def payment_events(
    *, session: Session, workspace_id: str, order_id: str, limit: int, cursor: str | None = None
) -> Page[PaymentEventRead]:
    """The provider events about an order and what each did (a refused amount stays visible here), in the
    order they were received."""
    orders.load(session, workspace_id, order_id)
    # The cursor names its list (and order), so another list's (or order's) cursor is refused, not misread.
    after = decode_cursor(cursor, types=(str, int))
    if after is not None and after[0] != order_id:
        raise InvalidCursor("cursor does not belong to this list: pass the next_cursor of its previous page")
    rows = repository.payment_events_of(
        session, workspace_id, order_id, limit=limit + 1, after_id=after[1] if after else None
    )
    return page_of(rows, limit, key=lambda e: (order_id, e.id), item=_payment_event_read)


def _payment_event_read(e: PaymentEventRow) -> PaymentEventRead:
    return PaymentEventRead(id=e.id, provider=e.provider, provider_event_id=e.provider_event_id, type=e.type,
                            outcome=e.outcome, occurred_at=e.occurred_at, received_at=e.received_at)  # fmt: skip
