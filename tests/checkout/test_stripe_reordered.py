"""Stripe's webhooks in any order, and pauses Stripe's dashboard makes in any state: nothing Stripe charged is lost
or booked twice, access follows what was paid, and a pause stays the pause of whoever asked for it.

Driven over HTTP against the loopback Stripe stand-in (``FakeStripeServer``), with signed webhooks."""

from __future__ import annotations

import time
from datetime import UTC, datetime

from tests.checkout.test_checkout_flow import buy, deliver, setup
from tests.checkout.test_stripe_adversarial import cycle_invoice, orders
from tests.checkout.test_stripe_money import invoice_event, session_event, subscription_updated
from tests.checkout.test_stripe_pause import access_ends, dashboard, plan, when
from tests.checkout.test_stripe_provider import FakeStripeServer
from tests.checkout.test_stripe_refunds import balanced, ledger
from tests.checkout.test_stripe_subscription_actions import (
    SUB,
    T0,
    act,
    at,
    changes,
    echo,
    mailer,
    state,
    stripe_client,
    stripe_plan,
)
from tests.portal.helpers import csrf_of, sign_in

from offerloop.checkout import service as checkout_service
from offerloop.models import Subscription as SubscriptionRow

__all__ = ["mailer", "stripe_client"]


def outcomes(client, headers, order: dict) -> dict[str, str]:
    """The outcome stored with each provider event of the order, by event id."""
    r = client.get(f"/v1/orders/{order['id']}/payments", headers=headers, params={"limit": 100})
    assert r.status_code == 200, r.text
    return {e["provider_event_id"]: e["outcome"] for e in r.json()["items"]}


def upgraded_in_dashboard(fake: FakeStripeServer) -> dict:
    """Stripe's customer.subscription.updated after its dashboard moved the monthly circle (3900) to the inner
    circle (9900) a day in, with its default proration (charged on the next invoice)."""
    stripe_sub = fake.state.subscriptions[SUB]
    stripe_sub["items"]["data"][0]["price"]["unit_amount"] = 9900
    stripe_sub["metadata"]["plan"] = "inner-circle"
    return echo(fake, "customer.subscription.updated", "evt_dashboard_upgrade", T0 + 86_400)


def renewals(client, headers, order: dict) -> list[dict]:
    return [o for o in orders(client, headers) if o["id"] != order["id"]]


# -- 1. a cycle invoice carrying a plan change's prorations before the change's own event ------------------------


def test_a_prorated_cycle_invoice_before_the_plan_changes_update_is_held_then_booked_once(
    stripe_client, secret_headers, write_headers, fake_stripe
):
    client = stripe_client
    order, sub = stripe_plan(client, secret_headers, write_headers, fake_stripe, "membership-monthly", 3900)
    updated = upgraded_in_dashboard(fake_stripe)
    end = fake_stripe.state.subscriptions[SUB]["current_period_end"]
    paid = cycle_invoice(order, "in_up", 12900, end + 60, [(9900, False), (3000, True)])
    # Stripe does not order its webhooks: the invoice first is kept, not refused, and books nothing yet
    assert deliver(client, paid).json()["outcome"] == "held_plan_change"
    assert deliver(client, paid).json()["outcome"] == "duplicate"
    assert renewals(client, secret_headers, order) == []
    assert state(client, secret_headers, sub)["offer_key"] == "membership-monthly"
    # the change's event arrives: the plan changes, and the invoice it was waiting for is booked, once
    assert deliver(client, updated).json()["outcome"] == "plan_changed"
    assert outcomes(client, secret_headers, order)["evt_in_up"] == "subscription_renewed"
    assert deliver(client, paid).json()["outcome"] == "duplicate"
    assert (
        deliver(client, {**updated, "id": "evt_dashboard_upgrade_again"}).json()["outcome"] == "ignored_stale"
    )
    [renewal] = renewals(client, secret_headers, order)
    assert (renewal["total"], renewal["provider_ref"]) == (12900, "pi_in_up")
    assert [(line["reason"], line["total"]) for line in renewal["lines"]] == [
        ("renewal", 9900),
        ("proration", 3000),
    ]
    after = state(client, secret_headers, sub)
    assert (after["offer_key"], after["state"]["current_period_start"]) == (
        "inner-circle", datetime.fromtimestamp(end, UTC).isoformat().replace("+00:00", "Z"))  # fmt: skip
    assert ledger(client, secret_headers, renewal["id"])["summary"]["gross"]["amount"] == 12900
    balanced(client, secret_headers)


