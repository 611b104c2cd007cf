"""A change asked for here to a subscription Stripe bills is made in Stripe first: what Stripe charges is what is
booked.

Cancel (at period end or now), pause, resume and a plan change, through the API (and a cancel through the buyer
portal's form), send Stripe the documented request (``POST`` / ``DELETE /v1/subscriptions/{id}``, form-encoded)
with an ``Idempotency-Key``, then change our record in the same unit of work. Stripe refusing (4xx) is a 409 with
its message, Stripe failing or unreachable a 502, Stripe not configured a 409: nothing changes here. Stripe's
``customer.subscription.*`` echo of the change (delivered twice, or while the change is still being committed)
changes nothing more; a double submit asks Stripe once; a manual subscription asks Stripe nothing.

Driven over HTTP against the loopback Stripe stand-in (``FakeStripeServer``), with signed webhooks."""

from __future__ import annotations

import copy
import json
import threading
import time
from datetime import UTC, datetime
from pathlib import Path

import httpx
import pytest
from sqlalchemy import Engine, text
from tests.checkout.test_checkout_flow import CATALOG, buy, deliver, pay, setup, stripe_client
from tests.checkout.test_stripe_concurrency import stripe_server
from tests.checkout.test_stripe_provider import SECRET, FakeStripeServer, event, stripe_error
from tests.checkout.test_stripe_refunds import balanced, ledger, refund_requests
from tests.conftest import LiveServer, bearer
from tests.portal.helpers import Mailer, csrf_of, sign_in

from offerloop.checkout.stripe_provider import sign_payload
from offerloop.config import Settings
from offerloop.db.uow import Database

__all__ = ["stripe_client", "stripe_server"]

T0 = 1_796_000_000  # the first period's start (Stripe's and ours)
SUB = "sub_plan"
NO_TRIAL = CATALOG.replace("    trial_days: 7\n", "", 1)  # the monthly circle, paid from its first day


def at(seconds: int) -> str:
    return datetime.fromtimestamp(T0 + seconds, UTC).isoformat()


def stripe_plan(client, headers, write_headers, fake: FakeStripeServer, offer: str = "inner-circle",
                amount: int = 9900) -> tuple[dict, dict]:  # fmt: skip
    """``offer`` bought through Stripe (Checkout Session paid at T0), the subscription Stripe created for it."""
    setup(client, headers, write_headers, catalog=NO_TRIAL)
    order = buy(client, headers, offer, provider="stripe")
    obj = {"id": order["provider_ref"], "object": "checkout.session", "client_reference_id": order["id"],
           "metadata": {"order_id": order["id"]}, "payment_status": "paid", "status": "complete",
           "amount_total": amount, "currency": "usd", "payment_intent": "pi_plan", "mode": "subscription",
           "subscription": SUB}  # fmt: skip
    payload = event("checkout.session.completed", obj, event_id="evt_plan_paid")
    payload["created"] = T0
    assert deliver(client, payload).json()["outcome"] == "paid"
    fake.state.payments["pi_plan"] = (amount, "usd")
    [sub] = client.get("/v1/subscriptions", headers=headers).json()["items"]
    end = int(datetime.fromisoformat(sub["state"]["current_period_end"]).timestamp())
    fake.state.add_subscription(SUB, [(offer, amount)], period=(T0, end), metadata={"order_id": order["id"]})
    return order, sub


def act(client, headers, sub: dict, action: str, **body):
    return client.post(
        f"/v1/subscriptions/{sub['id']}/actions", headers=headers, json={"action": action, **body}
    )


def sub_requests(fake: FakeStripeServer) -> list[tuple[str, dict[str, str], str | None]]:
    """(method, form, idempotency key) of every request about the subscription Stripe received."""
    return [(r.method, r.form, r.headers.get("idempotency-key")) for r in fake.state.requests
            if r.path == f"/v1/subscriptions/{SUB}"]  # fmt: skip


def changes(fake: FakeStripeServer) -> list[tuple[str, dict[str, str], str | None]]:
    return [r for r in sub_requests(fake) if r[0] != "GET"]


def state(client, headers, sub: dict) -> dict:
    r = client.get(f"/v1/subscriptions/{sub['id']}", headers=headers)
    assert r.status_code == 200, r.text
    return r.json()


def events_named(client, headers, sub: dict, name: str) -> int:
    r = client.get(f"/v1/buyers/{sub['buyer_id']}/events", headers=headers, params={"limit": 200})
    return [e["name"] for e in r.json()["items"]].count(name)


