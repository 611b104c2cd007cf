"""What Stripe reports about a subscription it bills is mirrored here, never turned into a command to Stripe, and
no money Stripe took is dropped.

A full refund made in Stripe's dashboard (``charge.refunded``) is booked and leaves the subscription running here
as it runs in Stripe: nothing is sent to Stripe, once or on redelivery, and Stripe's next cycle invoice is booked
as a renewal (it used to be dropped as ``order_refunded`` after the refund had canceled the subscription here
only). A cycle invoice Stripe was paid for a subscription held here as canceled is booked as an order of its own
that grants nothing (``booked_while_canceled``) and can be refunded from here. The payment steps (renew,
payment_failed, payment_succeeded) of a subscription Stripe bills are Stripe's webhooks' alone: asked for through
the API they are refused (409 ``provider_managed``); a manual subscription takes them.

Driven over HTTP against the loopback Stripe stand-in (``FakeStripeServer``), with signed webhooks."""

from __future__ import annotations

from datetime import datetime

from tests.checkout.test_checkout_flow import allowed, buy, deliver, pay, setup
from tests.checkout.test_stripe_provider import FakeStripeServer, event
from tests.checkout.test_stripe_refunds import balanced, ledger, refund_requests
from tests.checkout.test_stripe_subscription_actions import (
    NO_TRIAL,
    SUB,
    T0,
    act,
    events_named,
    state,
    stripe_client,
    stripe_plan,
    sub_requests,
)

from offerloop.checkout import service as checkout_service

__all__ = ["stripe_client"]


def stripe_calls(fake: FakeStripeServer) -> list[tuple[str, str]]:
    """Every request Stripe received since the checkout's session was created."""
    return [(r.method, r.path) for r in fake.state.requests if r.path != "/v1/checkout/sessions"]


def dashboard_refund(fake: FakeStripeServer, pi: str, amount: int, refunded: int, *, event_id: str,
                     created: int) -> dict:  # fmt: skip
    """A refund made in Stripe's dashboard: Stripe's state, and its ``charge.refunded`` (no metadata of ours: the
    charge of a subscription's invoice carries none; the payment names the order)."""
    fake.state.refunded[pi] = refunded
    obj = {"id": f"ch_{pi}", "object": "charge", "amount": amount, "amount_refunded": refunded, "currency": "usd",
           "payment_intent": pi, "refunded": refunded == amount, "metadata": {}}  # fmt: skip
    payload = event("charge.refunded", obj, event_id=event_id)
    payload["created"] = created
    return payload


def cycle_invoice(order: dict, pi: str, amount: int, *, event_id: str, created: int) -> dict:
    """Stripe's ``invoice.paid`` of a period of the subscription (billing reason ``subscription_cycle``)."""
    obj = {"id": f"in_{pi}", "object": "invoice", "subscription": SUB, "billing_reason": "subscription_cycle",
           "amount_paid": amount, "amount_due": amount, "currency": "usd", "status": "paid", "payment_intent": pi,
           "subscription_details": {"metadata": {"order_id": order["id"]}}}  # fmt: skip
    payload = event("invoice.paid", obj, event_id=event_id)
    payload["created"] = created
    return payload


def orders(client, headers) -> list[dict]:
    return client.get("/v1/orders", headers=headers, params={"limit": 100}).json()["items"]


def outcomes(client, headers, order_id: str) -> list[tuple[str, str]]:
    r = client.get(f"/v1/orders/{order_id}/payments", headers=headers, params={"limit": 100})
    assert r.status_code == 200, r.text
    return [(e["provider_event_id"], e["outcome"]) for e in r.json()["items"]]


def period_end(sub: dict) -> int:
    return int(datetime.fromisoformat(sub["state"]["current_period_end"]).timestamp())


# -- 1. a full refund made in Stripe's dashboard -----------------------------------------------------------------


