"""The checkout domain's public face, the only module other domains call: orders (``checkout.orders``),
payments and provider webhooks (``checkout.payments``), fulfilment (``checkout.fulfilment``), the orders of
subscriptions (``checkout.billing``) and the buyer behind a checkout (``checkout.buyers``)."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from offerloop.checkout import billing, buyers, orders, stripe_subscriptions
from offerloop.checkout.buyers import buyer_for
from offerloop.checkout.exceptions import OrderNotFound
from offerloop.checkout.fulfilment import (
    FULFIL_KIND,
    MAX_ATTEMPTS,
    retry_task,
    run_fulfilment,
    run_task,
    task_failed,
)
from offerloop.checkout.orders import (
    HOLD_MINUTES,
    attach_session,
    begin,
    cancel_pending,
    get_order,
    hold_expiry_due,
    list_orders,
    mark_paid,
)
from offerloop.checkout.payments import (
    ProviderCharge,
    WebhookTerms,
    checkout,
    event_seen,
    handle_payment_event,
    payment_events,
    provider_charge,
    recurring_tax,
    refund,
)
from offerloop.checkout.schemas import OrderRead
from offerloop.checkout.stripe_provider import StripeConfig, StripeProvider
from offerloop.config import Settings
from offerloop.core.money import Money
from offerloop.models import Order
from offerloop.models import Subscription as SubscriptionRow
from offerloop.subscriptions import service as subscriptions_service
from offerloop.subscriptions.lifecycle import Subscription as Lifecycle

__all__ = [
    "FULFIL_KIND",
    "HOLD_MINUTES",
    "MAX_ATTEMPTS",
    "ProviderCharge",
    "StripeProvider",
    "WebhookTerms",
    "attach_session",
    "begin",
    "buyer_event",
    "buyer_for",
    "cancel_pending",
    "change_in_provider",
    "charge_subscription",
    "checkout",
    "collects_itself",
    "credit_subscription",
    "event_seen",
    "get_order",
    "handle_payment_event",
    "hold_expiry_due",
    "list_orders",
    "mark_paid",
    "order_tax_percent",
    "payment_events",
    "provider_charge",
    "read_order",
    "recurring_tax",
    "refund",
    "renewal_recovered",
    "renewal_unpaid",
    "retry_task",
    "run_fulfilment",
    "run_task",
    "stripe_provider",
    "subscription_orders",
    "sweep_due",
    "task_failed",
    "undo_in_provider",
]

SWEEP_LIMIT = subscriptions_service.SWEEP_LIMIT


def stripe_provider(settings: Settings) -> StripeProvider | None:
    """The Stripe account the settings configure (None without its API key and webhook secret)."""
    if not settings.stripe_api_key or not settings.stripe_webhook_secret:
        return None
    return StripeProvider(StripeConfig(api_key=settings.stripe_api_key, webhook_secret=settings.stripe_webhook_secret,
                                       api_base=settings.stripe_api_base))  # fmt: skip


def sweep_due(*, session: Session, limit: int = SWEEP_LIMIT) -> int:
    """Enqueue the due work whose job is missing (rows from before due work existed, an enqueue lost with a
    database restored from backup): subscriptions' period ends and retries, drop holds' expiry. Idempotent;
    returns how many objects it scheduled."""
    return subscriptions_service.sweep_due(session=session, limit=limit) + orders.schedule_missing_holds(
        session=session, limit=limit
    )


# -- for the invoices domain: an order as stored, and the orders of a subscription -----------------------


def read_order(*, session: Session, workspace_id: str, order_id: str) -> OrderRead:
    """The order as stored (no fulfilment, no upsells); OrderNotFound when the workspace has none by that id."""
    return orders.order_read(orders.load(session, workspace_id, order_id))


def order_named_by(*, session: Session, workspace_id: str, order_id: object) -> OrderRead | None:
    """The order an event's property names (a consumer reading ``properties.order_id``), or None when the value
    is not an order id of the workspace's: events can be tracked by anyone, so a made-up id is no order."""
    if not isinstance(order_id, str) or not order_id or len(order_id) > 40:
        return None
    try:
        return read_order(session=session, workspace_id=workspace_id, order_id=order_id)
    except OrderNotFound:
        return None


def order_tax_percent(*, session: Session, workspace_id: str, order_id: str) -> str:
    """The tax rate (percent) the order was charged at (not part of its read model)."""
    return orders.load(session, workspace_id, order_id).tax_percent or "0"


