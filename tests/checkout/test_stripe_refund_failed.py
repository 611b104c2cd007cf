"""A Stripe refund booked while ``pending`` that later fails: the money never went back, so the books say so.

Stripe reports it as ``refund.failed`` and as ``refund.updated`` / ``charge.refund.updated`` whose Refund has
status ``failed`` (or ``canceled``): three events about one failure, in any order, any of them twice. The booked
refund entry stays and is balanced by an adjustment with its opposite postings; the order's refunded amount and
status come back, and the access the refund ended is given back. A ``charge.refunded`` sent before the failure
(its cumulative amount still holds the failed refund) books nothing when it arrives after it. A failure that
arrives before the refund is booked (a retry after a transaction that rolled back) keeps it from being booked.

And the refund keys: a key Stripe definitively refused (a 4xx, or a refund it created as failed) is never sent
again (Stripe keeps its answer 24 hours); a key whose outcome is unknown (a 5xx, unreachable) is reused.

Over HTTP with the loopback Stripe stand-in and signed webhooks, on SQLite and PostgreSQL."""

from __future__ import annotations

import time

import pytest
from tests.checkout.test_checkout_flow import deliver, stripe_client
from tests.checkout.test_stripe_provider import FakeStripeServer, event, stripe_error
from tests.checkout.test_stripe_refunds import (
    allowed,
    balanced,
    charge_refunded,
    ledger,
    paid_order,
    refund,
    refund_requests,
    refund_then_crash,
    refunds_booked,
    shop,
)

from offerloop.checkout import service as checkout_service
from offerloop.checkout.stripe_provider import WebhookEvent, normalize

__all__ = ["shop", "stripe_client"]


def refund_event(
    fake: FakeStripeServer, n: int, kind: str, status: str, *, event_id: str, created: int
) -> dict:
    """Stripe's event about its refund number ``n`` (as the stand-in created it) now in ``status``."""
    obj = {**fake.state.refunds[n], "status": status,
           "failure_reason": "expired_or_canceled_card" if status == "failed" else None}  # fmt: skip
    payload = event(kind, obj, event_id=event_id)
    payload["created"] = created
    return payload


def post(client, payload: dict) -> str:
    r = deliver(client, payload)
    assert r.status_code == 200, r.text
    return r.json()["outcome"]


def order_state(client, headers, order_id: str) -> tuple[str, int]:
    got = client.get(f"/v1/orders/{order_id}", headers=headers).json()
    return got["status"], got["refunded"]


def entries(client, headers, order_id: str) -> list[tuple[str, int, str | None]]:
    """(kind, cash it returns to the buyer, Stripe refund id) of each entry of the order, in booking order: a
    refund's "refunded to buyer" posting, which a reversal of it takes back (negative)."""
    out = []
    for e in ledger(client, headers, order_id)["entries"]:
        back = -sum(p["amount"] for p in e["postings"]
                    if p["account"] == "buyer_payments" and p["memo"].endswith("refunded to buyer"))  # fmt: skip
        out.append((e["kind"], back, e["tags"].get("provider_refund")))
    return out


