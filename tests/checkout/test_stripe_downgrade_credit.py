"""A downgrade's credit on a plan paid through Stripe: what is booked as given back is what Stripe gave back.

The credit for the unused time of the dearer plan is refunded in Stripe first (``POST /v1/refunds`` on the
subscription's PaymentIntent, key ``offerloop-refund-<order>-<n>``) and booked with Stripe's refund id; if Stripe
refuses, fails, cannot be reached or is not configured, the downgrade fails (409/502) and nothing changes: plan,
grants, order and books. A refusal spends its key (the next attempt takes the next one); an unknown outcome does
not. A plan change Stripe itself reports is prorated by Stripe: it refunds and books nothing here.

Driven over HTTP as a creator would, against the loopback Stripe stand-in, with signed webhooks."""

from __future__ import annotations

import time
from datetime import UTC, datetime

import pytest
from tests.checkout.test_checkout_flow import buy, deliver, setup, stripe_client
from tests.checkout.test_stripe_money import subscription_updated
from tests.checkout.test_stripe_provider import FakeStripeServer, event, stripe_error
from tests.checkout.test_stripe_refunds import (
    balanced,
    charge_refunded,
    ledger,
    refund_requests,
    refunds_booked,
    workspace_of,
)

from offerloop.checkout import service as checkout_service

__all__ = ["stripe_client"]

T0 = 1_796_000_000
AT = datetime.fromtimestamp(T0, UTC).isoformat()  # the first period's start: the whole month is unused


def stripe_plan(client, headers, write_headers, fake: FakeStripeServer) -> tuple[dict, dict]:
    """The inner circle (USD 99.00 a month) bought through Stripe, paid with PaymentIntent pi_plan."""
    setup(client, headers, write_headers)
    order = buy(client, headers, "inner-circle", provider="stripe")
    obj = {"id": order["provider_ref"], "object": "checkout.session", "client_reference_id": order["id"],
           "metadata": {"order_id": order["id"]}, "payment_status": "paid", "status": "complete",
           "amount_total": 9900, "currency": "usd", "payment_intent": "pi_plan", "mode": "subscription",
           "subscription": "sub_plan"}  # fmt: skip
    payload = event("checkout.session.completed", obj, event_id="evt_plan_paid")
    payload["created"] = T0
    assert deliver(client, payload).json()["outcome"] == "paid"
    fake.state.payments["pi_plan"] = (9900, "usd")
    # the subscription the session created in Stripe: a plan change is made there first
    fake.state.add_subscription("sub_plan", [("The inner circle", 9900)], period=(T0, T0 + 30 * 86_400),
                                metadata={"order_id": order["id"]})  # fmt: skip
    [sub] = client.get("/v1/subscriptions", headers=headers).json()["items"]
    return order, sub


def downgrade(client, headers, sub: dict):
    return client.post(f"/v1/subscriptions/{sub['id']}/actions", headers=headers,
                       json={"action": "change_plan", "plan": "membership-monthly", "at": AT})  # fmt: skip


def order_state(client, headers, order: dict) -> tuple[str, int]:
    got = client.get(f"/v1/orders/{order['id']}", headers=headers).json()
    return got["status"], got["refunded"]


def plan_of(client, headers, sub: dict) -> tuple[str, int]:
    got = client.get(f"/v1/subscriptions/{sub['id']}", headers=headers).json()
    return got["offer_key"], got["state"]["amount"]


def in_inner_circle(client, headers) -> bool:
    r = client.get("/v1/entitlements/check", headers=headers,
                   params={"user_id": "ada", "component": "community_space", "ref": "inner-circle"})  # fmt: skip
    assert r.status_code == 200, r.text
    return r.json()["allowed"]