def echo(fake: FakeStripeServer, kind: str, event_id: str, created: int) -> dict:
    """Stripe's event about the subscription as Stripe now holds it."""
    payload = event(kind, copy.deepcopy(fake.state.subscriptions[SUB]), event_id=event_id)
    payload["created"] = created
    return payload


def key(sub: dict, n: int, label: str) -> str:
    return f"offerloop-sub-{sub['id']}-{n}-{label}"


# -- each action, in Stripe first ---------------------------------------------------------------------


def test_cancel_at_period_end_is_sent_to_stripe_then_recorded_and_its_echo_is_a_no_op(
    stripe_client, secret_headers, write_headers, fake_stripe
):
    client = stripe_client
    _order, sub = stripe_plan(client, secret_headers, write_headers, fake_stripe)
    for _ in range(2):  # a double submit: Stripe is asked once, the event recorded once
        r = act(client, secret_headers, sub, "cancel", at=at(86_400))
        assert r.status_code == 200, r.text
        assert (r.json()["status"], r.json()["state"]["cancel_at_period_end"]) == ("active", True)
    assert changes(fake_stripe) == [
        ("POST", {"cancel_at_period_end": "true"}, key(sub, 0, "cancel-at-period-end"))
    ]
    assert fake_stripe.state.subscriptions[SUB]["cancel_at_period_end"] is True
    before = state(client, secret_headers, sub)
    # Stripe's customer.subscription.updated for it, delivered twice: nothing more happens
    payload = echo(fake_stripe, "customer.subscription.updated", "evt_cancel_echo", T0 + 86_400 + 1)
    assert deliver(client, payload).json()["outcome"] == "no_change"
    assert deliver(client, payload).json()["outcome"] == "duplicate"
    assert state(client, secret_headers, sub) == before
    assert events_named(client, secret_headers, sub, "Subscription Canceled") == 1
    # withdrawn: cancel_at_period_end=false, under the next key
    r = act(client, secret_headers, sub, "resume", at=at(2 * 86_400))
    assert r.status_code == 200 and r.json()["state"]["cancel_at_period_end"] is False, r.text
    assert changes(fake_stripe)[1:] == [("POST", {"cancel_at_period_end": "false"}, key(sub, 1, "keep"))]
    assert fake_stripe.state.subscriptions[SUB]["cancel_at_period_end"] is False
    payload = echo(fake_stripe, "customer.subscription.updated", "evt_keep_echo", T0 + 2 * 86_400 + 1)
    assert deliver(client, payload).json()["outcome"] == "no_change"
    # canceled again: a new key, so Stripe does not replay the first cancel's answer
    assert act(client, secret_headers, sub, "cancel", at=at(3 * 86_400)).status_code == 200
    assert changes(fake_stripe)[2][2] == key(sub, 2, "cancel-at-period-end")
    assert fake_stripe.state.subscriptions[SUB]["cancel_at_period_end"] is True
    assert refund_requests(fake_stripe) == []
    balanced(client, secret_headers)


def test_cancel_now_deletes_the_stripe_subscription_without_proration_and_books_no_refund(
    stripe_client, secret_headers, write_headers, fake_stripe
):
    client = stripe_client
    order, sub = stripe_plan(client, secret_headers, write_headers, fake_stripe)
    books = ledger(client, secret_headers, order["id"])
    r = act(client, secret_headers, sub, "cancel", at_period_end=False, at=at(86_400))
    assert (r.status_code, r.json()["status"]) == (200, "canceled"), r.text
    assert changes(fake_stripe) == [
        ("DELETE", {"prorate": "false", "invoice_now": "false"}, key(sub, 0, "cancel"))
    ]
    assert fake_stripe.state.subscriptions[SUB]["status"] == "canceled"
    # nothing was refunded in Stripe, nothing is booked here
    assert refund_requests(fake_stripe) == []
    assert ledger(client, secret_headers, order["id"]) == books
    again = act(client, secret_headers, sub, "cancel", at_period_end=False, at=at(86_401))
    assert again.status_code == 409  # already canceled: the lifecycle refuses, Stripe is not asked
    assert len(changes(fake_stripe)) == 1
    before = state(client, secret_headers, sub)
    for kind, n in (("customer.subscription.updated", 1), ("customer.subscription.deleted", 2)):
        payload = echo(fake_stripe, kind, f"evt_deleted_{n}", T0 + 86_400 + 5)
        assert deliver(client, payload).json()["outcome"] == "ignored_state"
    assert state(client, secret_headers, sub) == before
    assert events_named(client, secret_headers, sub, "Subscription Canceled") == 1
    balanced(client, secret_headers)