def test_a_pending_full_refund_that_fails_is_reversed_once_and_access_comes_back(
    shop, db, secret_headers, fake_stripe
):
    order = paid_order(shop, secret_headers, fake_stripe, pi="pi_fail_full")
    checkout_service.run_fulfilment(db=db)
    fake_stripe.state.refund_status = "pending"
    r = refund(shop, secret_headers, order["id"])
    assert (r.status_code, r.json()["status"], r.json()["refunded"]) == (200, "refunded", 2700), r.text
    assert not allowed(shop, secret_headers)
    sent = int(time.time())
    refunded_then = charge_refunded(order, "pi_fail_full", 2700, event_id="evt_ch_before")
    refunded_then["created"] = sent  # the charge as it was while the refund was pending

    now = sent + 60
    failed = refund_event(fake_stripe, 0, "refund.failed", "failed", event_id="evt_rf", created=now)
    updated = refund_event(fake_stripe, 0, "charge.refund.updated", "failed", event_id="evt_cru", created=now)
    other = refund_event(fake_stripe, 0, "refund.updated", "failed", event_id="evt_ru", created=now + 1)
    # the failure, said three ways, each delivered twice, the first one out of order
    assert post(shop, updated) == "refund_reversed"
    assert [post(shop, p) for p in (failed, failed, updated, other, other)] == [
        "refund_failure_already_recorded", "duplicate", "duplicate", "refund_failure_already_recorded", "duplicate",
    ]  # fmt: skip
    assert order_state(shop, secret_headers, order["id"]) == ("paid", 0)
    assert entries(shop, secret_headers, order["id"]) == [
        ("sale", 0, None), ("refund", 2700, "re_test_0001"), ("adjustment", -2700, "re_test_0001"),
    ]  # fmt: skip
    books = ledger(shop, secret_headers, order["id"])
    assert (books["summary"]["refunds"]["amount"], books["refundable"]["amount"]) == (0, 2700)
    assert books["summary"]["net"]["amount"] == 2700
    assert allowed(shop, secret_headers)  # the access the refund ended is back
    # Stripe's charge.refunded sent while the refund was pending, delivered after its failure: nothing is booked
    assert post(shop, refunded_then) == "refund_already_recorded"
    assert order_state(shop, secret_headers, order["id"]) == ("paid", 0)
    # a new refund is a new key (the failed one is still a refund of the order's) and is booked
    fake_stripe.state.refund_status = "succeeded"
    fake_stripe.state.refunded["pi_fail_full"] = (
        0  # Stripe gave the failed refund's money back to the balance
    )
    r = refund(shop, secret_headers, order["id"], amount=1000)
    assert (r.status_code, r.json()["status"], r.json()["refunded"]) == (200, "partially_refunded", 1000), (
        r.text
    )
    assert [key for _, key in refund_requests(fake_stripe)] == [
        f"offerloop-refund-{order['id']}-0", f"offerloop-refund-{order['id']}-1",
    ]  # fmt: skip
    balanced(shop, secret_headers)


def test_a_failed_partial_refund_restores_only_its_own_amount(shop, db, secret_headers, fake_stripe):
    order = paid_order(shop, secret_headers, fake_stripe, pi="pi_fail_part")
    assert refund(shop, secret_headers, order["id"], amount=1000).status_code == 200  # succeeded
    fake_stripe.state.refund_status = "pending"
    assert refund(shop, secret_headers, order["id"], amount=700).json()["refunded"] == 1700
    now = int(time.time()) + 60
    # a status update that is not a failure moves nothing
    assert post(
        shop, refund_event(fake_stripe, 1, "refund.updated", "succeeded", event_id="evt_ok", created=now)
    ) == ("refund_succeeded")
    assert post(
        shop, refund_event(fake_stripe, 1, "refund.failed", "failed", event_id="evt_f", created=now)
    ) == ("refund_reversed")
    assert order_state(shop, secret_headers, order["id"]) == ("partially_refunded", 1000)
    assert entries(shop, secret_headers, order["id"])[1:] == [
        ("refund", 1000, "re_test_0001"), ("refund", 700, "re_test_0002"), ("adjustment", -700, "re_test_0002"),
    ]  # fmt: skip
    books = ledger(shop, secret_headers, order["id"])
    assert (books["summary"]["refunds"]["amount"], books["refundable"]["amount"]) == (1000, 1700)
    # a canceled refund is no money back either; one this order never booked is left alone
    assert post(
        shop, refund_event(fake_stripe, 0, "refund.updated", "canceled", event_id="evt_c0", created=now)
    ) == ("refund_reversed")
    assert order_state(shop, secret_headers, order["id"]) == ("paid", 0)
    stranger = refund_event(fake_stripe, 0, "refund.failed", "failed", event_id="evt_x", created=now)
    stranger["data"]["object"]["id"] = "re_not_ours"
    assert post(shop, stranger) == "refund_not_booked"
    assert order_state(shop, secret_headers, order["id"]) == ("paid", 0)
    balanced(shop, secret_headers)