def test_a_downgrade_refunds_its_credit_in_stripe_then_books_it_with_the_refund_id(
    stripe_client, db, secret_headers, write_headers, fake_stripe
):
    client = stripe_client
    order, sub = stripe_plan(client, secret_headers, write_headers, fake_stripe)
    r = downgrade(client, secret_headers, sub)
    assert r.status_code == 200, r.text
    assert (r.json()["offer_key"], r.json()["state"]["amount"]) == ("membership-monthly", 3900)
    ws = workspace_of(db, order)
    assert refund_requests(fake_stripe) == [(
        {"amount": "6000", "payment_intent": "pi_plan", "metadata[order_id]": order["id"],
         "metadata[workspace_id]": ws},
        f"offerloop-refund-{order['id']}-0",
    )]  # fmt: skip
    assert fake_stripe.state.refunded == {"pi_plan": 6000}
    assert refunds_booked(client, secret_headers, order["id"]) == [(6000, "re_test_0001")]
    assert order_state(client, secret_headers, order) == ("partially_refunded", 6000)
    books = ledger(client, secret_headers, order["id"])
    assert (books["summary"]["refunds"]["amount"], books["refundable"]["amount"]) == (6000, 3900)
    # Stripe's charge.refunded for it, delivered twice: the credit is booked already
    for n in (1, 2):
        late = charge_refunded(order, "pi_plan", 6000, event_id=f"evt_credit_{n}")
        assert deliver(client, late).json()["outcome"] == "refund_already_recorded"
    assert refunds_booked(client, secret_headers, order["id"]) == [(6000, "re_test_0001")]
    # the same downgrade again is refused by the lifecycle (already on that plan) and asks Stripe nothing
    again = downgrade(client, secret_headers, sub)
    assert again.status_code == 409, again.text
    assert len(refund_requests(fake_stripe)) == 1
    balanced(client, secret_headers)


@pytest.mark.parametrize(
    ("replies", "status", "code", "next_key"),
    [
        # a definitive answer: Stripe keeps it for the key 24 h, so the next attempt takes the next key
        ([(400, stripe_error("invalid_request_error", "charge_disputed", "Charge ch_1 has been charged back."))],
         409, "refund_refused", 1),
        ([(402, stripe_error("card_error", "expired_or_canceled_card", "The card has expired."))],
         409, "refund_refused", 1),
        # unknown outcomes (Stripe failing; the SDK retried the same key): the next attempt reuses the key
        ([(500, stripe_error("api_error", "", "An unknown error occurred"))] * 3, 502, "payment_provider_error", 0),
        # rate limited: the request was not executed, so no answer is kept for the key (the SDK does not retry)
        ([(429, stripe_error("rate_limit_error", "rate_limit", "Too many requests"))], 502, "payment_provider_error", 0),
    ],
)  # fmt: skip
def test_stripe_not_refunding_the_credit_fails_the_downgrade_and_changes_nothing(
    stripe_client, db, secret_headers, write_headers, fake_stripe, replies, status, code, next_key
):
    client = stripe_client
    order, sub = stripe_plan(client, secret_headers, write_headers, fake_stripe)
    checkout_run(db)
    assert in_inner_circle(client, secret_headers)
    fake_stripe.state.replies.extend(replies)
    r = downgrade(client, secret_headers, sub)
    assert (r.status_code, r.json()["error"]["code"]) == (status, code), r.text
    assert_unchanged(client, secret_headers, order, sub)
    # asked again once Stripe answers: refunded under the key the outcome allows, booked once
    r = downgrade(client, secret_headers, sub)
    assert r.status_code == 200, r.text
    keys = [key for _, key in refund_requests(fake_stripe)]
    assert keys == [f"offerloop-refund-{order['id']}-0"] * len(replies) + [
        f"offerloop-refund-{order['id']}-{next_key}"
    ]
    assert fake_stripe.state.refunded == {"pi_plan": 6000}
    assert refunds_booked(client, secret_headers, order["id"]) == [(6000, "re_test_0001")]
    assert order_state(client, secret_headers, order) == ("partially_refunded", 6000)
    assert plan_of(client, secret_headers, sub) == ("membership-monthly", 3900)
    balanced(client, secret_headers)


def checkout_run(db) -> None:
    checkout_service.run_fulfilment(db=db)