def test_pause_voids_collection_in_stripe_and_resume_unsets_it(
    stripe_client, secret_headers, write_headers, fake_stripe
):
    client = stripe_client
    _order, sub = stripe_plan(client, secret_headers, write_headers, fake_stripe)
    r = act(client, secret_headers, sub, "pause", at=at(86_400))
    assert (r.status_code, r.json()["status"]) == (200, "paused"), r.text
    assert fake_stripe.state.subscriptions[SUB]["pause_collection"] == {
        "behavior": "void",
        "resumes_at": None,
    }
    paused = echo(fake_stripe, "customer.subscription.updated", "evt_paused", T0 + 86_400 + 1)
    assert deliver(client, paused).json()["outcome"] == "no_change"
    assert state(client, secret_headers, sub)["status"] == "paused"
    again = act(client, secret_headers, sub, "pause", at=at(86_402))
    assert again.status_code == 409  # paused already: Stripe is not asked again
    r = act(client, secret_headers, sub, "resume", at=at(2 * 86_400))
    assert (r.status_code, r.json()["status"]) == (200, "active"), r.text
    assert fake_stripe.state.subscriptions[SUB]["pause_collection"] is None
    assert changes(fake_stripe) == [
        (
            "POST",
            {
                "pause_collection[behavior]": "void",
                "metadata[offerloop_pause]": f"creator:{key(sub, 0, 'pause')}",
            },
            key(sub, 0, "pause"),
        ),
        ("POST", {"pause_collection": ""}, key(sub, 1, "unpause")),
    ]
    resumed = echo(fake_stripe, "customer.subscription.updated", "evt_resumed", T0 + 2 * 86_400 + 1)
    assert deliver(client, resumed).json()["outcome"] == "no_change"
    assert events_named(client, secret_headers, sub, "Subscription Paused") == 1
    assert events_named(client, secret_headers, sub, "Subscription Resumed") == 1
    balanced(client, secret_headers)


def test_a_downgrade_replaces_the_price_without_proration_and_refunds_exactly_the_credit_booked(
    stripe_client, secret_headers, write_headers, fake_stripe
):
    client = stripe_client
    order, sub = stripe_plan(client, secret_headers, write_headers, fake_stripe)
    r = act(client, secret_headers, sub, "change_plan", plan="membership-monthly", at=at(0))
    assert r.status_code == 200, r.text
    [get, (method, form, idem)] = sub_requests(fake_stripe)
    assert (get[0], get[1], get[2]) == ("GET", {"expand[0]": "items.data.price.product"}, None)
    assert method == "POST" and idem is not None and idem.startswith(key(sub, 0, "plan-"))
    assert form == {
        "items[0][id]": "si_test_0001", "items[0][price_data][currency]": "usd",
        "items[0][price_data][product]": "prod_test_0001", "items[0][price_data][unit_amount]": "3900",
        "items[0][price_data][recurring][interval]": "month", "metadata[plan]": "membership-monthly",
        "proration_behavior": "none", "expand[0]": "latest_invoice",
    }  # fmt: skip
    # what Stripe gave back is what is booked: its refund (no proration invoice) and the ledger's credit
    assert fake_stripe.state.invoices == []
    [(refund_form, _)] = refund_requests(fake_stripe)
    entries = [e for e in ledger(client, secret_headers, order["id"])["entries"] if e["kind"] == "refund"]
    cash = [-sum(p["amount"] for p in e["postings"] if p["account"] == "buyer_payments" and p["amount"] < 0)
            for e in entries]  # fmt: skip
    assert cash == [int(refund_form["amount"])] == [6000]
    # Stripe's echo names the plan we asked for: no second change, no second credit
    payload = echo(fake_stripe, "customer.subscription.updated", "evt_downgraded", T0 + 1)
    assert deliver(client, payload).json()["outcome"] == "no_change"
    assert deliver(client, payload).json()["outcome"] == "duplicate"
    assert state(client, secret_headers, sub)["offer_key"] == "membership-monthly"
    assert len(refund_requests(fake_stripe)) == 1
    assert events_named(client, secret_headers, sub, "Subscription Changed") == 1
    balanced(client, secret_headers)