def test_a_dashboard_full_refund_is_booked_sends_nothing_to_stripe_and_the_next_invoice_renews(
    stripe_client, db, secret_headers, write_headers, fake_stripe
):
    client = stripe_client
    order, sub = stripe_plan(client, secret_headers, write_headers, fake_stripe)
    checkout_service.run_fulfilment(db=db)
    assert allowed(client, secret_headers, "community_space", "inner-circle")
    end = period_end(sub)
    refunded = dashboard_refund(
        fake_stripe, "pi_plan", 9900, 9900, event_id="evt_dash_full", created=T0 + 3600
    )
    for expected in ("refunded", "duplicate"):  # Stripe redelivers it: booked once
        r = deliver(client, refunded)
        assert (r.status_code, r.json()["outcome"]) == (200, expected), r.text
    # the same refund reported again under another event (cumulative amount): nothing more
    again = dashboard_refund(
        fake_stripe, "pi_plan", 9900, 9900, event_id="evt_dash_full_2", created=T0 + 3601
    )
    assert deliver(client, again).json()["outcome"] == "refund_already_recorded"
    got = client.get(f"/v1/orders/{order['id']}", headers=secret_headers).json()
    assert (got["status"], got["refunded"]) == ("refunded", 9900)
    # Stripe's subscription runs on (a refund is not a cancel there): ours runs on too, and Stripe is asked nothing
    assert stripe_calls(fake_stripe) == []
    assert fake_stripe.state.subscriptions[SUB]["status"] == "active"
    after = state(client, secret_headers, sub)
    assert (after["status"], after["state"]["cancel_at_period_end"]) == ("active", False)
    assert events_named(client, secret_headers, sub, "Subscription Canceled") == 0
    assert allowed(client, secret_headers, "community_space", "inner-circle")
    # Stripe charges the next period: booked as the renewal it is
    paid = cycle_invoice(order, "pi_renew_1", 9900, event_id="evt_renew_1", created=end)
    assert deliver(client, paid).json()["outcome"] == "subscription_renewed"
    assert deliver(client, paid).json()["outcome"] == "duplicate"
    renewed = state(client, secret_headers, sub)
    assert (renewed["status"], renewed["state"]["current_period_start"]) == (
        "active",
        sub["state"]["current_period_end"],
    )
    [renewal] = [o for o in orders(client, secret_headers) if o["id"] != order["id"]]
    assert (renewal["status"], renewal["total"], renewal["provider_ref"]) == ("paid", 9900, "pi_renew_1")
    assert [line["reason"] for line in renewal["lines"]] == ["renewal"]
    assert ledger(client, secret_headers, renewal["id"])["summary"]["gross"]["amount"] == 9900
    assert outcomes(client, secret_headers, order["id"]) == [
        ("evt_plan_paid", "paid"), ("evt_dash_full", "refunded"), ("evt_dash_full_2", "refund_already_recorded"),
        ("evt_renew_1", "subscription_renewed"),
    ]  # fmt: skip
    assert stripe_calls(fake_stripe) == []
    balanced(client, secret_headers)


def test_a_dashboard_cancel_with_its_refund_ends_the_subscription_through_stripes_cancel_event(
    stripe_client, db, secret_headers, write_headers, fake_stripe
):
    """Canceled in Stripe's dashboard with "refund the last payment": the refund books the money back, Stripe's
    customer.subscription.deleted ends the subscription, in either delivery order; Stripe is asked nothing."""
    client = stripe_client
    order, sub = stripe_plan(client, secret_headers, write_headers, fake_stripe)
    checkout_service.run_fulfilment(db=db)
    fake_stripe.state.subscriptions[SUB].update(status="canceled", canceled_at=T0 + 7200)
    deleted = event("customer.subscription.deleted", dict(fake_stripe.state.subscriptions[SUB]),
                    event_id="evt_dash_deleted")  # fmt: skip
    deleted["created"] = T0 + 7200
    refunded = dashboard_refund(
        fake_stripe, "pi_plan", 9900, 9900, event_id="evt_dash_refund", created=T0 + 7200
    )
    assert deliver(client, refunded).json()["outcome"] == "refunded"
    assert state(client, secret_headers, sub)["status"] == "active"
    assert allowed(client, secret_headers, "community_space", "inner-circle")
    assert deliver(client, deleted).json()["outcome"] == "canceled"
    assert state(client, secret_headers, sub)["status"] == "canceled"
    assert not allowed(client, secret_headers, "community_space", "inner-circle")
    assert client.get(f"/v1/orders/{order['id']}", headers=secret_headers).json()["status"] == "refunded"
    assert stripe_calls(fake_stripe) == []
    balanced(client, secret_headers)


# -- money Stripe took for a subscription held here as canceled ---------------------------------------------------