def test_a_failure_that_overtakes_the_booking_keeps_the_refund_from_being_booked(
    shop, db, secret_headers, fake_stripe
):
    """Stripe accepted a pending refund, then the transaction that was to book it rolled back; its failure
    arrives before the creator retries. The retry (same key) gets the pending refund back from Stripe: it is
    not booked, its key is spent, and the next attempt is a new refund."""
    order = paid_order(shop, secret_headers, fake_stripe, pi="pi_overtaken")
    provider = checkout_service.stripe_provider(shop.app.state.settings)
    fake_stripe.state.refund_status = "pending"
    refund_then_crash(db, order, 1200, provider)
    failed = refund_event(
        fake_stripe, 0, "refund.failed", "failed", event_id="evt_early", created=int(time.time())
    )
    assert post(shop, failed) == "refund_not_booked"
    assert post(shop, failed) == "duplicate"
    r = refund(shop, secret_headers, order["id"], amount=1200)
    assert (r.status_code, r.json()["error"]["code"]) == (409, "refund_refused"), r.text
    assert (r.json()["error"]["details"]["code"], r.json()["error"]["details"]["refund_id"]) == (
        "refund_failed", "re_test_0001",
    )  # fmt: skip
    assert order_state(shop, secret_headers, order["id"]) == ("paid", 0)
    assert refunds_booked(shop, secret_headers, order["id"]) == []
    fake_stripe.state.refund_status = "succeeded"
    r = refund(shop, secret_headers, order["id"], amount=1200)
    assert (r.status_code, r.json()["refunded"]) == (200, 1200), r.text
    assert [key for _, key in refund_requests(fake_stripe)] == [f"offerloop-refund-{order['id']}-0"] * 2 + [
        f"offerloop-refund-{order['id']}-1"
    ]
    assert refunds_booked(shop, secret_headers, order["id"]) == [(1200, "re_test_0002")]
    balanced(shop, secret_headers)


# -- idempotency keys: a definitive refusal spends the key, an unknown outcome keeps it ------------------------


@pytest.mark.parametrize(
    ("replies", "status", "next_key"),
    [
        ([(400, stripe_error("invalid_request_error", "charge_already_refunded", "Charge ch_1 has already been refunded."))],
         409, 1),
        ([(400, stripe_error("invalid_request_error", "amount_too_large", "Refund amount is greater than unrefunded amount", param="amount"))],
         409, 1),
        ([(402, stripe_error("card_error", "expired_or_canceled_card", "The card has expired."))], 409, 1),
        ([(500, stripe_error("api_error", "", "An unknown error occurred"))] * 3, 502, 0),
        ([(503, stripe_error("api_error", "", "Service unavailable"))] * 3, 502, 0),
    ],
)  # fmt: skip
def test_the_key_of_a_refused_refund_is_not_reused_the_key_of_an_unknown_outcome_is(
    shop, db, secret_headers, fake_stripe, replies, status, next_key
):
    order = paid_order(shop, secret_headers, fake_stripe, pi="pi_keys")
    fake_stripe.state.replies.extend(replies)
    r = refund(shop, secret_headers, order["id"], amount=900)
    assert r.status_code == status, r.text
    assert refunds_booked(shop, secret_headers, order["id"]) == []
    r = refund(shop, secret_headers, order["id"], amount=900)
    assert (r.status_code, r.json()["refunded"]) == (200, 900), r.text
    keys = [key for _, key in refund_requests(fake_stripe)]
    assert keys == [f"offerloop-refund-{order['id']}-0"] * len(replies) + [
        f"offerloop-refund-{order['id']}-{next_key}"
    ]
    assert refunds_booked(shop, secret_headers, order["id"]) == [(900, "re_test_0001")]
    # and the refund after it takes the key after that
    assert refund(shop, secret_headers, order["id"], amount=100).status_code == 200
    assert [*keys, f"offerloop-refund-{order['id']}-{next_key + 1}"] == [
        k for _, k in refund_requests(fake_stripe)
    ]
    balanced(shop, secret_headers)


