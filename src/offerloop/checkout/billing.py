"""The orders of a subscription: each renewal or plan-change charge is an order of its own, booked by the
rule checkouts follow; a failed renewal is booked back, a downgrade's credit refunded from paid orders."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from offerloop.checkout import payments, repository
from offerloop.checkout.exceptions import CheckoutError
from offerloop.checkout.orders import book_sale, load, refund_order
from offerloop.checkout.stripe_events import PROVIDER as STRIPE
from offerloop.checkout.stripe_provider import StripeProvider
from offerloop.core.ids import new_id
from offerloop.core.money import Money
from offerloop.ledger import service as ledger_service
from offerloop.models import Order
from offerloop.models import Subscription as SubscriptionRow


def collects_itself(session: Session, row: SubscriptionRow, first: Order | None = None) -> bool:
    """Whether we bill this subscription ourselves (manual provider). Stripe renews, retries and cancels its
    own subscriptions and reports each by webhook: acting on them too would charge a period twice."""
    first = first or repository.order(session, row.workspace_id, row.order_id)
    return first is not None and first.provider == "manual" and row.provider_subscription_id is None


def charge(
    session: Session, row: SubscriptionRow, amount: Money, at: datetime, reason: str, tax: Money | None = None,
    prorations: tuple[Money, Money] | None = None,
) -> Order:  # fmt: skip
    """A renewal (or a plan change's charge) is an order of its own, paid, on the buyer's record and ledger,
    booked by the same rule as a checkout: tax and platform fee at the rates of the subscription's order (the
    tax a provider charged with it, ``tax``, when it said). ``prorations`` (net, tax; signed) are the prorations
    of a plan change the provider charged on the same invoice: a charge is a line of its own (reason
    ``proration``), a credit the line's discount, so the order is what the invoice charged. Returns the order."""
    first = repository.order(session, row.workspace_id, row.order_id)
    tax_percent = first.tax_percent if first else "0"
    tax = amount.percent(tax_percent) if tax is None else tax
    extra, extra_tax = (prorations[0].amount, prorations[1].amount) if prorations else (0, 0)
    credit = max(0, -extra)
    line = {"offer_key": row.offer_key, "title": row.offer_key, "role": "offer", "unit_amount": amount.amount,
            "quantity": 1, "subtotal": amount.amount, "discount": credit, "total": amount.amount - credit,
            "subscription_id": row.id, "reason": reason}  # fmt: skip
    lines = [line]
    if extra > 0:
        lines.append({**line, "title": f"{row.offer_key} (proration)", "unit_amount": extra, "subtotal": extra,
                      "discount": 0, "total": extra, "reason": "proration"})  # fmt: skip
    subtotal, total_tax = amount.amount + max(0, extra), tax.amount + extra_tax
    if credit > amount.amount or total_tax < 0:
        raise CheckoutError(
            f"a credit of {credit} exceeds the {amount.amount} it is taken from", code="charge_mismatch"
        )
    order = Order(
        id=new_id("ord"), workspace_id=row.workspace_id, buyer_id=row.buyer_id, status="paid",
        provider=first.provider if first else "manual", currency=amount.currency, subtotal=subtotal,
        discount=credit, tax=total_tax, total=subtotal - credit + total_tax, refunded=0, coupon=None, created_at=at,
        paid_at=at, updated_at=at, tax_percent=tax_percent,
        platform_fee_percent=first.platform_fee_percent if first else "0", lines=lines,
    )  # fmt: skip
    repository.add(session, order)
    repository.flush(session)
    book_sale(session, order, None, at)
    return order


def orders_of_subscription(session: Session, row: SubscriptionRow) -> list[Order]:
    """The subscription's orders, newest first: the checkout that started it and every charge since."""
    mine = [o for o in repository.orders_of(session, row.workspace_id, row.buyer_id)
            if o.id == row.order_id or any(line.get("subscription_id") == row.id for line in o.lines)]  # fmt: skip
    return sorted(mine, key=lambda o: (o.created_at, o.id), reverse=True)


def renewal_unpaid(
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
    for order in orders_of_subscription(session, row):
        renewal = any(line.get("reason") in ("renewal", "first_period") for line in order.lines)
        if renewal and order.status == "paid" and order.refunded == 0 and order.created_at >= start:
            refund_order(session, order, None, actor=actor, at=at, reason="renewal unpaid", end_access=False,
                         status="unpaid")  # fmt: skip
            return


def renewal_recovered(session: Session, row: SubscriptionRow, at: datetime) -> None:
    for order in orders_of_subscription(session, row):
        if order.status == "unpaid":
            order.status, order.refunded, order.paid_at, order.updated_at = "paid", 0, at, at
            book_sale(session, order, None, at)
            return


def credit(
    session: Session, row: SubscriptionRow, amount: Money, at: datetime, actor: str,
    provider: StripeProvider | None = None,
) -> None:  # fmt: skip
    """Unused time given back on a downgrade, by the rule charges follow: the credit plus its tax, with the
    platform fee returned in proportion, taken from the subscription's paid orders (newest first).

    What is booked as given back is what went back. A manual order's money moves outside offerloop: its
    part is booked directly. A Stripe-paid order's part is refunded in Stripe first (``POST /v1/refunds``,
    the one-off refund's path: ``payments.refund_in_stripe``, its row locked across the call) and booked with
    Stripe's refund id. If Stripe refuses (RefundRefused, 409), fails or cannot be reached (ProviderError,
    502), or is not configured here (CheckoutError ``provider_not_configured``, 409), the error goes up
    through the plan change, whose unit of work rolls back: the downgrade fails and nothing changes (plan,
    grants, books). That is chosen over booking a credit "still owed" for a job to pay later because the
    creator asking is there to see the answer and retry, nothing is promised that was not paid, and the
    order stays the one record of what was returned. (Parts refunded in Stripe before a later part failed
    were returned: their ``charge.refunded`` webhook books them as plain refunds once the rollback lets it.)

    A plan change Stripe itself reported (``customer.subscription.updated``, actor ``stripe``) refunds and
    books nothing: Stripe prorates it on the buyer's next invoice (its customer balance), which is booked
    when that invoice is paid."""
    first = repository.order(session, row.workspace_id, row.order_id)
    if actor == STRIPE and first is not None and first.provider == STRIPE:
        return
    tax = amount.percent(first.tax_percent if first else "0")
    want, tax_want = amount.amount + tax.amount, tax.amount
    for order in orders_of_subscription(session, row):
        if want <= 0:
            return
        if order.status not in ("paid", "partially_refunded") or order.total <= 0:
            continue
        order = load(
            session, row.workspace_id, order.id, lock=True
        )  # as the one-off refund: Stripe's webhook waits
        left = ledger_service.refundable(
            session=session, workspace_id=row.workspace_id, order_id=order.id
        ).amount
        part = min(want, left)
        if part <= 0:
            continue
        part_tax = min(tax_want, tax_want * part // want)
        why = "plan downgraded: credit for unused time"
        if order.provider == STRIPE:
            payments.refund_in_stripe(session, order, part, provider=provider, actor=actor, at=at, reason=why,
                                      tax_part=part_tax, end_access=False)  # fmt: skip
        else:
            refund_order(
                session, order, part, actor=actor, at=at, reason=why, tax_part=part_tax, end_access=False
            )
        want, tax_want = want - part, tax_want - part_tax
