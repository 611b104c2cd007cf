"""Stripe retries a failed renewal by its own schedule (Smart Retries: up to weeks) and reports when it gives up
(``customer.subscription.deleted``). Its failure reports keep the subscription past due, however many: before,
offerloop's own retry count (three retries) canceled it on Stripe's fourth report and ended the buyer's access,
and the payment one of Stripe's later retries took was then booked on a canceled subscription, access gone."""

from __future__ import annotations

from tests.checkout.test_checkout_flow import deliver
from tests.checkout.test_stripe_adversarial import cycle_invoice
from tests.checkout.test_stripe_paused_failures import failed, past_due
from tests.checkout.test_stripe_refunds import balanced
from tests.checkout.test_stripe_subscription_actions import SUB, echo, mailer, state, stripe_client

__all__ = ["mailer", "stripe_client"]


def test_stripes_failure_reports_keep_a_subscription_past_due_until_a_retry_pays(
    stripe_client, db, secret_headers, write_headers, fake_stripe
):
    client = stripe_client
    order, sub, end = past_due(client, db, secret_headers, write_headers, fake_stripe)
    fake_stripe.state.subscriptions[SUB]["status"] = "past_due"
    for attempt in range(2, 8):  # more reports than offerloop's own schedule has retries
        report = failed(order, f"evt_fail_{attempt}", end + attempt * 86_400, attempt)
        assert deliver(client, report).json()["outcome"] == "payment_failed"
        now = state(client, secret_headers, sub)
        assert (now["status"], now["state"]["failed_attempts"]) == ("past_due", attempt)
        assert now["state"]["next_retry_at"] is None  # Stripe's schedule, not offerloop's
    fake_stripe.state.subscriptions[SUB]["status"] = "active"
    paid = deliver(client, cycle_invoice(order, "in_failed", 9900, end + 9 * 86_400)).json()["outcome"]
    assert paid == "subscription_recovered"
    back = state(client, secret_headers, sub)
    assert (back["status"], back["state"]["failed_attempts"]) == ("active", 0)
    balanced(client, secret_headers)


def test_a_subscription_offerloop_bills_itself_is_still_canceled_after_its_retries(
    stripe_client, db, secret_headers, write_headers, fake_stripe
):
    """The manual provider's schedule is unchanged (tests/subscriptions cover it); here only the Stripe side:
    Stripe's own end of its retries cancels the subscription."""
    client = stripe_client
    _, sub, end = past_due(client, db, secret_headers, write_headers, fake_stripe)
    fake_stripe.state.subscriptions[SUB]["status"] = "canceled"
    gone = {
        "id": "evt_deleted", "object": "event", "type": "customer.subscription.deleted", "created": end + 30 * 86_400,
        "data": {"object": {**fake_stripe.state.subscriptions[SUB], "id": SUB, "object": "subscription"}},
    }  # fmt: skip
    assert deliver(client, gone).json()["outcome"] == "canceled"
    assert state(client, secret_headers, sub)["status"] == "canceled"
    balanced(client, secret_headers)


def test_stripe_giving_up_with_the_subscription_left_unpaid_ends_access(
    stripe_client, db, secret_headers, write_headers, fake_stripe
):
    """Stripe's other end of its retries (its setting): the subscription stays, status ``unpaid``, no more
    attempts. Past due kept access while Stripe retried; unpaid ends it."""
    client = stripe_client
    order, sub, end = past_due(client, db, secret_headers, write_headers, fake_stripe)
    for attempt in (2, 3, 4, 5):
        assert (
            deliver(client, failed(order, f"evt_fail_{attempt}", end + attempt * 86_400, attempt)).status_code
            == 200
        )
    assert state(client, secret_headers, sub)["status"] == "past_due"
    fake_stripe.state.subscriptions[SUB]["status"] = "unpaid"
    gave_up = echo(fake_stripe, "customer.subscription.updated", "evt_unpaid", end + 20 * 86_400)
    gave_up["data"]["previous_attributes"] = {"status": "past_due"}
    assert deliver(client, gave_up).json()["outcome"] == "canceled_unpaid"
    assert deliver(client, gave_up).json()["outcome"] == "duplicate"
    assert state(client, secret_headers, sub)["status"] == "canceled"
    balanced(client, secret_headers)