def assert_unchanged(client, headers, order: dict, sub: dict) -> None:
    assert plan_of(client, headers, sub) == ("inner-circle", 9900)
    assert order_state(client, headers, order) == ("paid", 0)
    assert refunds_booked(client, headers, order["id"]) == []
    assert ledger(client, headers, order["id"])["refundable"]["amount"] == 9900
    assert in_inner_circle(client, headers)
    balanced(client, headers)


def test_a_refund_stripe_creates_as_failed_fails_the_downgrade_and_spends_its_key(
    stripe_client, db, secret_headers, write_headers, fake_stripe
):
    client = stripe_client
    order, sub = stripe_plan(client, secret_headers, write_headers, fake_stripe)
    checkout_run(db)
    fake_stripe.state.refund_status = "failed"
    r = downgrade(client, secret_headers, sub)
    assert (r.status_code, r.json()["error"]["code"]) == (409, "refund_refused"), r.text
    assert r.json()["error"]["details"]["refund_id"] == "re_test_0001"
    assert_unchanged(client, secret_headers, order, sub)
    fake_stripe.state.refund_status = "succeeded"
    assert downgrade(client, secret_headers, sub).status_code == 200
    assert [key for _, key in refund_requests(fake_stripe)] == [
        f"offerloop-refund-{order['id']}-0",
        f"offerloop-refund-{order['id']}-1",
    ]
    assert refunds_booked(client, secret_headers, order["id"]) == [(6000, "re_test_0002")]


def test_an_unreachable_or_unconfigured_stripe_fails_the_downgrade(
    stripe_client, db, secret_headers, write_headers, fake_stripe
):
    client = stripe_client
    order, sub = stripe_plan(client, secret_headers, write_headers, fake_stripe)
    checkout_run(db)
    settings = client.app.state.settings
    settings.stripe_api_base = "http://127.0.0.1:9"  # nothing listens on the discard port
    r = downgrade(client, secret_headers, sub)
    assert (r.status_code, r.json()["error"]["code"]) == (502, "payment_provider_error"), r.text
    assert r.json()["error"]["details"]["type"] == "api_connection_error"
    assert_unchanged(client, secret_headers, order, sub)
    settings.stripe_api_base, key = fake_stripe.base, settings.stripe_api_key
    settings.stripe_api_key = None
    r = downgrade(client, secret_headers, sub)
    assert (r.status_code, r.json()["error"]["code"]) == (409, "provider_not_configured"), r.text
    assert_unchanged(client, secret_headers, order, sub)
    settings.stripe_api_key = key
    assert refund_requests(fake_stripe) == []


def test_a_downgrade_stripe_reports_is_prorated_by_stripe_and_books_no_refund(
    stripe_client, db, secret_headers, write_headers, fake_stripe
):
    client = stripe_client
    order, sub = stripe_plan(client, secret_headers, write_headers, fake_stripe)
    changed = subscription_updated(order, "evt_down", at=T0 + 50, amount=3900, sub="sub_plan")
    r = deliver(client, changed)
    assert (r.status_code, r.json()["outcome"]) == (200, "plan_changed"), r.text
    assert plan_of(client, secret_headers, sub) == ("membership-monthly", 3900)
    assert refund_requests(fake_stripe) == []
    assert order_state(client, secret_headers, order) == ("paid", 0)
    assert refunds_booked(client, secret_headers, order["id"]) == []
    balanced(client, secret_headers)


def test_a_manual_plans_downgrade_is_booked_directly(client, db, secret_headers, write_headers, fake_stripe):
    setup(client, secret_headers, write_headers)
    order = buy(client, secret_headers, "inner-circle")
    at = datetime.fromtimestamp(int(time.time()), UTC).isoformat()
    r = client.post(f"/v1/orders/{order['id']}/paid", headers=secret_headers, json={"paid_at": at})
    assert r.status_code == 200, r.text
    [sub] = client.get("/v1/subscriptions", headers=secret_headers).json()["items"]
    start = sub["state"]["current_period_start"]
    r = client.post(f"/v1/subscriptions/{sub['id']}/actions", headers=secret_headers,
                    json={"action": "change_plan", "plan": "membership-monthly", "at": start})  # fmt: skip
    assert r.status_code == 200, r.text
    assert refund_requests(fake_stripe) == []
    assert refunds_booked(client, secret_headers, order["id"]) == [(6000, None)]
    assert order_state(client, secret_headers, order) == ("partially_refunded", 6000)
    balanced(client, secret_headers)