def test_an_upgrade_is_invoiced_by_stripe_at_once_and_what_stripe_charged_is_what_is_booked(
    stripe_client, secret_headers, write_headers, fake_stripe
):
    """Stripe created the subscription 7 s before the checkout completed (its period is not ours to the second)
    and rounds each proration line: its charge is 3686, our own proration would be 3685. 3686 is booked."""
    client = stripe_client
    order, sub = stripe_plan(client, secret_headers, write_headers, fake_stripe, "membership-monthly", 3900)
    stripe_sub = fake_stripe.state.subscriptions[SUB]
    stripe_sub["current_period_start"] -= 7
    stripe_sub["current_period_end"] -= 7
    r = act(client, secret_headers, sub, "change_plan", plan="inner-circle", at=at(1_000_003))
    assert r.status_code == 200, r.text
    [(method, form, idem)] = changes(fake_stripe)
    assert method == "POST" and idem is not None and idem.startswith(key(sub, 0, "plan-"))
    assert form == {
        "items[0][id]": "si_test_0001", "items[0][price_data][currency]": "usd",
        "items[0][price_data][product]": "prod_test_0001", "items[0][price_data][unit_amount]": "9900",
        "items[0][price_data][recurring][interval]": "month", "metadata[plan]": "inner-circle",
        "proration_behavior": "always_invoice", "proration_date": str(T0 + 1_000_003),
        "payment_behavior": "error_if_incomplete", "expand[0]": "latest_invoice",
    }  # fmt: skip
    [invoice] = fake_stripe.state.invoices
    upgrade = [
        o for o in client.get("/v1/orders", headers=secret_headers).json()["items"] if o["id"] != order["id"]
    ]
    assert [(o["total"], o["tax"]) for o in upgrade] == [(invoice["amount_paid"], 0)] == [(3686, 0)]
    assert ledger(client, secret_headers, upgrade[0]["id"])["summary"]["gross"]["amount"] == 3686
    # its invoice.paid (billing reason subscription_update) is booked already, as is the echo
    paid = event("invoice.paid", {"id": invoice["id"], "object": "invoice", "subscription": SUB,
                                  "billing_reason": "subscription_update", "amount_paid": 3686, "currency": "usd",
                                  "status": "paid", "metadata": {"order_id": order["id"]}},
                 event_id="evt_upgrade_paid")  # fmt: skip
    paid["created"] = T0 + 1_000_004
    assert deliver(client, paid).json()["outcome"] == "already_paid"
    updated = echo(fake_stripe, "customer.subscription.updated", "evt_upgraded", T0 + 1_000_004)
    assert deliver(client, updated).json()["outcome"] == "no_change"
    assert len(client.get("/v1/orders", headers=secret_headers).json()["items"]) == 2
    assert state(client, secret_headers, sub)["offer_key"] == "inner-circle"
    balanced(client, secret_headers)


def test_an_upgrade_whose_card_stripe_declines_changes_nothing(
    stripe_client, secret_headers, write_headers, fake_stripe
):
    client = stripe_client
    _order, sub = stripe_plan(client, secret_headers, write_headers, fake_stripe, "membership-monthly", 3900)
    fake_stripe.state.card_declined = True
    before = state(client, secret_headers, sub)
    r = act(client, secret_headers, sub, "change_plan", plan="inner-circle", at=at(86_400))
    assert (r.status_code, r.json()["error"]["code"]) == (409, "provider_refused"), r.text
    assert r.json()["error"]["message"] == "Stripe refused the request: Your card was declined."
    assert state(client, secret_headers, sub) == before
    assert fake_stripe.state.subscriptions[SUB]["items"]["data"][0]["price"]["unit_amount"] == 3900
    assert fake_stripe.state.invoices == []
    balanced(client, secret_headers)


def test_a_full_refund_of_the_plan_cancels_the_stripe_subscription_too(
    stripe_client, secret_headers, write_headers, fake_stripe
):
    """A refunded plan ends here: it must end in Stripe too, or Stripe keeps charging a canceled subscription."""
    client = stripe_client
    order, sub = stripe_plan(client, secret_headers, write_headers, fake_stripe)
    r = client.post(f"/v1/orders/{order['id']}/refund", headers=secret_headers, json={})
    assert (r.status_code, r.json()["status"]) == (200, "refunded"), r.text
    assert [(q.method, q.path) for q in fake_stripe.state.requests if q.path != "/v1/checkout/sessions"] == [
        ("POST", "/v1/refunds"), ("DELETE", f"/v1/subscriptions/{SUB}"),
    ]  # fmt: skip
    assert fake_stripe.state.subscriptions[SUB]["status"] == "canceled"
    assert state(client, secret_headers, sub)["status"] == "canceled"
    gone = echo(fake_stripe, "customer.subscription.deleted", "evt_refund_deleted", T0 + 10)
    assert deliver(client, gone).json()["outcome"] == "ignored_state"
    balanced(client, secret_headers)