def test_an_unreachable_stripe_keeps_the_key(shop, secret_headers, fake_stripe):
    order = paid_order(shop, secret_headers, fake_stripe, pi="pi_unreach_key")
    settings = shop.app.state.settings
    settings.stripe_api_base = "http://127.0.0.1:9"
    assert refund(shop, secret_headers, order["id"], amount=500).status_code == 502
    settings.stripe_api_base = fake_stripe.base
    assert refund(shop, secret_headers, order["id"], amount=500).status_code == 200
    assert [key for _, key in refund_requests(fake_stripe)] == [f"offerloop-refund-{order['id']}-0"]


def test_refund_events_normalize_from_stripes_refund_object() -> None:
    refund_obj = {"id": "re_1", "object": "refund", "amount": 700, "currency": "usd", "charge": "ch_1",
                  "payment_intent": "pi_1", "status": "failed", "failure_reason": "lost_or_stolen_card",
                  "metadata": {"order_id": "ord_1", "workspace_id": "ws_1"}}  # fmt: skip
    seen = []
    for kind, status in (("refund.failed", "failed"), ("refund.updated", "failed"), ("charge.refund.updated", "canceled"),
                         ("refund.updated", "succeeded"), ("charge.refund.updated", "pending")):  # fmt: skip
        obj = {**refund_obj, "status": status}
        out = normalize(
            WebhookEvent(
                id="evt", type=kind, created=1_796_000_000, object=obj, raw={"data": {"object": obj}}
            )
        )
        assert out is not None
        seen.append(
            (out.kind, out.refund_id, out.amount, out.payment_intent_id, out.order_id, out.payment_status)
        )
    assert seen == [
        ("refund_failed", "re_1", 700, "pi_1", "ord_1", "failed"),
        ("refund_failed", "re_1", 700, "pi_1", "ord_1", "failed"),
        ("refund_failed", "re_1", 700, "pi_1", "ord_1", "canceled"),
        ("refund_updated", "re_1", 700, "pi_1", "ord_1", "succeeded"),
        ("refund_updated", "re_1", 700, "pi_1", "ord_1", "pending"),
    ]


def test_an_earlier_refund_failing_gives_back_the_access_a_later_full_refund_ended(
    shop, db, secret_headers, fake_stripe
):
    order = paid_order(shop, secret_headers, fake_stripe, pi="pi_fail_first")
    checkout_service.run_fulfilment(db=db)
    fake_stripe.state.refund_status = "pending"
    assert refund(shop, secret_headers, order["id"], amount=1000).status_code == 200
    fake_stripe.state.refund_status = "succeeded"
    r = refund(shop, secret_headers, order["id"])  # the rest: the order is fully refunded, access ends
    assert (r.status_code, r.json()["status"], r.json()["refunded"]) == (200, "refunded", 2700), r.text
    assert not allowed(shop, secret_headers)
    failed = refund_event(
        fake_stripe, 0, "refund.failed", "failed", event_id="evt_first", created=int(time.time())
    )
    assert post(shop, failed) == "refund_reversed"
    assert order_state(shop, secret_headers, order["id"]) == ("partially_refunded", 1700)
    assert allowed(shop, secret_headers)  # 10.00 of it is still paid for
    books = ledger(shop, secret_headers, order["id"])
    assert (books["summary"]["refunds"]["amount"], books["refundable"]["amount"]) == (1700, 1000)
    balanced(shop, secret_headers)
