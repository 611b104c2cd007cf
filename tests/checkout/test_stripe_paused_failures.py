"""Stripe goes on retrying an invoice that was open when collection was paused: its ``invoice.payment_failed``
during the pause is recorded by its ``attempt_count`` (Stripe's count of attempts of that invoice, authoritative),
so a subscription resumed past due shows the attempts Stripe made, not the count from before the pause."""

from __future__ import annotations

from tests.checkout.test_checkout_flow import deliver
from tests.checkout.test_stripe_adversarial import cycle_invoice
from tests.checkout.test_stripe_pause import dashboard, plan
from tests.checkout.test_stripe_refunds import balanced
from tests.checkout.test_stripe_reordered import outcomes
from tests.checkout.test_stripe_subscription_actions import SUB, T0, mailer, state, stripe_client

__all__ = ["mailer", "stripe_client"]


def failed(order: dict, event_id: str, created: int, attempts: int) -> dict:
    payload = cycle_invoice(order, "in_failed", 9900, created)
    payload["id"], payload["type"] = event_id, "invoice.payment_failed"
    payload["data"]["object"].update(status="open", amount_paid=0, amount_due=9900, attempt_count=attempts)
    return payload


def past_due(client, db, secret_headers, write_headers, fake_stripe) -> tuple[dict, dict, int]:
    """The inner circle bought through Stripe, its first renewal's invoice failed once: (order, sub, period end)."""
    order, sub = plan(client, secret_headers, write_headers, fake_stripe, db)
    end = fake_stripe.state.subscriptions[SUB]["current_period_end"]
    assert deliver(client, failed(order, "evt_fail_1", end + 60, 1)).json()["outcome"] == "payment_failed"
    return order, sub, end


def test_failed_attempts_during_a_pause_from_past_due_count_after_the_resume(
    stripe_client, db, secret_headers, write_headers, fake_stripe
):
    client = stripe_client
    order, sub, end = past_due(client, db, secret_headers, write_headers, fake_stripe)
    fake_stripe.state.subscriptions[SUB]["status"] = "past_due"
    assert (
        deliver(client, dashboard(fake_stripe, True, "evt_pause", end - T0 + 3_600)).json()["outcome"]
        == "paused"
    )
    # Stripe's retries of the open invoice go on while collection is paused: attempts 2 and 3 fail
    assert (
        deliver(client, failed(order, "evt_fail_2", end + 86_400, 2)).json()["outcome"] == "failure_recorded"
    )
    assert (
        deliver(client, failed(order, "evt_fail_3", end + 3 * 86_400, 3)).json()["outcome"]
        == "failure_recorded"
    )
    # a redelivery under another id, or an older attempt delivered late, changes nothing
    again = failed(order, "evt_fail_2b", end + 86_400, 2)
    assert deliver(client, again).json()["outcome"] == "failure_already_recorded"
    paused = state(client, secret_headers, sub)
    assert (paused["status"], paused["state"]["failed_attempts"]) == ("paused", 3)
    resumed = dashboard(fake_stripe, False, "evt_resume", end - T0 + 4 * 86_400)
    assert deliver(client, resumed).json()["outcome"] == "resumed"
    back = state(client, secret_headers, sub)
    assert (back["status"], back["state"]["failed_attempts"]) == ("past_due", 3)
    assert outcomes(client, secret_headers, order)["evt_fail_3"] == "failure_recorded"
    balanced(client, secret_headers)


def test_a_past_due_subscriptions_failed_attempts_follow_stripes_count_when_a_failure_event_was_lost(
    stripe_client, db, secret_headers, write_headers, fake_stripe
):
    client = stripe_client
    order, sub, end = past_due(client, db, secret_headers, write_headers, fake_stripe)
    # attempt 2's event is lost: attempt 3's says 3
    assert (
        deliver(client, failed(order, "evt_fail_3", end + 3 * 86_400, 3)).json()["outcome"]
        == "payment_failed"
    )
    assert state(client, secret_headers, sub)["state"]["failed_attempts"] == 3
    balanced(client, secret_headers)
