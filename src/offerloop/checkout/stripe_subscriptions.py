"""A change to a Stripe-managed subscription asked for here (cancel, pause, resume, plan change) is made in
Stripe first, then in our record, in the caller's unit of work: what Stripe charges is what is booked.

Stripe refusing the change (ProviderRefused, 409: its key is spent and remembered once the caller's unit of
work has rolled back), failing or unreachable (ProviderError, 502: the outcome is unknown, the next attempt
reuses the key) or not configured here (CheckoutError ``provider_not_configured``, 409) raises, and nothing
changes here. A change Stripe accepted is remembered in the same unit of work (a payment-event row named by
its idempotency key, on the subscription's order), which also numbers the next key.

What each change asks of Stripe, and why it charges what our lifecycle books:

- cancel at period end: ``cancel_at_period_end=true`` (withdrawn by ``resume``: ``false``); nothing is charged
  or booked now, and no renewal follows.
- cancel now: ``DELETE`` with ``prorate=false`` and ``invoice_now=false``: our lifecycle credits nothing for the
  unused time, so Stripe must not either.
- pause: ``pause_collection[behavior]=void``: no invoice is collected while paused, as our lifecycle charges
  nothing while paused; ``resume`` unsets it (``pause_collection=``). The pause also sets
  ``metadata[offerloop_pause]`` to who asked and its key, so that its webhook, when Stripe's answer was lost,
  records a buyer's pause as the buyer's (``pause_asked_by``).
- plan change on the same interval: the item's price replaced with the new plan's (and the recurring tax
  item's with its tax), ``metadata[plan]`` naming the plan so Stripe's ``customer.subscription.updated`` echo
  is known as this change. A downgrade is ``proration_behavior=none``: its credit is refunded in Stripe on its
  own (``billing.credit``). An upgrade is ``proration_behavior=always_invoice`` with ``proration_date`` the
  change's time and ``payment_behavior=error_if_incomplete``: Stripe charges the prorated difference at once
  (or refuses, 402, and nothing changes), as our lifecycle charges it at once, and what Stripe's invoice charged
  (``expand[]=latest_invoice``: the tax item's lines as tax, the rest as the plan's) is what is booked, not our
  own proration: Stripe prorates over its own period and rounds each line. The invoice's ``invoice.paid``
  (billing reason ``subscription_update``) books nothing more. During a trial nothing is prorated.
- a plan change to another interval is refused (``provider_unsupported``): Stripe would start and charge a new
  period at once, which our lifecycle nets against the unused time instead.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from offerloop.checkout import payments, repository
from offerloop.checkout.exceptions import CheckoutError, ProviderError, ProviderRefused
from offerloop.checkout.stripe_events import PROVIDER as STRIPE
from offerloop.checkout.stripe_events import _dict, _id, _int, _str
from offerloop.checkout.stripe_provider import StripeProvider
from offerloop.core import currencies
from offerloop.core.clock import utcnow
from offerloop.core.money import Money
from offerloop.db.uow import Database, after_rollback
from offerloop.models import PaymentEvent as PaymentEventRow
from offerloop.models import Subscription as SubscriptionRow
from offerloop.subscriptions.lifecycle import PausedBy, Subscription

#: Payment-event types: a change Stripe accepted, and one it refused (its key is spent).
SENT = "subscription_change_sent"
REFUSED = "subscription_change_refused"
#: The metadata key naming the plan a Stripe subscription is on (read back by ``payments._plan_of``).
PLAN_KEY = "plan"
#: The metadata key a pause asked for here leaves on Stripe's subscription: ``<buyer|creator>:<idempotency key>``.
PAUSE_KEY = "offerloop_pause"
INVOICED = "always_invoice"  # the proration behaviour of an upgrade: charged at once
TAX_ITEM = "Tax"  # the name of the recurring tax line our checkout creates (``payments.provider_charge``)


def managed_by_stripe(session: Session, row: SubscriptionRow) -> bool:
    """Whether Stripe bills the subscription (it started from a Stripe checkout and Stripe named it)."""
    first = repository.order(session, row.workspace_id, row.order_id)
    return row.provider_subscription_id is not None and first is not None and first.provider == STRIPE


def change_in_stripe(
    session: Session, row: SubscriptionRow, *, before: Subscription, after: Subscription, at: datetime,
    provider: StripeProvider | None,
) -> tuple[Money, Money, str | None] | None:  # fmt: skip
    """Make in Stripe the change from ``before`` to ``after`` our lifecycle is about to record (nothing when the
    subscription is not Stripe's or the change asks nothing of Stripe); raises when Stripe does not make it.
    Returns, for a change Stripe invoices at once (an upgrade), what it charged: (net, tax) in ISO minor units,
    and the payment it was charged by (the invoice's PaymentIntent, else the invoice: a later downgrade's credit
    is refunded from it first)."""
    if not managed_by_stripe(session, row):
        return None
    change = _change(before, after, at)
    if change is None:
        return None
    label, method, params = change
    if provider is None:
        raise CheckoutError(
            f"subscription {row.id} is billed by Stripe and Stripe is not configured here "
            "(OFFERLOOP_STRIPE_API_KEY, OFFERLOOP_STRIPE_WEBHOOK_SECRET): change it in Stripe's dashboard, "
            "whose webhook records it", code="provider_not_configured",
        )  # fmt: skip
    stripe_id = row.provider_subscription_id
    assert stripe_id is not None
    tax_product: str | None = None
    if method == "items":
        items, tax_product = _items(session, row, provider, stripe_id, after)
        params = {**params, **items}
    key = _key(session, row, label)
    if label == "pause":
        # who asked, on Stripe's subscription with the request: if Stripe's answer is lost, its webhook says whose
        # pause it reports (``pause_asked_by``)
        params = {**params, "metadata": {PAUSE_KEY: f"{after.paused_by or 'creator'}:{key}"}}
    try:
        if method == "delete":
            answer = provider.cancel_subscription(stripe_id, params, idempotency_key=key)
        else:
            answer = provider.update_subscription(stripe_id, params, idempotency_key=key)
    except ProviderRefused as exc:
        _remember_refusal(session, row, key, exc)
        raise
    charged = (
        _charged(answer, after.currency, tax_product)
        if params.get("proration_behavior") == INVOICED
        else None
    )
    repository.add(session, _row(row, key, SENT, label, {
        "request": params, "status": _str(answer.get("status")), "latest_invoice": _id(answer.get("latest_invoice")),
        "charged": None if charged is None else {"net": charged[0].amount, "tax": charged[1].amount},
    }))  # fmt: skip
    return charged


def undo_downgrade(
    session: Session, row: SubscriptionRow, *, before: Subscription, after: Subscription, at: datetime,
    provider: StripeProvider | None,
) -> None:  # fmt: skip
    """Put Stripe's price back after a downgrade made there (``change_in_stripe``) whose credit Stripe then did not
    refund: the caller's unit of work is rolling back and the downgrade fails here, so it must not stand in Stripe
    either (Stripe would go on charging the cheaper plan while we hold the dearer one). The price goes back without
    proration, under a key of its own; once the rollback is done, the change's key and the undo's are remembered as
    spent, so that asking again sends Stripe a new key (a replay of the first answer would change nothing there)."""
    if provider is None or not managed_by_stripe(session, row) or after.plan == before.plan:
        return
    change = _change(before, after, at)
    if change is None or change[2].get("proration_behavior") != "none":
        return  # not a downgrade made in Stripe without proration: nothing to put back
    stripe_id = row.provider_subscription_id
    assert stripe_id is not None
    n = _sequence(session, row)  # the change's own key (recorded in this unit of work) is the one before
    done_key, undo_key = _key_at(row, n - 1, change[0]), _key_at(row, n, f"undo-{change[0]}")
    outcome = "undone"
    try:
        items, _tax = _items(session, row, provider, stripe_id, before)
        params = {"metadata": {PLAN_KEY: before.plan}, "proration_behavior": "none", **items}
        provider.update_subscription(stripe_id, params, idempotency_key=undo_key)
    except (CheckoutError, ProviderError, ProviderRefused) as exc:
        # Stripe keeps the cheaper price: its next invoice is refused here as an amount_mismatch, visibly
        outcome = f"undo_failed:{getattr(exc, 'code', 'error')}"
    ws = row.workspace_id
    spent = [_row(row, done_key, REFUSED, outcome, {"undo_key": undo_key}),
             _row(row, undo_key, REFUSED, outcome, {"undoes": done_key})]  # fmt: skip

    def store(db: Database) -> None:
        with db.write() as s:
            for stored in spent:
                if repository.payment_event(s, STRIPE, stored.provider_event_id) is None:
                    stored.workspace_id = ws
                    repository.add(s, stored)

    after_rollback(session, store)


def pause_asked_by(session: Session, row: SubscriptionRow, metadata: Mapping[str, str]) -> PausedBy | None:
    """Who asked for the pause Stripe reports (``customer.subscription.updated`` with ``pause_collection`` set):
    the buyer when its metadata names a buyer's pause asked for here whose answer was lost (its key was never
    recorded: recorded now, as the pause it is), else ``None`` (the reporter's: a pause made in Stripe's
    dashboard is the creator's, and a marker left from a pause recorded already names none)."""
    who, _, key = str(metadata.get(PAUSE_KEY, "")).partition(":")
    if who != "buyer" or not key.startswith(f"offerloop-sub-{row.id}-") or not key.endswith("-pause"):
        return None
    if repository.payment_event(session, STRIPE, key) is not None:
        return None  # that pause was recorded (and maybe lifted since): this one was made in the dashboard
    repository.add(session, _row(row, key, SENT, "reported", {"request": {"pause_collection": "void"},
                                                              "reported": True}))  # fmt: skip
    return "buyer"


def invoiced_by_change(session: Session, row: SubscriptionRow, invoice_id: str) -> bool:
    """Whether ``invoice_id`` is the invoice of a change made here, whose charge was booked with it."""
    return any(
        e.type == SENT and _dict(_dict(e.payload).get("data")).get("object", {}).get("latest_invoice") == invoice_id
        and _dict(_dict(e.payload).get("data")).get("object", {}).get("charged") is not None
        for e in repository.payment_events_of(session, row.workspace_id, row.order_id, limit=10_000)
    )  # fmt: skip


def _charged(
    answer: dict[str, Any], currency: str, tax_product: str | None
) -> tuple[Money, Money, str | None]:
    """What Stripe charged at once for an upgrade: its invoice of the change (``latest_invoice``, expanded,
    billing reason ``subscription_update``), split by line into the tax item's part and the rest; nothing when
    the latest invoice is an older one (Stripe invoiced nothing for the change)."""
    invoice = _dict(answer.get("latest_invoice"))
    zero = Money(currency, 0)
    if invoice.get("billing_reason") != "subscription_update":
        return zero, zero, None
    total = _int(invoice.get("amount_paid"))
    if total is None or invoice.get("status") != "paid":
        raise ProviderError(
            f"Stripe's invoice {invoice.get('id')} of the plan change is {invoice.get('status')}, not paid: nothing "
            "is booked", details={"provider": STRIPE, "invoice": invoice.get("id"), "status": invoice.get("status")},
        )  # fmt: skip
    tax = 0
    lines = _dict(invoice.get("lines")).get("data")
    for line in lines if isinstance(lines, list) else []:
        if not isinstance(line, dict):
            continue
        details = _dict(_dict(line.get("pricing")).get("price_details"))  # API 2025-03-31 and later
        product = _id(details.get("product")) or _id(_dict(line.get("price")).get("product"))
        if tax_product is not None and product == tax_product:
            tax += _int(line.get("amount")) or 0
    iso = currencies.from_provider_units(STRIPE, currency, total)
    iso_tax = currencies.from_provider_units(STRIPE, currency, tax)
    paid_by = _id(invoice.get("payment_intent")) or _str(invoice.get("id"))
    return Money(currency, iso - iso_tax), Money(currency, iso_tax), paid_by


def _change(
    before: Subscription, after: Subscription, at: datetime
) -> tuple[str, str, dict[str, Any]] | None:
    """(key label, ``update``/``delete``/``items``, parameters) of the Stripe request for the change."""
    if after.state == "canceled" and before.state != "canceled":
        return "cancel", "delete", {"prorate": False, "invoice_now": False}
    if after.plan != before.plan:
        if after.interval != before.interval:
            raise CheckoutError(
                f"a Stripe subscription cannot move from a {before.interval}ly to a {after.interval}ly plan here: "
                "Stripe would charge a new period at once; cancel it and subscribe to the new plan",
                code="provider_unsupported",
            )  # fmt: skip
        params: dict[str, Any] = {"metadata": {PLAN_KEY: after.plan}}
        if before.state == "trialing" or after.amount < before.amount:
            params["proration_behavior"] = "none"
        else:
            params.update(proration_behavior=INVOICED, proration_date=int(at.timestamp()),
                          payment_behavior="error_if_incomplete")  # fmt: skip
        digest = hashlib.sha256(f"{after.plan}\n{int(at.timestamp())}".encode()).hexdigest()[:16]
        return f"plan-{digest}", "items", params
    if after.cancel_at_period_end and not before.cancel_at_period_end:
        return "cancel-at-period-end", "update", {"cancel_at_period_end": True}
    if before.cancel_at_period_end and not after.cancel_at_period_end:
        return "keep", "update", {"cancel_at_period_end": False}
    if after.state == "paused" and before.state != "paused":
        return "pause", "update", {"pause_collection": {"behavior": "void"}}
    if before.state == "paused" and after.state != "paused":
        return "unpause", "update", {"pause_collection": ""}
    return None


def _items(
    session: Session, row: SubscriptionRow, provider: StripeProvider, stripe_id: str, after: Subscription
) -> tuple[dict[str, Any], str | None]:
    """The ``items`` of a plan change: Stripe's plan item (and recurring tax item) given the new plan's price
    (and its tax), on the products they already sell. Stripe is asked for the items' ids first."""
    current = provider.retrieve_subscription(stripe_id)
    data = _dict(current.get("items")).get("data")
    items = [i for i in data if isinstance(i, dict)] if isinstance(data, list) else []
    first = repository.order(session, row.workspace_id, row.order_id)
    tax_percent = first.tax_percent if first is not None else "0"
    cur = after.currency.lower()
    plan_items: list[tuple[dict[str, Any], str | None]] = []
    tax_items: list[tuple[dict[str, Any], str | None]] = []
    for item in items:
        price = _dict(item.get("price"))
        product = price.get("product")
        name = _str(_dict(product).get("name")) if isinstance(product, dict) else None
        (tax_items if name == TAX_ITEM else plan_items).append((item, _id(product)))
    if (
        len(plan_items) != 1
        or len(tax_items) > 1
        or any(i.get("quantity") not in (None, 1) for i, _ in plan_items)
    ):
        raise CheckoutError(
            f"Stripe subscription {stripe_id} has items offerloop did not create (one plan item, at most one tax "
            "item): change its plan in Stripe's dashboard", code="provider_unsupported",
        )  # fmt: skip
    tax = payments.recurring_tax(after.amount, after.currency, tax_percent)
    out: list[dict[str, Any]] = []
    wanted = [(plan_items[0], after.amount)] + [(t, tax) for t in tax_items]
    for (item, product), amount in wanted:
        unit = currencies.to_provider_units(STRIPE, after.currency, amount)
        if unit is None or product is None or _str(item.get("id")) is None:
            raise CheckoutError(
                f"Stripe subscription {stripe_id}: its item {item.get('id')} cannot take {amount} {after.currency}",
                code="provider_unsupported",
            )  # fmt: skip
        out.append({"id": item["id"], "price_data": {"currency": cur, "product": product, "unit_amount": unit,
                                                    "recurring": {"interval": after.interval}}})  # fmt: skip
    return {"items": out, "expand": ["latest_invoice"]}, tax_items[0][1] if tax_items else None


def _key(session: Session, row: SubscriptionRow, label: str) -> str:
    """The idempotency key of the subscription's next change: its changes Stripe accepted and refused so far
    number it, the change names it. A retry after an unknown outcome (nothing was recorded) sends the same
    key and gets Stripe's first answer back; a key Stripe refused is never sent again."""
    return _key_at(row, _sequence(session, row), label)


def _key_at(row: SubscriptionRow, n: int, label: str) -> str:
    return f"offerloop-sub-{row.id}-{n}-{label}"


def _sequence(session: Session, row: SubscriptionRow) -> int:
    """How many changes of the subscription Stripe accepted or refused so far (spent keys)."""
    prefix = f"offerloop-sub-{row.id}-"
    return sum(
        1
        for e in repository.payment_events_of(session, row.workspace_id, row.order_id, limit=10_000)
        if e.type in (SENT, REFUSED) and e.provider_event_id.startswith(prefix)
    )


def _row(row: SubscriptionRow, key: str, kind: str, outcome: str, data: dict[str, Any]) -> PaymentEventRow:
    now = utcnow()
    return PaymentEventRow(
        workspace_id=row.workspace_id, provider=STRIPE, provider_event_id=key, type=kind, order_id=row.order_id,
        payment_ref=None, occurred_at=now, received_at=now, outcome=outcome[:40],
        payload={"id": key, "type": f"offerloop.{kind}", "created": int(now.timestamp()),
                 "data": {"object": {"subscription_id": row.id, "stripe_subscription": row.provider_subscription_id,
                                     **data}}},
    )  # fmt: skip


def _remember_refusal(session: Session, row: SubscriptionRow, key: str, refused: ProviderRefused) -> None:
    """Record, once the caller's unit of work has rolled back, that Stripe refused ``key`` (see ``_key``)."""
    details = dict(refused.details) if isinstance(refused.details, dict) else {}
    stored = _row(
        row, key, REFUSED, str(details.get("code") or "refused"), {**details, "message": refused.message}
    )
    ws = row.workspace_id

    def store(db: Database) -> None:
        with db.write() as s:
            if repository.payment_event(s, STRIPE, key) is None:
                stored.workspace_id = ws
                repository.add(s, stored)

    after_rollback(session, store)