# -- 2. a prorated cycle invoice on a subscription paused or canceled here ---------------------------------------


def test_a_prorated_cycle_invoice_of_a_paused_subscription_books_what_stripe_took_and_grants_nothing(
    stripe_client, db, secret_headers, write_headers, fake_stripe
):
    """Upgraded in Stripe's dashboard, then paused here: Stripe's cycle invoice (finalized and paid before the
    pause reached it, delivered after) carries the new plan and the prorations: all of it is booked, access stays
    ended with the pause."""
    client = stripe_client
    order, sub = stripe_plan(client, secret_headers, write_headers, fake_stripe, "membership-monthly", 3900)
    assert deliver(client, upgraded_in_dashboard(fake_stripe)).json()["outcome"] == "plan_changed"
    checkout_service.run_fulfilment(db=db)
    assert act(client, secret_headers, sub, "pause", at=at(2 * 86_400)).status_code == 200
    end = fake_stripe.state.subscriptions[SUB]["current_period_end"]
    paid = cycle_invoice(order, "in_paused", 12900, end + 60, [(9900, False), (3000, True)])
    assert deliver(client, paid).json()["outcome"] == "booked_while_paused"
    assert deliver(client, paid).json()["outcome"] == "duplicate"
    [booked] = renewals(client, secret_headers, order)
    assert (booked["total"], booked["provider_ref"]) == (12900, "pi_in_paused")
    assert [(line["reason"], line["total"]) for line in booked["lines"]] == [
        ("paid_while_paused", 9900), ("proration", 3000)]  # fmt: skip
    assert state(client, secret_headers, sub)["status"] == "paused"
    assert access_ends(client, secret_headers, sub) == {when(2 * 86_400)}
    balanced(client, secret_headers)


def test_a_prorated_cycle_invoice_of_a_canceled_subscription_books_what_stripe_took(
    stripe_client, secret_headers, write_headers, fake_stripe
):
    """Upgraded in Stripe's dashboard, then canceled there just after Stripe charged the cycle invoice, the plan
    change's event lost to us: the invoice (new plan and prorations, listed as such) is booked as charged."""
    client = stripe_client
    order, sub = stripe_plan(client, secret_headers, write_headers, fake_stripe, "membership-monthly", 3900)
    end = fake_stripe.state.subscriptions[SUB]["current_period_end"]
    canceled = echo(fake_stripe, "customer.subscription.deleted", "evt_deleted", end + 120)
    assert deliver(client, canceled).json()["outcome"] == "canceled"
    paid = cycle_invoice(order, "in_canceled", 12900, end + 60, [(9900, False), (3000, True)])
    assert deliver(client, paid).json()["outcome"] == "booked_while_canceled"
    [booked] = renewals(client, secret_headers, order)
    assert (booked["total"], booked["provider_ref"]) == (12900, "pi_in_canceled")
    assert state(client, secret_headers, sub)["status"] == "canceled"
    # a credit listed on the invoice is taken from what it charges: what is booked is what Stripe took
    credited = cycle_invoice(order, "in_credited", 100, end + 61, [(3900, False), (-3800, True)])
    assert deliver(client, credited).json()["outcome"] == "booked_while_canceled"
    assert sorted((o["subtotal"], o["discount"], o["total"]) for o in renewals(client, secret_headers, order)) == [
        (3900, 3800, 100), (12900, 0, 12900)]  # fmt: skip
    balanced(client, secret_headers)


# -- 3. a dashboard pause of a trialing or past-due subscription --------------------------------------------------


