"""Stripe subscriptions renew by Stripe's webhooks, never by our due work: the same subscription, renewed by
its signed `invoice.paid`, is charged and booked once per period however far the due-work clock runs."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select
from tests.checkout.conftest import fake_stripe, fake_stripe_server
from tests.checkout.test_checkout_flow import buy, deliver, stripe_client
from tests.checkout.test_money_properties import Sim, booked_for_buyer, fresh_workspace

from offerloop.checkout import due
from offerloop.checkout import tasks as _tasks  # noqa: F401  (registers the due-work kinds)
from offerloop.jobs import runner
from offerloop.models import Job, Subscription

__all__ = ["fake_stripe", "fake_stripe_server", "stripe_client"]
KINDS = (due.PERIOD_END, due.PAYMENT_RETRY, due.HOLD_EXPIRY, due.SWEEP)


def test_a_stripe_renewal_is_booked_once_whatever_the_due_work_clock_does(stripe_client, db) -> None:
    client = stripe_client
    secret, _ = fresh_workspace(client, db, 0)
    order = buy(client, secret, "inner-circle", provider="stripe")
    sim = Sim(order)
    sim.subscribe("inner-circle", 0)
    assert sim.period_end is not None
    sim._invoice(
        "invoice.paid", "in_renewal", "subscription_cycle", order["total"], int(sim.period_end.timestamp())
    )
    for payload in sim.events:
        assert deliver(client, payload).json()["outcome"] in ("paid", "already_paid", "subscription_renewed")
    assert booked_for_buyer(client, db, secret, order) == 2 * order["total"]

    with db.read() as session:
        (sid,) = session.scalars(select(Subscription.id).where(Subscription.order_id == order["id"]))
        assert (
            session.scalars(select(Job.kind).where(Job.key.endswith(f"/{sid}"))).all() == []
        )  # nothing scheduled
    # The renewed period and the next one both end; Stripe's next invoice has not come: nothing is charged.
    later = sim.period_end + timedelta(days=70)
    runner.ensure_recurring(db, now=later, only=(due.SWEEP,))
    while runner.run_due(db, owner="w1", now=later, only=KINDS, limit=50):
        pass
    assert booked_for_buyer(client, db, secret, order) == 2 * order["total"]
    with db.read() as session:
        assert (
            session.scalars(select(Job.kind).where(Job.key.endswith(f"/{sid}"))).all() == []
        )  # not even by the sweep