def test_a_full_refund_whose_subscription_stripe_cannot_cancel_refunds_nothing_here(
    stripe_client, secret_headers, write_headers, fake_stripe
):
    """Stripe refunded, then failed to cancel: the refund is not booked here (its charge.refunded webhook books
    it), the subscription stays active here as it is in Stripe. The webhook books the refund, leaves the
    subscription running (as Stripe's) and asks Stripe nothing; a cancel asked for here afterwards is sent once."""
    client = stripe_client
    order, sub = stripe_plan(client, secret_headers, write_headers, fake_stripe)
    fake_stripe.state.subscription_replies.extend(
        [(500, stripe_error("api_error", "", "An unknown error"))] * 3
    )
    r = client.post(f"/v1/orders/{order['id']}/refund", headers=secret_headers, json={})
    assert (r.status_code, r.json()["error"]["code"]) == (502, "payment_provider_error"), r.text
    assert state(client, secret_headers, sub)["status"] == "active"
    assert client.get(f"/v1/orders/{order['id']}", headers=secret_headers).json()["refunded"] == 0
    [refunded_in_stripe] = refund_requests(fake_stripe)
    charge = {"id": "ch_pi_plan", "object": "charge", "amount": 9900, "amount_refunded": 9900, "currency": "usd",
              "payment_intent": "pi_plan", "refunded": True, "metadata": {}}  # fmt: skip
    payload = event("charge.refunded", charge, event_id="evt_refund_money")
    payload["created"] = T0 + 60
    assert deliver(client, payload).json()["outcome"] == "refunded"
    assert deliver(client, payload).json()["outcome"] == "duplicate"
    assert client.get(f"/v1/orders/{order['id']}", headers=secret_headers).json()["refunded"] == 9900
    assert state(client, secret_headers, sub)["status"] == "active"
    assert len(changes(fake_stripe)) == 3  # the refund's three failed cancels: the webhook sent nothing
    r = act(client, secret_headers, sub, "cancel", at_period_end=False, at=at(120))
    assert (r.status_code, r.json()["status"]) == (200, "canceled"), r.text
    assert [m for m, _, _ in changes(fake_stripe)] == ["DELETE"] * 4
    assert fake_stripe.state.subscriptions[SUB]["status"] == "canceled"
    assert refund_requests(fake_stripe) == [refunded_in_stripe]
    balanced(client, secret_headers)


# -- Stripe not changing it: nothing changes here -------------------------------------------------------


@pytest.mark.parametrize(
    ("replies", "status", "code", "next_n"),
    [
        # a definitive answer: Stripe keeps it for the key 24 h, so the next attempt takes the next key
        ([(400, stripe_error("invalid_request_error", "resource_missing", "No such subscription: 'sub_plan'"))],
         409, "provider_refused", 1),
        # unknown outcomes (Stripe failing; the SDK retried the same key): the next attempt reuses the key
        ([(500, stripe_error("api_error", "", "An unknown error occurred"))] * 3, 502, "payment_provider_error", 0),
    ],
)  # fmt: skip
def test_stripe_not_canceling_fails_the_cancel_and_changes_nothing(
    stripe_client, secret_headers, write_headers, fake_stripe, replies, status, code, next_n
):
    client = stripe_client
    _order, sub = stripe_plan(client, secret_headers, write_headers, fake_stripe)
    before = state(client, secret_headers, sub)
    fake_stripe.state.subscription_replies.extend(replies)
    r = act(client, secret_headers, sub, "cancel", at=at(86_400))
    assert (r.status_code, r.json()["error"]["code"]) == (status, code), r.text
    if status == 409:
        assert r.json()["error"]["message"] == "Stripe refused the request: No such subscription: 'sub_plan'"
    assert state(client, secret_headers, sub) == before
    assert events_named(client, secret_headers, sub, "Subscription Canceled") == 0
    assert fake_stripe.state.subscriptions[SUB]["cancel_at_period_end"] is False
    r = act(client, secret_headers, sub, "cancel", at=at(86_400))
    assert r.status_code == 200, r.text
    assert [k for _, _, k in changes(fake_stripe)] == [key(sub, 0, "cancel-at-period-end")] * len(replies) + [
        key(sub, next_n, "cancel-at-period-end")
    ]
    assert fake_stripe.state.subscriptions[SUB]["cancel_at_period_end"] is True


