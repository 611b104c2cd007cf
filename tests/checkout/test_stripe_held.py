"""Cycle invoices held for a plan change (``held_plan_change``) whose ``customer.subscription.updated`` was lost or
arrived stale are released by a later event of the subscription that shows Stripe on the new plan; a later cycle
invoice while one is held is held too, and both are booked in the order they happened; prorations that sum to 0
are a plan change all the same. What Stripe charged is booked once, and the ledger balances.

Driven over HTTP against the loopback Stripe stand-in, with signed webhooks."""

from __future__ import annotations

from datetime import UTC, datetime

from tests.checkout.test_checkout_flow import deliver
from tests.checkout.test_stripe_adversarial import cycle_invoice
from tests.checkout.test_stripe_refunds import balanced
from tests.checkout.test_stripe_reordered import outcomes, renewals, upgraded_in_dashboard
from tests.checkout.test_stripe_subscription_actions import (
    SUB,
    act,
    at,
    mailer,
    state,
    stripe_client,
    stripe_plan,
)

__all__ = ["mailer", "stripe_client"]

MONTH = 30 * 86_400


def _iso(ts: int) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat().replace("+00:00", "Z")


def _booked(client, headers, order: dict) -> list[tuple[str, int, list[tuple[str, int]]]]:
    """(payment, total, lines) of each renewal order, in the order they were booked."""
    return [(o["provider_ref"], o["total"], [(line["reason"], line["total"]) for line in o["lines"]])
            for o in sorted(renewals(client, headers, order), key=lambda o: o["created_at"])]  # fmt: skip


def test_a_stale_plan_change_event_releases_the_invoice_held_for_it(
    stripe_client, secret_headers, write_headers, fake_stripe
):
    client = stripe_client
    order, sub = stripe_plan(client, secret_headers, write_headers, fake_stripe, "membership-monthly", 3900)
    late = upgraded_in_dashboard(fake_stripe)  # the dashboard's upgrade a day in: its event is delayed
    # the creator pauses and resumes here afterwards: the subscription's last change is newer than the upgrade's
    assert act(client, secret_headers, sub, "pause", at=at(2 * 86_400)).status_code == 200
    assert act(client, secret_headers, sub, "resume", at=at(3 * 86_400)).status_code == 200
    end = fake_stripe.state.subscriptions[SUB]["current_period_end"]
    paid = cycle_invoice(order, "in_up", 12900, end + 60, [(9900, False), (3000, True)])
    assert deliver(client, paid).json()["outcome"] == "held_plan_change"
    # the upgrade's event arrives stale (older than the resume): it still shows Stripe on the plan the held invoice
    # charged for, so the change is applied and the invoice booked, once
    assert deliver(client, late).json()["outcome"] == "ignored_stale,plan_changed"
    assert outcomes(client, secret_headers, order)["evt_in_up"] == "subscription_renewed"
    assert deliver(client, paid).json()["outcome"] == "duplicate"
    assert _booked(client, secret_headers, order) == [
        ("pi_in_up", 12900, [("renewal", 9900), ("proration", 3000)])
    ]
    after = state(client, secret_headers, sub)
    assert (after["offer_key"], after["status"], after["state"]["current_period_start"]) == (
        "inner-circle", "active", _iso(end))  # fmt: skip
    balanced(client, secret_headers)


def test_a_second_cycle_invoice_at_the_new_price_is_held_too_and_releases_both_in_order(
    stripe_client, secret_headers, write_headers, fake_stripe
):
    """The upgrade's event is lost for good: the next cycle invoice, at the new plan's price, is the evidence."""
    client = stripe_client
    order, sub = stripe_plan(client, secret_headers, write_headers, fake_stripe, "membership-monthly", 3900)
    upgraded_in_dashboard(fake_stripe)  # never delivered
    end = fake_stripe.state.subscriptions[SUB]["current_period_end"]
    first = cycle_invoice(order, "in_up", 12900, end + 60, [(9900, False), (3000, True)])
    assert deliver(client, first).json()["outcome"] == "held_plan_change"
    assert renewals(client, secret_headers, order) == []
    second = cycle_invoice(order, "in_next", 9900, end + MONTH + 60, [(9900, False)])
    assert deliver(client, second).json()["outcome"] == "subscription_renewed"
    assert outcomes(client, secret_headers, order)["evt_in_up"] == "subscription_renewed"
    assert _booked(client, secret_headers, order) == [
        ("pi_in_up", 12900, [("renewal", 9900), ("proration", 3000)]),
        ("pi_in_next", 9900, [("renewal", 9900)]),
    ]
    after = state(client, secret_headers, sub)
    assert (after["offer_key"], after["state"]["amount"]) == ("inner-circle", 9900)
    assert after["state"]["current_period_start"] > _iso(end)  # two periods renewed, in order
    assert deliver(client, second).json()["outcome"] == "duplicate"
    balanced(client, secret_headers)


def test_a_second_cycle_invoice_of_no_plans_price_waits_for_the_change_then_is_refused_visibly(
    stripe_client, secret_headers, write_headers, fake_stripe
):
    """While one is held, a later cycle invoice is held too (it may be the change's next period); once the change
    applies, the first is booked and the second, which is not the new plan's amount either, is amount_mismatch."""
    client = stripe_client
    order, sub = stripe_plan(client, secret_headers, write_headers, fake_stripe, "membership-monthly", 3900)
    updated = upgraded_in_dashboard(fake_stripe)
    end = fake_stripe.state.subscriptions[SUB]["current_period_end"]
    first = cycle_invoice(order, "in_up", 12900, end + 60, [(9900, False), (3000, True)])
    assert deliver(client, first).json()["outcome"] == "held_plan_change"
    second = cycle_invoice(order, "in_odd", 9950, end + MONTH + 60)  # no plan costs 9950
    assert deliver(client, second).json()["outcome"] == "held_plan_change"
    assert renewals(client, secret_headers, order) == []
    assert deliver(client, updated).json()["outcome"] == "plan_changed"
    assert {k: v for k, v in outcomes(client, secret_headers, order).items() if k.startswith("evt_in_")} == {
        "evt_in_up": "subscription_renewed", "evt_in_odd": "amount_mismatch"}  # fmt: skip
    assert _booked(client, secret_headers, order) == [
        ("pi_in_up", 12900, [("renewal", 9900), ("proration", 3000)])
    ]
    assert state(client, secret_headers, sub)["offer_key"] == "inner-circle"
    balanced(client, secret_headers)


def test_prorations_that_sum_to_zero_are_a_plan_change_held_until_it_applies(
    stripe_client, secret_headers, write_headers, fake_stripe
):
    client = stripe_client
    order, sub = stripe_plan(client, secret_headers, write_headers, fake_stripe, "membership-monthly", 3900)
    updated = upgraded_in_dashboard(fake_stripe)
    end = fake_stripe.state.subscriptions[SUB]["current_period_end"]
    paid = cycle_invoice(order, "in_zero", 9900, end + 60, [(9900, False), (4000, True), (-4000, True)])
    assert deliver(client, paid).json()["outcome"] == "held_plan_change"
    assert renewals(client, secret_headers, order) == []
    assert deliver(client, updated).json()["outcome"] == "plan_changed"
    assert outcomes(client, secret_headers, order)["evt_in_zero"] == "subscription_renewed"
    assert _booked(client, secret_headers, order) == [("pi_in_zero", 9900, [("renewal", 9900)])]
    assert state(client, secret_headers, sub)["offer_key"] == "inner-circle"
    balanced(client, secret_headers)