def subscription_orders(*, session: Session, workspace_id: str, subscription_id: str) -> list[OrderRead]:
    """The subscription's orders, newest first: the checkout that started it and every charge since
    (SubscriptionNotFound when the workspace has no such subscription)."""
    row = subscriptions_service.row_of(session, workspace_id, subscription_id)
    return [orders.order_read(o) for o in billing.orders_of_subscription(session, row)]


# -- for the subscriptions domain: the buyer's record and the orders of a subscription ------------------


def buyer_event(
    session: Session, workspace_id: str, buyer_id: str, name: str, props: Mapping[str, Any], message_id: str
) -> None:
    """Append a track event to the buyer's record (stored once by ``message_id``)."""
    buyers.event(session, workspace_id, buyer_id, name, dict(props), message_id)


def collects_itself(*, session: Session, row: SubscriptionRow, first: Order | None = None) -> bool:
    """Whether we bill the subscription ourselves (manual provider) rather than its provider."""
    return billing.collects_itself(session, row, first)


def charge_subscription(
    *,
    session: Session,
    row: SubscriptionRow,
    amount: Money,
    at: datetime,
    reason: str,
    tax: Money | None = None,
    provider_ref: str | None = None,
    prorations: tuple[Money, Money] | None = None,
) -> None:
    """A renewal or plan-change charge: a paid order of its own, booked like a checkout (with ``tax``, the tax
    the provider charged with it, when it said, ``provider_ref``, the provider's payment of it, and
    ``prorations``, a plan change's prorations the provider charged with a renewal: see ``billing.charge``)."""
    order = billing.charge(session, row, amount, at, reason, tax, prorations)
    if provider_ref:
        order.provider_ref = provider_ref


def change_in_provider(
    *, session: Session, row: SubscriptionRow, before: Lifecycle, after: Lifecycle, at: datetime,
    provider: StripeProvider | None,
) -> tuple[Money, Money, str | None] | None:  # fmt: skip
    """A change asked for here to a subscription Stripe bills is made in Stripe first (see
    ``checkout.stripe_subscriptions``); raises (409/502) when Stripe does not make it, so nothing changes here.
    Returns what Stripe charged for it at once (net, tax, its payment) when it invoiced the change: what is booked."""
    return stripe_subscriptions.change_in_stripe(
        session, row, before=before, after=after, at=at, provider=provider
    )


def undo_in_provider(
    *, session: Session, row: SubscriptionRow, before: Lifecycle, after: Lifecycle, at: datetime,
    provider: StripeProvider | None,
) -> None:  # fmt: skip
    """A downgrade made in Stripe whose credit Stripe did not refund is put back there (the caller is failing
    and rolling back): see ``checkout.stripe_subscriptions.undo_downgrade``."""
    stripe_subscriptions.undo_downgrade(session, row, before=before, after=after, at=at, provider=provider)


def lock_orders_of_subscription(*, session: Session, row: SubscriptionRow) -> None:
    """Lock the subscription's orders (by id) before its own row is locked: the order a lock is taken in
    everywhere a transaction holds both (a payment provider's webhook locks its order, then the subscription),
    so a plan change that will refund from those orders cannot deadlock with such a webhook on PostgreSQL."""
    for order in sorted(billing.orders_of_subscription(session, row), key=lambda o: o.id):
        orders.load(session, row.workspace_id, order.id, lock=True)


def credit_subscription(
    *, session: Session, row: SubscriptionRow, amount: Money, at: datetime, actor: str,
    provider: StripeProvider | None = None,
) -> None:  # fmt: skip
    """A downgrade's credit for unused time, refunded from the subscription's paid orders (a Stripe-paid
    order's part in Stripe first, through ``provider``: see ``billing.credit``)."""
    billing.credit(session, row, amount, at, actor, provider)


def renewal_unpaid(
    *, session: Session, row: SubscriptionRow, period: tuple[datetime | None, datetime | None], at: datetime,
    actor: str,
) -> None:  # fmt: skip
    """The current period's charge failed: its renewal order is booked back and marked unpaid."""
    billing.renewal_unpaid(session, row, period, at, actor)


def renewal_recovered(*, session: Session, row: SubscriptionRow, at: datetime) -> None:
    """A past-due subscription's payment went through: its unpaid renewal order is booked again."""
    billing.renewal_recovered(session, row, at)