def test_an_unreachable_or_unconfigured_stripe_fails_every_action(
    stripe_client, secret_headers, write_headers, fake_stripe
):
    client = stripe_client
    _order, sub = stripe_plan(client, secret_headers, write_headers, fake_stripe)
    before = state(client, secret_headers, sub)
    settings = client.app.state.settings
    asks = [("cancel", {}), ("cancel", {"at_period_end": False}), ("pause", {}),
            ("change_plan", {"plan": "membership-monthly"})]  # fmt: skip
    settings.stripe_api_base = "http://127.0.0.1:9"  # nothing listens on the discard port
    for action, body in asks:
        r = act(client, secret_headers, sub, action, at=at(86_400), **body)
        assert (r.status_code, r.json()["error"]["code"]) == (502, "payment_provider_error"), r.text
        assert r.json()["error"]["details"]["type"] == "api_connection_error"
    settings.stripe_api_base, api_key = fake_stripe.base, settings.stripe_api_key
    settings.stripe_api_key = None
    for action, body in asks:
        r = act(client, secret_headers, sub, action, at=at(86_400), **body)
        assert (r.status_code, r.json()["error"]["code"]) == (409, "provider_not_configured"), r.text
    settings.stripe_api_key = api_key
    assert state(client, secret_headers, sub) == before
    assert sub_requests(fake_stripe) == [] and refund_requests(fake_stripe) == []
    balanced(client, secret_headers)


def test_a_manual_subscription_asks_stripe_nothing(stripe_client, secret_headers, write_headers, fake_stripe):
    client = stripe_client
    setup(client, secret_headers, write_headers, catalog=NO_TRIAL)
    order = buy(client, secret_headers, "inner-circle")
    pay(client, secret_headers, order["id"])
    [sub] = client.get("/v1/subscriptions", headers=secret_headers).json()["items"]
    for action, body in (("pause", {}), ("resume", {}), ("cancel", {}), ("resume", {}),
                         ("change_plan", {"plan": "membership-monthly"}), ("cancel", {"at_period_end": False})):  # fmt: skip
        r = act(client, secret_headers, sub, action, **body)
        assert r.status_code == 200, (action, r.text)
    assert fake_stripe.state.requests == []


# -- Stripe made the change, its answer was lost ------------------------------------------------------------


def test_a_change_stripe_made_whose_answer_was_lost_is_recorded_by_its_webhook_and_not_sent_again(
    stripe_client, secret_headers, write_headers, fake_stripe
):
    """Stripe cancels, and every answer (the SDK's retries under the same key included) is lost: 502, nothing
    changes here. Stripe's webhook then records the cancel; asking again changes nothing and asks Stripe
    nothing (before the webhook, asking again would reuse the key and get Stripe's first answer back)."""
    client = stripe_client
    _order, sub = stripe_plan(client, secret_headers, write_headers, fake_stripe)
    fake_stripe.state.lost_answers = 3
    r = act(client, secret_headers, sub, "cancel", at=at(86_400))
    assert (r.status_code, r.json()["error"]["code"]) == (502, "payment_provider_error"), r.text
    assert fake_stripe.state.subscriptions[SUB]["cancel_at_period_end"] is True  # done in Stripe
    assert state(client, secret_headers, sub)["state"]["cancel_at_period_end"] is False
    assert [k for _, _, k in changes(fake_stripe)] == [key(sub, 0, "cancel-at-period-end")] * 3
    payload = echo(fake_stripe, "customer.subscription.updated", "evt_lost", T0 + 86_400 + 1)
    assert deliver(client, payload).json()["outcome"] == "cancel_scheduled"
    assert deliver(client, payload).json()["outcome"] == "duplicate"
    r = act(client, secret_headers, sub, "cancel", at=at(86_400 + 2))
    assert r.status_code == 200 and r.json()["state"]["cancel_at_period_end"] is True, r.text
    assert len(changes(fake_stripe)) == 3
    assert events_named(client, secret_headers, sub, "Subscription Canceled") == 1


