"""Refunds of orders paid through Stripe: what is refunded in Stripe is what is booked. A refund made in offerloop
(API, console, CLI) creates a Stripe Refund first (`POST /v1/refunds` on the order's PaymentIntent, the amount
in Stripe's units, an idempotency key per order and refund) and books only what Stripe accepted; Stripe's later
`charge.refunded` webhook books nothing more, while a refund made in Stripe's dashboard is booked once by it.
Stripe refusing, failing or unreachable books nothing and leaves access as it was. Duplicates, sequential and
concurrent (threads on the service, and two server processes over HTTP), refund once and book once.

Over HTTP with the loopback Stripe stand-in (tests/checkout/test_stripe_provider.py) and signed webhooks."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest
import yaml
from sqlalchemy import Engine
from tests.checkout.log import forget_queued_work, processed
from tests.checkout.test_checkout_flow import CATALOG, buy, deliver, setup, stripe_client
from tests.checkout.test_stripe_concurrency import stripe_server
from tests.checkout.test_stripe_provider import API_KEY, SECRET, FakeStripeServer, event, stripe_error
from tests.conftest import LiveServer, basic, bearer, msg

from offerloop.checkout import service as checkout_service
from offerloop.checkout.exceptions import CheckoutError
from offerloop.checkout.stripe_provider import StripeConfig, StripeProvider, sign_payload
from offerloop.core import currencies
from offerloop.db.uow import Database
from offerloop.ledger import service as ledger_service
from offerloop.models import Order
from offerloop.offers import service as offers_service
from offerloop.workspaces import service as workspace_service

__all__ = ["stripe_client", "stripe_server"]


def catalog() -> str:
    """The demo catalog, with the playbook also priced in a zero-decimal currency (JPY) and in the two Stripe
    counts in another unit than ISO: ISK (hundredths of a krona there) and MGA (whole ariary there)."""
    data = yaml.safe_load(CATALOG)
    playbook = next(o for o in data["offers"] if o["key"] == "pricing-playbook")
    playbook["prices"].update({"JPY": 4000, "ISK": 1990, "MGA": 160000})
    return yaml.safe_dump(data, sort_keys=False)


def stripe_units(currency: str, amount: int) -> int:
    converted = currencies.to_provider_units("stripe", currency, amount)
    assert converted is not None
    return converted


def paid_order(
    client,
    headers,
    fake: FakeStripeServer,
    *,
    pi: str,
    currency: str = "USD",
    offer: str = "pricing-playbook",
) -> dict:
    """A Stripe checkout paid by its completion webhook with PaymentIntent ``pi``, which Stripe then knows."""
    order = buy(client, headers, offer, provider="stripe", currency=currency)
    charged = stripe_units(currency, order["total"])
    obj = {"id": order["provider_ref"], "object": "checkout.session", "client_reference_id": order["id"],
           "metadata": {"order_id": order["id"]}, "payment_status": "paid", "status": "complete",
           "amount_total": charged, "currency": currency.lower(), "payment_intent": pi, "mode": "payment"}  # fmt: skip
    payload = event("checkout.session.completed", obj, event_id=f"evt_paid_{order['id']}")
    payload["created"] = int(time.time())
    r = deliver(client, payload)
    assert (r.status_code, r.json()["outcome"]) == (200, "paid"), r.text
    fake.state.payments[pi] = (charged, currency.lower())
    return client.get(f"/v1/orders/{order['id']}", headers=headers).json()


def charge_refunded(order: dict, pi: str, refunded: int, *, event_id: str) -> dict:
    """Stripe's ``charge.refunded``: the charge with its cumulative ``amount_refunded`` (Stripe's units)."""
    cur = order["currency"]
    charged = stripe_units(cur, order["total"])
    obj = {"id": f"ch_{pi}", "object": "charge", "amount": charged, "amount_refunded": stripe_units(cur, refunded),
           "currency": cur.lower(), "payment_intent": pi, "refunded": refunded == order["total"],
           "metadata": {"order_id": order["id"]}}  # fmt: skip
    payload = event("charge.refunded", obj, event_id=event_id)
    payload["created"] = int(time.time())
    return payload


def refund(client, headers, order_id: str, **body: Any) -> httpx.Response:
    return client.post(f"/v1/orders/{order_id}/refund", headers=headers, json=body)


def refund_requests(fake: FakeStripeServer) -> list[tuple[dict[str, str], str]]:
    """(form, idempotency key) of every ``POST /v1/refunds`` Stripe received."""
    return [(r.form, r.headers["idempotency-key"]) for r in fake.state.requests if r.path == "/v1/refunds"]


def ledger(client, headers, order_id: str) -> dict:
    r = client.get(f"/v1/ledger/orders/{order_id}", headers=headers)
    assert r.status_code == 200, r.text
    return r.json()


def refunds_booked(client, headers, order_id: str) -> list[tuple[int, str | None]]:
    """(amount, Stripe refund id) of each refund entry of the order, largest first (a webhook's entry is dated by
    its event's second, so time does not order it against one booked here)."""
    out = []
    for e in ledger(client, headers, order_id)["entries"]:
        if e["kind"] == "refund":
            # the cash returned: the credits of the clearing account (ledger.postings)
            amount = sum(
                p["amount"] for p in e["postings"] if p["account"] == "buyer_payments" and p["amount"] < 0
            )
            out.append((-amount, e["tags"].get("provider_refund")))
    return sorted(out, key=lambda r: -r[0])


def balanced(client, headers) -> None:
    check = client.get("/v1/ledger/check", headers=headers).json()
    assert check == {"balanced": True, "unbalanced_orders": []}


def allowed(client, headers, user: str = "ada") -> bool:
    r = client.get("/v1/entitlements/check", headers=headers,
                   params={"user_id": user, "component": "download", "ref": "pricing-playbook-pdf"})  # fmt: skip
    assert r.status_code == 200, r.text
    return r.json()["allowed"]


def workspace_of(db, order: dict) -> str:
    with db.read() as session:
        return session.get(Order, order["id"]).workspace_id


@pytest.fixture
def shop(stripe_client, db, secret_headers, write_headers):
    setup(stripe_client, secret_headers, write_headers, catalog=catalog())
    return stripe_client


# -- full and partial refunds: Stripe first, then the books, and the webhook adds nothing ---------------------


def test_a_full_refund_refunds_in_stripe_books_it_once_and_its_webhook_books_nothing_more(
    shop, db, secret_headers, fake_stripe
):
    order = paid_order(shop, secret_headers, fake_stripe, pi="pi_full")
    checkout_service.run_fulfilment(db=db)
    assert allowed(shop, secret_headers)

    r = refund(shop, secret_headers, order["id"], reason="asked by the buyer")
    assert r.status_code == 200, r.text
    assert (r.json()["status"], r.json()["refunded"]) == ("refunded", 2700)
    ws = workspace_of(db, order)
    assert refund_requests(fake_stripe) == [(
        {"amount": "2700", "payment_intent": "pi_full", "metadata[order_id]": order["id"],
         "metadata[workspace_id]": ws},
        f"offerloop-refund-{order['id']}-0",
    )]  # fmt: skip
    assert fake_stripe.state.refunded == {"pi_full": 2700}
    assert refunds_booked(shop, secret_headers, order["id"]) == [(2700, "re_test_0001")]
    assert not allowed(shop, secret_headers)  # a full refund ends the access
    balanced(shop, secret_headers)

    # Stripe's webhook about this refund (delivered twice) books nothing more
    for n in (1, 2):
        r = deliver(shop, charge_refunded(order, "pi_full", 2700, event_id=f"evt_full_{n}"))
        assert r.json()["outcome"] == "refund_already_recorded", r.text
    assert refunds_booked(shop, secret_headers, order["id"]) == [(2700, "re_test_0001")]
    # the same refund again: nothing is left, so Stripe is not asked
    again = refund(shop, secret_headers, order["id"])
    assert (again.status_code, again.json()["error"]["code"]) == (409, "not_refundable")
    assert len(refund_requests(fake_stripe)) == 1
    assert ledger(shop, secret_headers, order["id"])["summary"]["refunds"]["amount"] == 2700
    balanced(shop, secret_headers)


@pytest.mark.parametrize(
    ("currency", "first", "sent"),
    [("USD", 1000, "1000"), ("JPY", 1500, "1500"), ("ISK", 500, "50000"), ("MGA", 50000, "500")],
)
def test_partial_refunds_send_stripes_units_with_one_key_per_refund_and_book_what_stripe_refunded(
    shop, db, secret_headers, fake_stripe, currency, first, sent
):
    pi = f"pi_part_{currency.lower()}"
    order = paid_order(shop, secret_headers, fake_stripe, pi=pi, currency=currency)
    total = order["total"]
    r = refund(shop, secret_headers, order["id"], amount=first)
    assert (r.status_code, r.json()["status"], r.json()["refunded"]) == (200, "partially_refunded", first), (
        r.text
    )
    assert deliver(shop, charge_refunded(order, pi, first, event_id=f"evt_p1_{currency}")).json()[
        "outcome"
    ] == ("refund_already_recorded")
    r = refund(shop, secret_headers, order["id"])  # the rest
    assert (r.status_code, r.json()["status"], r.json()["refunded"]) == (200, "refunded", total), r.text
    assert deliver(shop, charge_refunded(order, pi, total, event_id=f"evt_p2_{currency}")).json()[
        "outcome"
    ] == ("refund_already_recorded")
    sent_forms = refund_requests(fake_stripe)
    assert [(f["amount"], f["payment_intent"], key) for f, key in sent_forms] == [
        (sent, pi, f"offerloop-refund-{order['id']}-0"),
        (str(stripe_units(currency, total - first)), pi, f"offerloop-refund-{order['id']}-1"),
    ]
    assert all(f["metadata[order_id]"] == order["id"] for f, _ in sent_forms)
    # what Stripe refunded (its units, back in ISO minor units) is what the books hold, refund by refund
    assert fake_stripe.state.refunded == {pi: stripe_units(currency, total)}
    assert sorted(refunds_booked(shop, secret_headers, order["id"]), key=lambda r: r[1] or "") == [
        (first, "re_test_0001"),
        (total - first, "re_test_0002"),
    ]
    assert ledger(shop, secret_headers, order["id"])["summary"]["refunds"]["amount"] == total
    balanced(shop, secret_headers)


def test_an_amount_stripe_cannot_express_is_refused_before_stripe_is_asked(shop, secret_headers, fake_stripe):
    order = paid_order(shop, secret_headers, fake_stripe, pi="pi_mga", currency="MGA")
    r = refund(shop, secret_headers, order["id"], amount=150)  # MGA 1.50: Stripe counts whole ariary
    assert (r.status_code, r.json()["error"]["code"]) == (422, "validation_failed"), r.text
    assert "cannot be refunded: Stripe takes whole units" in r.json()["error"]["message"]
    assert refund_requests(fake_stripe) == []
    assert refunds_booked(shop, secret_headers, order["id"]) == []


def test_a_dashboard_refund_is_booked_once_by_its_webhook_and_added_to_one_made_here(
    shop, secret_headers, fake_stripe
):
    order = paid_order(shop, secret_headers, fake_stripe, pi="pi_dash")
    # refunded in Stripe's dashboard: only the webhook tells us, and it books it once
    assert (
        deliver(shop, charge_refunded(order, "pi_dash", 500, event_id="evt_dash_1")).json()["outcome"]
        == "refunded"
    )
    assert deliver(shop, charge_refunded(order, "pi_dash", 500, event_id="evt_dash_1b")).json()[
        "outcome"
    ] == ("refund_already_recorded")
    fake_stripe.state.refunded["pi_dash"] = 500
    # then a refund made here: its key counts the dashboard's refund, so it is a new refund in Stripe
    r = refund(shop, secret_headers, order["id"], amount=1000)
    assert (r.status_code, r.json()["refunded"]) == (200, 1500), r.text
    assert [key for _, key in refund_requests(fake_stripe)] == [f"offerloop-refund-{order['id']}-1"]
    # a second dashboard refund: the cumulative amount books exactly the new part; late events add nothing
    assert (
        deliver(shop, charge_refunded(order, "pi_dash", 1800, event_id="evt_dash_2")).json()["outcome"]
        == "refunded"
    )
    for n, cumulative in enumerate((1500, 500, 1800)):
        late = charge_refunded(order, "pi_dash", cumulative, event_id=f"evt_dash_late_{n}")
        assert deliver(shop, late).json()["outcome"] == "refund_already_recorded"
    assert refunds_booked(shop, secret_headers, order["id"]) == [
        (1000, "re_test_0001"),
        (500, None),
        (300, None),
    ]
    got = shop.get(f"/v1/orders/{order['id']}", headers=secret_headers).json()
    assert (got["status"], got["refunded"]) == ("partially_refunded", 1800)
    balanced(shop, secret_headers)


# -- Stripe says no, or cannot be reached: nothing is booked, access stays ------------------------------------


def assert_untouched(client, headers, db, order: dict) -> None:
    got = client.get(f"/v1/orders/{order['id']}", headers=headers).json()
    assert (got["status"], got["refunded"]) == ("paid", 0)
    assert refunds_booked(client, headers, order["id"]) == []
    assert ledger(client, headers, order["id"])["refundable"]["amount"] == order["total"]
    checkout_service.run_fulfilment(db=db)
    assert allowed(client, headers)
    balanced(client, headers)


@pytest.mark.parametrize(
    ("replies", "status", "code", "stripe_code"),
    [
        ([(400, stripe_error("invalid_request_error", "charge_already_refunded", "Charge ch_1 has already been refunded."))],
         409, "refund_refused", "charge_already_refunded"),
        ([(400, stripe_error("invalid_request_error", "charge_disputed", "Charge ch_1 has been charged back."))],
         409, "refund_refused", "charge_disputed"),
        ([(402, stripe_error("card_error", "expired_or_canceled_card", "The card has expired."))],
         409, "refund_refused", "expired_or_canceled_card"),
        ([(401, stripe_error("invalid_request_error", "api_key_expired", "Expired API Key provided."))],
         502, "payment_provider_error", "api_key_expired"),
        # a 500 is retried by the SDK with the same key (3 attempts): Stripe keeps failing
        ([(500, stripe_error("api_error", "", "An unknown error occurred"))] * 3,
         502, "payment_provider_error", None),
    ],
)  # fmt: skip
def test_stripe_refusing_the_refund_books_nothing_and_answers_its_code(
    shop, db, secret_headers, fake_stripe, replies, status, code, stripe_code
):
    order = paid_order(shop, secret_headers, fake_stripe, pi="pi_refused")
    fake_stripe.state.replies.extend(replies)
    r = refund(shop, secret_headers, order["id"])
    assert (r.status_code, r.json()["error"]["code"]) == (status, code), r.text
    details = r.json()["error"]["details"]
    assert (details["provider"], details["code"] or None) == ("stripe", stripe_code)
    assert len(refund_requests(fake_stripe)) == len(replies)
    assert_untouched(shop, secret_headers, db, order)


@pytest.mark.parametrize("refund_status", ["failed", "canceled", "requires_action"])
def test_a_refund_stripe_did_not_complete_books_nothing(shop, db, secret_headers, fake_stripe, refund_status):
    order = paid_order(shop, secret_headers, fake_stripe, pi="pi_incomplete")
    fake_stripe.state.refund_status = refund_status
    r = refund(shop, secret_headers, order["id"], amount=1000)
    assert (r.status_code, r.json()["error"]["code"]) == (409, "refund_refused"), r.text
    details = r.json()["error"]["details"]
    assert (details["refund_id"], details["status"], details["code"]) == (
        "re_test_0001",
        refund_status,
        refund_status,
    )
    assert_untouched(shop, secret_headers, db, order)


def test_a_pending_refund_is_booked(shop, secret_headers, fake_stripe):
    order = paid_order(shop, secret_headers, fake_stripe, pi="pi_pending")
    fake_stripe.state.refund_status = "pending"
    r = refund(shop, secret_headers, order["id"], amount=700)
    assert (r.status_code, r.json()["refunded"]) == (200, 700), r.text
    assert refunds_booked(shop, secret_headers, order["id"]) == [(700, "re_test_0001")]


def test_an_unreachable_stripe_books_nothing(shop, db, secret_headers, fake_stripe):
    order = paid_order(shop, secret_headers, fake_stripe, pi="pi_unreachable")
    shop.app.state.settings.stripe_api_base = "http://127.0.0.1:9"  # nothing listens on the discard port
    r = refund(shop, secret_headers, order["id"])
    assert (r.status_code, r.json()["error"]["code"]) == (502, "payment_provider_error"), r.text
    assert r.json()["error"]["details"]["type"] == "api_connection_error"
    assert_untouched(shop, secret_headers, db, order)


def test_a_stripe_order_is_not_refunded_here_without_stripe_configured(shop, db, secret_headers, fake_stripe):
    order = paid_order(shop, secret_headers, fake_stripe, pi="pi_unconfigured")
    shop.app.state.settings.stripe_api_key = None
    r = refund(shop, secret_headers, order["id"])
    assert (r.status_code, r.json()["error"]["code"]) == (409, "provider_not_configured"), r.text
    assert refund_requests(fake_stripe) == []
    shop.app.state.settings.stripe_api_key = API_KEY
    assert_untouched(shop, secret_headers, db, order)


def test_a_stripe_order_whose_payment_is_unknown_is_refused_without_asking_stripe(shop, db, secret_headers):
    order = buy(shop, secret_headers, "pricing-playbook", provider="stripe")
    with db.write() as session:  # paid, but nothing names its PaymentIntent (a session id only)
        row = session.get(Order, order["id"])
        checkout_service.mark_paid(session=session, workspace_id=row.workspace_id, order_id=row.id, actor="t")
    r = refund(shop, secret_headers, order["id"])
    assert (r.status_code, r.json()["error"]["code"]) == (409, "provider_payment_unknown"), r.text
    assert refunds_booked(shop, secret_headers, order["id"]) == []


def test_a_subscription_order_is_refunded_on_its_first_invoices_payment_intent(
    shop, db, secret_headers, fake_stripe
):
    """A subscription checkout has no PaymentIntent of its own: its first invoice's, recorded by its event."""
    order = buy(shop, secret_headers, "membership-annual", provider="stripe")
    now = int(time.time())
    completed = event("checkout.session.completed", {
        "id": order["provider_ref"], "object": "checkout.session", "client_reference_id": order["id"],
        "metadata": {"order_id": order["id"]}, "payment_status": "paid", "status": "complete",
        "amount_total": order["total"], "currency": "usd", "payment_intent": None, "mode": "subscription",
        "subscription": "sub_refund_1", "invoice": "in_first"}, event_id="evt_sub_c")  # fmt: skip
    invoice = event("invoice.paid", {
        "id": "in_first", "object": "invoice", "subscription": "sub_refund_1", "billing_reason": "subscription_create",
        "amount_paid": order["total"], "amount_due": order["total"], "currency": "usd", "status": "paid",
        "charge": "ch_first_invoice", "subscription_details": {"metadata": {"order_id": order["id"]}}},
        event_id="evt_sub_i")  # fmt: skip
    for payload in (completed, invoice):
        payload["created"] = now
        assert deliver(shop, payload).status_code == 200
    fake_stripe.state.payments["ch_first_invoice"] = (order["total"], "usd")
    r = refund(shop, secret_headers, order["id"], amount=100)
    assert r.status_code == 200, r.text
    [(form, _)] = refund_requests(fake_stripe)
    assert (form.get("payment_intent"), form["charge"], form["amount"]) == (None, "ch_first_invoice", "100")


# -- the same refund twice: Stripe refunds once, the books hold it once -------------------------------------


class Crash(Exception):
    """The transaction that was to book a refund Stripe made fails (a crash, a lost connection)."""


def refund_then_crash(db: Database, order: dict, amount: int, provider: StripeProvider | None) -> None:
    """A refund of ``amount`` made in Stripe (through the service) whose transaction then rolls back."""
    with pytest.raises(Crash), db.write() as session:
        ws = session.get(Order, order["id"]).workspace_id
        checkout_service.refund(session=session, workspace_id=ws, order_id=order["id"], amount=amount, actor="t",
                                provider=provider)  # fmt: skip
        raise Crash


def test_a_refund_retried_after_its_transaction_failed_gets_stripes_first_refund_back(
    shop, db, secret_headers, fake_stripe
):
    """Stripe refunded, then the transaction that was to book it rolled back (a crash, a lost connection):
    the retry carries the same key, Stripe answers with the same refund, and it is booked once."""
    order = paid_order(shop, secret_headers, fake_stripe, pi="pi_retry")
    provider = checkout_service.stripe_provider(shop.app.state.settings)
    refund_then_crash(db, order, 1200, provider)
    assert refunds_booked(shop, secret_headers, order["id"]) == []
    r = refund(shop, secret_headers, order["id"], amount=1200)
    assert (r.status_code, r.json()["refunded"]) == (200, 1200), r.text
    assert len(fake_stripe.state.refunds) == 1 and fake_stripe.state.refunded == {"pi_retry": 1200}
    assert [key for _, key in refund_requests(fake_stripe)] == [f"offerloop-refund-{order['id']}-0"] * 2
    assert refunds_booked(shop, secret_headers, order["id"]) == [(1200, "re_test_0001")]
    # the retry asks for another amount under the same key: Stripe refuses, nothing is booked twice
    refund_then_crash(db, order, 300, provider)
    r = refund(shop, secret_headers, order["id"], amount=400)
    assert (r.status_code, r.json()["error"]["code"]) == (409, "refund_refused"), r.text
    assert r.json()["error"]["details"]["code"] == "idempotency_key_in_use"
    assert refunds_booked(shop, secret_headers, order["id"]) == [(1200, "re_test_0001")]
    # the 300 Stripe did refund reaches the books through its webhook, once
    assert fake_stripe.state.refunded == {"pi_retry": 1500}
    assert (
        deliver(shop, charge_refunded(order, "pi_retry", 1500, event_id="evt_retry")).json()["outcome"]
        == "refunded"
    )
    assert refunds_booked(shop, secret_headers, order["id"]) == [(1200, "re_test_0001"), (300, None)]
    balanced(shop, secret_headers)


def test_manual_orders_are_refunded_without_stripe(shop, secret_headers, fake_stripe):
    order = buy(shop, secret_headers, "pricing-playbook")
    assert shop.post(f"/v1/orders/{order['id']}/paid", headers=secret_headers, json={}).status_code == 200
    r = refund(shop, secret_headers, order["id"], amount=700)
    assert (r.status_code, r.json()["refunded"]) == (200, 700), r.text
    assert refund_requests(fake_stripe) == []
    assert refunds_booked(shop, secret_headers, order["id"]) == [(700, None)]


THREADS = 4


@pytest.fixture
def racing_shop(engine: Engine, fake_stripe: FakeStripeServer) -> Iterator[tuple[Database, str]]:
    """A workspace on committed transactions (not the rolled-back test transaction), so threads really race."""
    db = Database(engine)
    with db.write() as session:
        ws = workspace_service.create_workspace(session=session, name="refund race").id
        offers_service.load_catalog(session=session, workspace_id=ws, text=CATALOG)
    yield db, ws
    processed(
        db, ws
    )  # the consumers over what it appended: left lagging, a later test's /readyz says "stuck"
    forget_queued_work(db, ws)


def stripe_paid(db: Database, ws: str, fake: FakeStripeServer, user: str, pi: str) -> str:
    with db.write() as session:
        buyer = checkout_service.buyer_for(session=session, workspace_id=ws, user_id=user)
        order = checkout_service.begin(session=session, workspace_id=ws, buyer_id=buyer, offer_key="pricing-playbook",
                                       currency="USD", provider="stripe")  # fmt: skip
        checkout_service.mark_paid(session=session, workspace_id=ws, order_id=order.id, actor="stripe",
                                   provider_ref=pi)  # fmt: skip
    fake.state.payments[pi] = (2700, "usd")
    return order.id


def test_concurrent_refunds_of_one_order_refund_in_stripe_once(racing_shop, fake_stripe) -> None:
    """Four full refunds of one order at once, Stripe slow to answer: one refund in Stripe, one booked; the
    others wait for it and are refused (nothing left). Then three partial refunds at once: each sees the one
    before it, so they use their own keys until the order has too little left."""
    db, ws = racing_shop
    fake_stripe.state.delay_s = 0.2
    provider = StripeProvider(StripeConfig(api_key=API_KEY, webhook_secret=SECRET, api_base=fake_stripe.base))

    def attempt(order_id: str, amount: int | None) -> str:
        try:
            with db.write() as session:
                checkout_service.refund(session=session, workspace_id=ws, order_id=order_id, amount=amount,
                                        actor="t", provider=provider)  # fmt: skip
        except CheckoutError as exc:
            return exc.code
        return "refunded"

    full = stripe_paid(db, ws, fake_stripe, "racer-full", "pi_race_full")
    with ThreadPoolExecutor(THREADS) as pool:
        outcomes = list(pool.map(lambda _: attempt(full, None), range(THREADS)))
    assert sorted(outcomes) == ["not_refundable"] * (THREADS - 1) + ["refunded"]
    assert fake_stripe.state.refunded == {"pi_race_full": 2700} and len(fake_stripe.state.refunds) == 1

    part = stripe_paid(db, ws, fake_stripe, "racer-part", "pi_race_part")
    with ThreadPoolExecutor(3) as pool:
        outcomes = list(pool.map(lambda _: attempt(part, 1000), range(3)))
    assert sorted(outcomes) == ["invalid_refund_amount", "refunded", "refunded"]
    assert fake_stripe.state.refunded["pi_race_part"] == 2000
    keys = sorted(
        key for form, key in refund_requests(fake_stripe) if form["payment_intent"] == "pi_race_part"
    )
    assert keys == [f"offerloop-refund-{part}-0", f"offerloop-refund-{part}-1"]

    with db.read() as session:
        for order_id, amount in ((full, 2700), (part, 2000)):
            entries = ledger_service.entries(session=session, workspace_id=ws, order_id=order_id)
            assert [e.kind.value for e, _ in entries].count("refund") == (1 if order_id == full else 2)
            assert session.get(Order, order_id).refunded == amount
        assert ledger_service.unbalanced_orders(session=session, workspace_id=ws) == []


# -- two server processes: the same refund twice at once, and Stripe's webhook racing the booking -------------


def test_the_same_refund_at_once_on_two_processes_while_stripes_webhook_races_it(
    stripe_server: LiveServer, fake_stripe: FakeStripeServer
) -> None:
    """Stripe sends ``charge.refunded`` the moment it refunds, before the request that asked has booked: the
    webhook waits for that booking and adds nothing; the duplicate request is refused; one refund in Stripe."""
    ws = json.loads(stripe_server.cli("workspace", "create", "Refund race", "--json").stdout)
    secret = bearer(ws["secret_key"])
    webhooks: list[tuple[int, str]] = []

    def stripe_notifies(form: dict[str, str], refunded: int) -> None:
        order_id = form["metadata[order_id]"]
        obj = {"id": "ch_live", "object": "charge", "amount": 2700, "amount_refunded": refunded, "currency": "usd",
               "payment_intent": form["payment_intent"], "refunded": refunded == 2700,
               "metadata": {"order_id": order_id}}  # fmt: skip
        payload = event("charge.refunded", obj, event_id=f"evt_live_{order_id}_{refunded}")
        payload["created"] = int(time.time())
        body = json.dumps(payload).encode()
        with httpx.Client(base_url=stripe_server.url, timeout=30) as own:
            r = own.post("/v1/webhooks/stripe", content=body,
                         headers={"Stripe-Signature": sign_payload(body, SECRET, int(time.time()))})  # fmt: skip
        webhooks.append((r.status_code, r.json().get("outcome")))

    with httpx.Client(base_url=stripe_server.url, timeout=30) as http:
        assert http.put("/v1/offers/catalog", headers=secret, json={"text": CATALOG}).status_code == 200
        r = http.post(
            "/v1/identify", headers=basic(ws["write_key"]), json=msg(userId="live", messageId="live-id")
        )
        assert r.status_code == 200, r.text
        r = http.post("/v1/checkout", headers=secret, json={"user_id": "live", "offer": "pricing-playbook",
                                                           "provider": "stripe"})  # fmt: skip
        order = r.json()
        completed = event("checkout.session.completed", {
            "id": order["provider_ref"], "object": "checkout.session", "client_reference_id": order["id"],
            "metadata": {"order_id": order["id"]}, "payment_status": "paid", "status": "complete",
            "amount_total": 2700, "currency": "usd", "payment_intent": "pi_live", "mode": "payment"},
            event_id=f"evt_live_paid_{order['id']}")  # fmt: skip
        completed["created"] = int(time.time())
        body = json.dumps(completed).encode()
        r = http.post("/v1/webhooks/stripe", content=body,
                      headers={"Stripe-Signature": sign_payload(body, SECRET, int(time.time()))})  # fmt: skip
        assert r.json()["outcome"] == "paid", r.text
        fake_stripe.state.payments["pi_live"] = (2700, "usd")

        # Stripe: the refund is made, the webhook leaves at once, the API's answer comes 0.5 s later
        notifier: list[threading.Thread] = []
        original = fake_stripe.state.refunds

        class Notifying(list):
            def append(self, refund: dict) -> None:
                super().append(refund)
                form = {
                    "metadata[order_id]": refund["metadata"]["order_id"],
                    "payment_intent": refund["payment_intent"],
                }
                t = threading.Thread(target=stripe_notifies, args=(form, refund["amount"]))
                notifier.append(t)
                t.start()

        fake_stripe.state.refunds = Notifying(original)
        fake_stripe.state.delay_s = 0.5
        barrier, answers = threading.Barrier(2), []

        def send() -> None:
            with httpx.Client(base_url=stripe_server.url, timeout=30) as own:
                barrier.wait()
                res = own.post(f"/v1/orders/{order['id']}/refund", headers=secret, json={})
                answers.append((res.status_code, res.json().get("status") or res.json()["error"]["code"]))

        threads = [threading.Thread(target=send) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        for t in notifier:
            t.join()
        assert sorted(answers) == [(200, "refunded"), (409, "not_refundable")], answers
        assert webhooks == [(200, "refund_already_recorded")]
        assert fake_stripe.state.refunded == {"pi_live": 2700} and len(fake_stripe.state.refunds) == 1
        books = http.get(f"/v1/ledger/orders/{order['id']}", headers=secret).json()
        assert [e["kind"] for e in books["entries"]] == ["sale", "refund"]
        assert books["summary"]["refunds"]["amount"] == 2700
        assert http.get("/v1/ledger/check", headers=secret).json() == {
            "balanced": True,
            "unbalanced_orders": [],
        }
        kinds = http.get(f"/v1/orders/{order['id']}/payments", headers=secret).json()["items"]
        assert [(p["type"], p["outcome"]) for p in kinds] == [
            ("checkout_completed", "paid"),
            ("refunded", "refund_already_recorded"),
        ]

        # `offerloop orders refund` goes through Stripe as well (the same settings), and so does its webhook
        r = http.post("/v1/checkout", headers=secret, json={"user_id": "live", "offer": "pricing-playbook",
                                                           "provider": "stripe"})  # fmt: skip
        other = r.json()
        completed["data"]["object"].update(id=other["provider_ref"], client_reference_id=other["id"],
                                           metadata={"order_id": other["id"]}, payment_intent="pi_live_cli")  # fmt: skip
        completed["id"] = f"evt_live_paid_{other['id']}"
        body = json.dumps(completed).encode()
        r = http.post("/v1/webhooks/stripe", content=body,
                      headers={"Stripe-Signature": sign_payload(body, SECRET, int(time.time()))})  # fmt: skip
        assert r.json()["outcome"] == "paid", r.text
        fake_stripe.state.payments["pi_live_cli"] = (2700, "usd")
        out = stripe_server.cli("orders", "refund", "-w", ws["id"], other["id"], "--amount", "700")
        assert out.stdout.strip() == f"{other['id']}: partially_refunded, refunded 700 of 2700"
        for t in notifier:
            t.join()
        assert webhooks == [(200, "refund_already_recorded")] * 2
        assert fake_stripe.state.refunded["pi_live_cli"] == 700
        assert refund_requests(fake_stripe)[-1][1] == f"offerloop-refund-{other['id']}-0"
        books = http.get(f"/v1/ledger/orders/{other['id']}", headers=secret).json()
        assert (books["summary"]["refunds"]["amount"], books["entries"][-1]["tags"]["provider_refund"]) == (
            700,
            "re_test_0002",
        )