def paused_update(order: dict, event_id: str, *, at: int, status: str, paused: bool, amount: int) -> dict:
    payload = subscription_updated(order, event_id, at=at, status=status, amount=amount)
    payload["data"]["object"]["pause_collection"] = (
        {"behavior": "void", "resumes_at": None} if paused else None
    )
    return payload


def test_a_dashboard_pause_of_a_trial_pauses_it_and_its_resume_gives_the_trial_back(
    stripe_client, db, secret_headers, write_headers, fake_stripe
):
    client = stripe_client
    setup(client, secret_headers, write_headers)
    order = buy(client, secret_headers, "membership-monthly", provider="stripe")
    trial = session_event(
        order, "evt_trial", at=T0, amount=0, payment_status="no_payment_required", subscription="sub_1"
    )
    assert deliver(client, trial).json()["outcome"] == "trial_started"
    [sub] = client.get("/v1/subscriptions", headers=secret_headers).json()["items"]
    pause = paused_update(order, "evt_t_pause", at=T0 + 86_400, status="trialing", paused=True, amount=3900)
    assert deliver(client, pause).json()["outcome"] == "paused"
    held = state(client, secret_headers, sub)
    assert (held["status"], held["state"]["paused_by"]) == ("paused", "creator")
    resume = paused_update(
        order, "evt_t_resume", at=T0 + 2 * 86_400, status="trialing", paused=False, amount=3900
    )
    assert deliver(client, resume).json()["outcome"] == "resumed"
    back = state(client, secret_headers, sub)
    assert (back["status"], back["state"]["trial_end"]) == ("trialing", sub["state"]["trial_end"])
    # the trial's end is its first charge, as if it had never been paused
    first = invoice_event(order, "evt_first", at=T0 + 7 * 86_400, amount=3900)
    assert deliver(client, first).json()["outcome"] == "subscription_renewed"
    assert state(client, secret_headers, sub)["status"] == "active"
    balanced(client, secret_headers)


def test_a_dashboard_pause_of_a_past_due_subscription_pauses_it_and_its_resume_is_past_due_again(
    stripe_client, db, secret_headers, write_headers, fake_stripe
):
    client = stripe_client
    order, sub = plan(client, secret_headers, write_headers, fake_stripe, db)
    end = fake_stripe.state.subscriptions[SUB]["current_period_end"]
    failed = cycle_invoice(order, "in_failed", 9900, end + 60)
    failed["type"] = "invoice.payment_failed"
    failed["data"]["object"].update(status="open", amount_paid=0, amount_due=9900, attempt_count=1)
    assert deliver(client, failed).json()["outcome"] == "payment_failed"
    due = state(client, secret_headers, sub)
    assert due["status"] == "past_due"
    fake_stripe.state.subscriptions[SUB]["status"] = "past_due"
    paused = dashboard(fake_stripe, True, "evt_pd_pause", end - T0 + 3_600)
    assert deliver(client, paused).json()["outcome"] == "paused"
    assert access_ends(client, secret_headers, sub) == {when(end - T0 + 3_600)}
    resumed = dashboard(fake_stripe, False, "evt_pd_resume", end - T0 + 7_200)
    assert deliver(client, resumed).json()["outcome"] == "resumed"
    back = state(client, secret_headers, sub)
    assert (back["status"], back["state"]["failed_attempts"], back["state"]["next_retry_at"]) == (
        "past_due", 1, due["state"]["next_retry_at"])  # fmt: skip
    assert access_ends(client, secret_headers, sub) == {None}
    assert changes(fake_stripe) == []
    balanced(client, secret_headers)


# -- 4. a dashboard pause after our period end, before Stripe's paid invoice ----------------------------------------


def test_a_dashboard_pause_after_the_period_end_before_its_invoice_applies_and_the_invoice_is_booked(
    stripe_client, db, secret_headers, write_headers, fake_stripe
):
    client = stripe_client
    order, sub = plan(client, secret_headers, write_headers, fake_stripe, db)
    end = fake_stripe.state.subscriptions[SUB]["current_period_end"]
    paused = dashboard(fake_stripe, True, "evt_late_pause", end - T0 + 3_600)
    r = deliver(client, paused)
    assert (r.status_code, r.json()["outcome"]) == (200, "paused"), r.text
    assert access_ends(client, secret_headers, sub) == {when(end - T0 + 3_600)}
    paid = cycle_invoice(order, "in_end", 9900, end + 60)
    assert deliver(client, paid).json()["outcome"] == "booked_while_paused"
    [booked] = renewals(client, secret_headers, order)
    assert (booked["total"], booked["provider_ref"]) == (9900, "pi_in_end")
    balanced(client, secret_headers)