def test_a_retry_after_a_lost_answer_reuses_the_key_and_gets_stripes_first_answer(
    stripe_client, secret_headers, write_headers, fake_stripe
):
    client = stripe_client
    _order, sub = stripe_plan(client, secret_headers, write_headers, fake_stripe)
    fake_stripe.state.lost_answers = 3
    assert act(client, secret_headers, sub, "pause", at=at(86_400)).status_code == 502
    r = act(client, secret_headers, sub, "pause", at=at(86_400))
    assert (r.status_code, r.json()["status"]) == (200, "paused"), r.text
    assert [k for _, _, k in changes(fake_stripe)] == [key(sub, 0, "pause")] * 4
    assert events_named(client, secret_headers, sub, "Subscription Paused") == 1


# -- the buyer portal ----------------------------------------------------------------------------------


@pytest.fixture
def mailer(db: Database, settings: Settings, tmp_path: Path) -> Mailer:
    settings.maildir_path = str(tmp_path / "maildir")
    return Mailer(db, settings)


def test_a_buyer_canceling_in_the_portal_cancels_in_stripe(
    stripe_client, db, workspace, secret_headers, write_headers, fake_stripe, mailer
):
    client = stripe_client
    _order, sub = stripe_plan(client, secret_headers, write_headers, fake_stripe)
    sign_in(client, workspace.id, mailer, "ada@example.com")
    url = f"/p/{workspace.id}/subscription/{sub['id']}"
    csrf = csrf_of(client.get(f"/p/{workspace.id}/subscription").text)
    fake_stripe.state.subscription_replies.append(
        (400, stripe_error("invalid_request_error", "resource_missing", "No such subscription: 'sub_plan'"))
    )
    refused = client.post(url, data={"csrf_token": csrf, "action": "cancel"})
    assert refused.status_code == 409 and "No such subscription" in refused.text
    assert state(client, secret_headers, sub)["state"]["cancel_at_period_end"] is False
    for _ in range(2):  # a double submit: Stripe is asked once more, not twice
        done = client.post(url, data={"csrf_token": csrf, "action": "cancel"})
        assert done.status_code == 200 and "ends at the end of the current period" in done.text
    assert [(m, f) for m, f, _ in changes(fake_stripe)] == [("POST", {"cancel_at_period_end": "true"})] * 2
    assert [k for _, _, k in changes(fake_stripe)] == [key(sub, 0, "cancel-at-period-end"),
                                                       key(sub, 1, "cancel-at-period-end")]  # fmt: skip
    assert fake_stripe.state.subscriptions[SUB]["cancel_at_period_end"] is True
    assert state(client, secret_headers, sub)["state"]["cancel_at_period_end"] is True


# -- Stripe's echo delivered while our change is still being committed (a real server, real transactions) ------


@pytest.mark.parametrize("change", ["cancel_now", "downgrade"])
def test_the_echo_delivered_before_the_change_commits_changes_nothing_more(
    stripe_server: LiveServer, engine: Engine, fake_stripe: FakeStripeServer, change: str
) -> None:
    """Stripe makes the change and sends its event before it answers us: the webhook reaches the server while the
    action's transaction is still open. On PostgreSQL it waits for the row locks the action holds (seen waiting
    in ``pg_stat_activity`` before Stripe answers); on SQLite for the one writer. Then it finds the change made:
    one change, one event, one credit."""
    with httpx.Client(base_url=stripe_server.url, timeout=60) as http:
        secret, sub_id, order, sub = live_plan(stripe_server, http, fake_stripe, f"echo_{change}")
        results: list[tuple[int, str]] = []
        kind = "customer.subscription.deleted" if change == "cancel_now" else "customer.subscription.updated"

        def echo_now(method: str, path: str) -> None:
            fake_stripe.state.before_answer = None
            payload = event(
                kind, copy.deepcopy(fake_stripe.state.subscriptions[sub_id]), event_id=f"evt_{sub_id}_echo"
            )
            threads.append(deliver_while_open(stripe_server.url, engine, payload, results))

        threads: list[threading.Thread] = []
        fake_stripe.state.before_answer = echo_now
        body = {"action": "cancel", "at_period_end": False} if change == "cancel_now" else {
            "action": "change_plan", "plan": "membership-monthly"}  # fmt: skip
        r = http.post(f"/v1/subscriptions/{sub['id']}/actions", headers=secret, json=body)
        assert r.status_code == 200, r.text
        for thread in threads:
            thread.join(60)
        assert len(results) == 1 and results[0][0] == 200, results
        after = http.get(f"/v1/subscriptions/{sub['id']}", headers=secret).json()
        events = http.get(
            f"/v1/buyers/{sub['buyer_id']}/events", headers=secret, params={"limit": 200}
        ).json()
        names = [e["name"] for e in events["items"]]
        if change == "cancel_now":
            assert after["status"] == "canceled"
            assert names.count("Subscription Canceled") == 1
        else:
            # dated by its second, before the change's own time, or at it: a no-op either way
            assert after["offer_key"] == "membership-monthly" and results[0][1] in (
                "ignored_stale",
                "no_change",
            )
            assert names.count("Subscription Changed") == 1
            assert [q.form["amount"] for q in fake_stripe.state.requests if q.path == "/v1/refunds"] == [
                "6000"
            ]
            assert http.get(f"/v1/orders/{order['id']}", headers=secret).json()["refunded"] == 6000
        changed = [
            q
            for q in fake_stripe.state.requests
            if q.path == f"/v1/subscriptions/{sub_id}" and q.method != "GET"
        ]
        assert len(changed) == 1
        assert http.get("/v1/ledger/check", headers=secret).json() == {
            "balanced": True,
            "unbalanced_orders": [],
        }