def test_a_downgrade_locks_the_plans_orders_before_the_plan(
    stripe_client, db, secret_headers, write_headers, fake_stripe
):
    """A Stripe webhook locks its order, then the subscription; a downgrade through the API locks the
    subscription's orders, then the subscription — the same order, so the two cannot deadlock on PostgreSQL
    (SQLite has one writer: no row locks, nothing to check)."""
    from sqlalchemy import event as sa_event

    engine = db.bind.engine
    if engine.dialect.name != "postgresql":
        pytest.skip("row locks (SELECT … FOR UPDATE) are PostgreSQL's")
    client = stripe_client
    _order, sub = stripe_plan(client, secret_headers, write_headers, fake_stripe)
    seen: list[str] = []

    def record(conn, cursor, statement, parameters, context, executemany):  # type: ignore[no-untyped-def]
        text = " ".join(statement.split()).lower()
        if " for update" in text and text.startswith("select"):
            for table in ("orders", "subscriptions"):
                if f" from {table} " in text + " ":
                    seen.append(table)

    sa_event.listen(engine, "before_cursor_execute", record)
    try:
        assert downgrade(client, secret_headers, sub).status_code == 200
    finally:
        sa_event.remove(engine, "before_cursor_execute", record)
    assert "orders" in seen and "subscriptions" in seen
    assert seen.index("orders") < seen.index("subscriptions"), seen


def stripe_price(fake: FakeStripeServer) -> tuple[list[int], str | None]:
    sub = fake.state.subscriptions["sub_plan"]
    return [i["price"]["unit_amount"] for i in sub["items"]["data"]], sub["metadata"].get("plan")


@pytest.mark.parametrize("how", ["refused", "failed", "unreachable"])
def test_a_downgrade_whose_credit_stripe_does_not_refund_does_not_stand_in_stripe_either(
    stripe_client, db, secret_headers, write_headers, fake_stripe, how
):
    """The price is changed in Stripe first, then the credit refunded: when the refund does not happen the
    downgrade fails here, and Stripe's price goes back too (it used to stay the cheaper plan's: Stripe would then
    charge 39.00 a month for a subscription held here at 99.00, refused as amount_mismatch, its access ending).
    Asked again once Stripe refunds, the downgrade is made under a new key (not a replay of the undone one)."""
    client = stripe_client
    order, sub = stripe_plan(client, secret_headers, write_headers, fake_stripe)
    checkout_run(db)
    if how == "refused":
        fake_stripe.state.replies.append(
            (
                400,
                stripe_error("invalid_request_error", "charge_already_refunded", "Charge has been refunded"),
            )
        )
    elif how == "failed":
        fake_stripe.state.refund_status = "failed"
    else:
        fake_stripe.state.replies.extend([(500, stripe_error("api_error", "", "Try again"))] * 3)
    r = downgrade(client, secret_headers, sub)
    assert r.status_code in (409, 502), r.text
    assert_unchanged(client, secret_headers, order, sub)
    assert stripe_price(fake_stripe) == ([9900], "inner-circle")
    fake_stripe.state.refund_status = "succeeded"
    r = downgrade(client, secret_headers, sub)
    assert r.status_code == 200, r.text
    assert stripe_price(fake_stripe) == ([3900], "membership-monthly")
    assert plan_of(client, secret_headers, sub) == ("membership-monthly", 3900)
    keys = [q.headers.get("idempotency-key") for q in fake_stripe.state.requests
            if q.path == "/v1/subscriptions/sub_plan" and q.method == "POST"]  # fmt: skip
    assert len(set(keys)) == len(keys) == 3, keys  # change, undo, change again: three keys
    assert fake_stripe.state.refunded == {"pi_plan": 6000}
    balanced(client, secret_headers)