def test_an_invoice_paid_for_a_canceled_subscription_is_booked_visibly_and_refundable_from_here(
    stripe_client, secret_headers, write_headers, fake_stripe
):
    """Stripe charged the next period, then the creator canceled in Stripe's dashboard; the cancel's event is
    delivered first. The invoice's money is booked (an order granting nothing), not dropped as ignored_state."""
    client = stripe_client
    order, sub = stripe_plan(client, secret_headers, write_headers, fake_stripe)
    end = period_end(sub)
    fake_stripe.state.payments["pi_late"] = (9900, "usd")
    fake_stripe.state.subscriptions[SUB].update(status="canceled", canceled_at=end + 60)
    deleted = event("customer.subscription.deleted", dict(fake_stripe.state.subscriptions[SUB]),
                    event_id="evt_deleted")  # fmt: skip
    deleted["created"] = end + 60
    assert deliver(client, deleted).json()["outcome"] == "canceled"
    paid = cycle_invoice(order, "pi_late", 9900, event_id="evt_late_paid", created=end)
    assert deliver(client, paid).json()["outcome"] == "booked_while_canceled"
    assert deliver(client, paid).json()["outcome"] == "duplicate"
    # another event about the same invoice books nothing more
    other = cycle_invoice(order, "pi_late", 9900, event_id="evt_late_paid_2", created=end + 1)
    assert deliver(client, other).json()["outcome"] == "already_paid"
    [late] = [o for o in orders(client, secret_headers) if o["id"] != order["id"]]
    assert (late["status"], late["total"], late["provider_ref"], late["provider"]) == (
        "paid", 9900, "pi_late", "stripe")  # fmt: skip
    assert [(line["reason"], line["subscription_id"]) for line in late["lines"]] == [
        ("paid_while_canceled", sub["id"])
    ]
    assert ledger(client, secret_headers, late["id"])["summary"]["gross"]["amount"] == 9900
    assert ("evt_late_paid", "booked_while_canceled") in outcomes(client, secret_headers, order["id"])
    # it renews nothing and grants nothing
    assert state(client, secret_headers, sub)["status"] == "canceled"
    assert (
        state(client, secret_headers, sub)["state"]["current_period_end"]
        == sub["state"]["current_period_end"]
    )
    assert not allowed(client, secret_headers, "community_space", "inner-circle")
    # the creator gives it back from here: refunded in Stripe on its own payment, booked once
    r = client.post(f"/v1/orders/{late['id']}/refund", headers=secret_headers, json={})
    assert (r.status_code, r.json()["status"], r.json()["refunded"]) == (200, "refunded", 9900), r.text
    [(form, _)] = refund_requests(fake_stripe)
    assert (form["payment_intent"], form["amount"]) == ("pi_late", "9900")
    assert sub_requests(fake_stripe) == []  # canceled already: nothing to cancel in Stripe
    balanced(client, secret_headers)


def test_an_invoice_paid_for_a_canceled_subscription_with_another_amount_is_refused_visibly(
    stripe_client, secret_headers, write_headers, fake_stripe
):
    client = stripe_client
    order, sub = stripe_plan(client, secret_headers, write_headers, fake_stripe)
    assert act(client, secret_headers, sub, "cancel", at_period_end=False).status_code == 200
    paid = cycle_invoice(order, "pi_odd", 4200, event_id="evt_odd", created=period_end(sub))
    assert deliver(client, paid).json()["outcome"] == "amount_mismatch"
    assert ("evt_odd", "amount_mismatch") in outcomes(client, secret_headers, order["id"])
    assert [o["id"] for o in orders(client, secret_headers)] == [order["id"]]
    balanced(client, secret_headers)


# -- 2. the payment steps of a subscription Stripe bills are Stripe's ------------------------------------------


def test_renew_and_payment_steps_asked_for_here_are_refused_on_a_stripe_subscription(
    stripe_client, secret_headers, write_headers, fake_stripe
):
    client = stripe_client
    order, sub = stripe_plan(client, secret_headers, write_headers, fake_stripe)
    before = state(client, secret_headers, sub)
    end = sub["state"]["current_period_end"]
    for action in ("renew", "payment_failed", "payment_succeeded"):
        r = act(client, secret_headers, sub, action, at=end)
        assert (r.status_code, r.json()["error"]["code"]) == (409, "provider_managed"), r.text
        assert r.json()["error"]["details"] == {"action": action, "provider_subscription_id": SUB}
    assert state(client, secret_headers, sub) == before
    assert [o["id"] for o in orders(client, secret_headers)] == [order["id"]]
    for name in ("Subscription Renewed", "Payment Failed", "Payment Succeeded"):
        assert events_named(client, secret_headers, sub, name) == 0
    assert stripe_calls(fake_stripe) == []
    # Stripe's own invoice renews it
    paid = cycle_invoice(order, "pi_cycle", 9900, event_id="evt_cycle", created=period_end(sub))
    assert deliver(client, paid).json()["outcome"] == "subscription_renewed"
    assert events_named(client, secret_headers, sub, "Subscription Renewed") == 1
    balanced(client, secret_headers)


def test_renew_and_payment_steps_still_drive_a_manual_subscription(
    stripe_client, secret_headers, write_headers, fake_stripe
):
    client = stripe_client
    setup(client, secret_headers, write_headers, catalog=NO_TRIAL)
    order = buy(client, secret_headers, "inner-circle")
    pay(client, secret_headers, order["id"])
    [sub] = client.get("/v1/subscriptions", headers=secret_headers).json()["items"]
    end = sub["state"]["current_period_end"]
    r = act(client, secret_headers, sub, "renew", at=end)
    assert (r.status_code, r.json()["status"], r.json()["state"]["current_period_start"]) == (
        200,
        "active",
        end,
    )
    r = act(client, secret_headers, sub, "payment_failed", at=end)
    assert (r.status_code, r.json()["status"]) == (200, "past_due"), r.text
    r = act(client, secret_headers, sub, "payment_succeeded", at=end)
    assert (r.status_code, r.json()["status"]) == (200, "active"), r.text
    assert [o["status"] for o in orders(client, secret_headers)] == ["paid", "paid"]
    assert fake_stripe.state.requests == []
    balanced(client, secret_headers)