# -- 5. a buyer's pause whose answer from Stripe was lost ---------------------------------------------------------


def test_a_buyers_pause_whose_answer_was_lost_stays_the_buyers_when_the_webhook_reports_it(
    stripe_client, db, workspace, secret_headers, write_headers, fake_stripe, mailer
):
    client = stripe_client
    _order, sub = plan(client, secret_headers, write_headers, fake_stripe, db)
    sign_in(client, workspace.id, mailer, "ada@example.com")
    url = f"/p/{workspace.id}/subscription/{sub['id']}"
    fake_stripe.state.lost_answers = 3
    csrf = csrf_of(client.get(f"/p/{workspace.id}/subscription").text)
    lost = client.post(url, data={"csrf_token": csrf, "action": "pause"})
    assert lost.status_code == 502, lost.text
    assert fake_stripe.state.subscriptions[SUB]["pause_collection"] == {
        "behavior": "void",
        "resumes_at": None,
    }
    assert state(client, secret_headers, sub)["status"] == "active"
    reported = echo(fake_stripe, "customer.subscription.updated", "evt_buyer_pause", T0 + 86_400)
    reported["data"]["previous_attributes"] = {"pause_collection": None}
    assert deliver(client, reported).json()["outcome"] == "paused"
    held = state(client, secret_headers, sub)
    assert (held["status"], held["state"]["paused_by"]) == ("paused", "buyer")
    # the buyer lifts their own pause
    page = client.get(f"/p/{workspace.id}/subscription").text
    assert "Resume</button>" in page
    resumed = client.post(url, data={"csrf_token": csrf_of(page), "action": "resume"})
    assert resumed.status_code == 200, resumed.text
    assert state(client, secret_headers, sub)["status"] == "active"
    # Stripe's metadata still names that pause: a later pause in Stripe's dashboard is the creator's
    again = dashboard(fake_stripe, True, "evt_dash_pause_2", int(time.time()) - T0 + 60)  # after the resume
    assert deliver(client, again).json()["outcome"] == "paused"
    assert state(client, secret_headers, sub)["state"]["paused_by"] == "creator"
    balanced(client, secret_headers)


# -- 6. a pause recorded before paused_by existed --------------------------------------------------------------------


def test_a_pause_recorded_before_paused_by_existed_is_resumed_by_the_creator_only(
    stripe_client, db, workspace, secret_headers, write_headers, fake_stripe, mailer
):
    client = stripe_client
    _order, sub = plan(client, secret_headers, write_headers, fake_stripe, db)
    assert act(client, secret_headers, sub, "pause", at=at(86_400)).status_code == 200
    with db.write() as session:  # stored as it was before paused_by existed: no such key
        row = session.get(SubscriptionRow, sub["id"])
        row.state = {k: v for k, v in row.state.items() if k != "paused_by"}
    assert state(client, secret_headers, sub)["state"]["paused_by"] is None
    sign_in(client, workspace.id, mailer, "ada@example.com")
    page = client.get(f"/p/{workspace.id}/subscription").text
    assert "Resume</button>" not in page
    refused = client.post(f"/p/{workspace.id}/subscription/{sub['id']}",
                          data={"csrf_token": csrf_of(page), "action": "resume"})  # fmt: skip
    assert refused.status_code == 409 and "only the creator can resume it" in refused.text
    assert state(client, secret_headers, sub)["status"] == "paused"
    r = act(client, secret_headers, sub, "resume", at=at(2 * 86_400))
    assert (r.status_code, r.json()["status"]) == (200, "active"), r.text
    balanced(client, secret_headers)