def live_plan(
    server: LiveServer, http: httpx.Client, fake: FakeStripeServer, label: str
) -> tuple[dict, str, dict, dict]:
    """A new workspace on the live ``server`` whose buyer bought the inner circle through Stripe (paid now), and the
    subscription Stripe holds for it: (secret key headers, Stripe's subscription id, the order, our subscription)."""
    ws = json.loads(server.cli("workspace", "create", f"Live {label}", "--json").stdout)
    secret = bearer(ws["secret_key"])
    sub_id, now = f"sub_{label}_{ws['id'][-8:]}", int(time.time())
    assert http.put("/v1/offers/catalog", headers=secret, json={"text": NO_TRIAL}).status_code == 200
    r = http.post("/v1/checkout", headers=secret,
                  json={"user_id": label, "offer": "inner-circle", "provider": "stripe"})  # fmt: skip
    assert r.status_code == 201, r.text
    order = r.json()
    completed = event("checkout.session.completed", {
        "id": order["provider_ref"], "object": "checkout.session", "client_reference_id": order["id"],
        "metadata": {"order_id": order["id"]}, "payment_status": "paid", "status": "complete",
        "amount_total": 9900, "currency": "usd", "payment_intent": f"pi_{sub_id}", "mode": "subscription",
        "subscription": sub_id}, event_id=f"evt_{sub_id}_paid")  # fmt: skip
    completed["created"] = now
    assert post_webhook(server.url, completed)[1] == "paid"
    fake.state.payments[f"pi_{sub_id}"] = (9900, "usd")
    [sub] = http.get("/v1/subscriptions", headers=secret).json()["items"]
    fake.state.add_subscription(sub_id, [("Inner circle", 9900)], metadata={"order_id": order["id"]})
    return secret, sub_id, order, sub


def deliver_while_open(url: str, engine: Engine, payload: dict, results: list) -> threading.Thread:
    """Deliver ``payload`` (dated now) from a thread while the action Stripe is answering is still open; on
    PostgreSQL, return once the webhook is seen waiting for the action's locks."""
    payload["created"] = int(time.time())
    thread = threading.Thread(target=lambda: results.append(post_webhook(url, payload)))
    thread.start()
    if engine.dialect.name == "postgresql":
        waiting_for_a_lock(engine)
    return thread


def post_webhook(url: str, payload: dict) -> tuple[int, str]:
    body = json.dumps(payload).encode()
    with httpx.Client(base_url=url, timeout=60) as own:
        res = own.post("/v1/webhooks/stripe", content=body, headers={
            "Stripe-Signature": sign_payload(body, SECRET, int(time.time())), "Content-Type": "application/json"})  # fmt: skip
    return res.status_code, res.json().get("outcome") or res.text


def waiting_for_a_lock(engine: Engine) -> None:
    """Until another backend of this database waits for a lock (the webhook, behind the action's row locks)."""
    deadline = time.monotonic() + 30
    with engine.connect() as conn:
        while time.monotonic() < deadline:
            waiting = conn.execute(text(
                "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'"
            )).scalar_one()  # fmt: skip
            conn.rollback()
            if waiting:
                return
            time.sleep(0.01)
    raise AssertionError("the webhook never waited for the action's locks")
