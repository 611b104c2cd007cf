"""A checkout's completion and its first invoice reach two server processes at the same instant (Stripe sends
them together): the order is paid and booked once. Real concurrent requests against `offerloop serve`."""

from __future__ import annotations

import json
import threading
import time
from pathlib import Path

import httpx
import pytest
from sqlalchemy import Engine
from tests.checkout.test_checkout_flow import CATALOG
from tests.checkout.test_stripe_provider import API_KEY, SECRET, FakeStripeServer, event
from tests.conftest import LiveServer, basic, bearer, msg

from offerloop.checkout.stripe_provider import sign_payload

ROUNDS = 8


@pytest.fixture
def stripe_server(
    tmp_path: Path,
    engine: Engine,
    database_url: str,
    fake_stripe: FakeStripeServer,
    monkeypatch: pytest.MonkeyPatch,
) -> LiveServer:
    monkeypatch.setenv("OFFERLOOP_STRIPE_API_KEY", API_KEY)
    monkeypatch.setenv("OFFERLOOP_STRIPE_WEBHOOK_SECRET", SECRET)
    monkeypatch.setenv("OFFERLOOP_STRIPE_API_BASE", fake_stripe.base)
    url = database_url if engine.dialect.name == "postgresql" else f"sqlite:///{tmp_path / 'live.db'}"
    server = LiveServer(url, workers=2, log_path=tmp_path / "server.log")
    server.start()
    yield server
    server.stop()


def send(url: str, body: bytes, header: str, barrier: threading.Barrier, results: list) -> None:
    with httpx.Client(base_url=url, timeout=30) as own:
        barrier.wait()
        res = own.post("/v1/webhooks/stripe", content=body,
                       headers={"Stripe-Signature": header, "Content-Type": "application/json"})  # fmt: skip
        results.append((res.status_code, res.json().get("outcome")))


def test_completion_and_first_invoice_at_once_book_one_sale(stripe_server: LiveServer) -> None:
    ws = json.loads(stripe_server.cli("workspace", "create", "Concurrent Stripe", "--json").stdout)
    secret = bearer(ws["secret_key"])
    with httpx.Client(base_url=stripe_server.url, timeout=30) as http:
        assert http.put("/v1/offers/catalog", headers=secret, json={"text": CATALOG}).status_code == 200
        for n in range(ROUNDS):
            r = http.post(
                "/v1/identify", headers=basic(ws["write_key"]), json=msg(userId=f"u{n}", messageId=f"id{n}")
            )
            assert r.status_code == 200, r.text
            r = http.post(
                "/v1/checkout",
                headers=secret,
                json={"user_id": f"u{n}", "offer": "inner-circle", "provider": "stripe"},
            )
            assert r.status_code == 201, r.text
            order = r.json()
            sub, now = f"sub_conc_{n}_{order['id'][-6:]}", int(time.time())
            completed = event("checkout.session.completed", {
                "id": order["provider_ref"], "object": "checkout.session", "client_reference_id": order["id"],
                "metadata": {"order_id": order["id"]}, "payment_status": "paid", "status": "complete",
                "amount_total": 9900, "currency": "usd", "payment_intent": None, "mode": "subscription",
                "subscription": sub}, event_id=f"evt_conc_c_{order['id']}")  # fmt: skip
            invoice = event("invoice.paid", {
                "id": f"in_conc_{order['id']}", "object": "invoice", "subscription": sub,
                "billing_reason": "subscription_create", "amount_paid": 9900, "amount_due": 9900, "currency": "usd",
                "status": "paid", "payment_intent": f"pi_conc_{order['id']}",
                "subscription_details": {"metadata": {"order_id": order["id"]}}}, event_id=f"evt_conc_i_{order['id']}")  # fmt: skip
            bodies = []
            for payload in (completed, invoice):
                payload["created"] = now
                body = json.dumps(payload).encode()
                bodies.append((body, sign_payload(body, SECRET, now)))
            barrier, results = threading.Barrier(2), []

            threads = [
                threading.Thread(target=send, args=(stripe_server.url, *b, barrier, results)) for b in bodies
            ]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            assert sorted(results) == [(200, "already_paid"), (200, "paid")], results
            ledger = http.get(f"/v1/ledger/orders/{order['id']}", headers=secret).json()
            assert [e["kind"] for e in ledger["entries"]] == ["sale"]
            assert ledger["summary"]["gross"]["amount"] == 9900
            subs = http.get(f"/v1/orders/{order['id']}", headers=secret).json()
            assert subs["status"] == "paid"
        assert http.get("/v1/ledger/check", headers=secret).json() == {
            "balanced": True,
            "unbalanced_orders": [],
        }


def test_one_renewal_invoice_delivered_as_several_events_at_once_books_one_period(
    stripe_server: LiveServer,
) -> None:
    """Adversarial run (adv1), PostgreSQL: ten events about one paid cycle invoice reaching the two processes
    at once each found the subscription's order (the renewal order naming the invoice's payment was not
    committed yet) and booked ten renewals and ten periods. The renewal is looked up again under the lock."""
    ws = json.loads(stripe_server.cli("workspace", "create", "Concurrent renewal", "--json").stdout)
    secret = bearer(ws["secret_key"])
    copies = 10
    with httpx.Client(base_url=stripe_server.url, timeout=30) as http:
        assert http.put("/v1/offers/catalog", headers=secret, json={"text": CATALOG}).status_code == 200
        r = http.post("/v1/checkout", headers=secret,
                      json={"user_id": "renewer", "offer": "inner-circle", "provider": "stripe"})  # fmt: skip
        assert r.status_code == 201, r.text
        order, sub, now = r.json(), "sub_conc_renewal", int(time.time())
        meta = {"metadata": {"order_id": order["id"]}}
        completed = event("checkout.session.completed", {
            "id": order["provider_ref"], "object": "checkout.session", "client_reference_id": order["id"], **meta,
            "payment_status": "paid", "status": "complete", "amount_total": 9900, "currency": "usd",
            "payment_intent": None, "mode": "subscription", "subscription": sub}, event_id="evt_ren_c")  # fmt: skip
        completed["created"] = now
        body = json.dumps(completed).encode()
        r = http.post("/v1/webhooks/stripe", content=body,
                      headers={"Stripe-Signature": sign_payload(body, SECRET, now)})  # fmt: skip
        assert r.json()["outcome"] == "paid", r.text
        end = now + 60  # a cycle invoice renews whenever it is paid
        bodies = []
        for n in range(copies):
            payload = event("invoice.paid", {
                "id": "in_conc_cycle", "object": "invoice", "subscription": sub, "billing_reason": "subscription_cycle",
                "amount_paid": 9900, "amount_due": 9900, "currency": "usd", "status": "paid",
                "payment_intent": "pi_conc_cycle", "subscription_details": meta}, event_id=f"evt_ren_{n}")  # fmt: skip
            payload["created"] = end
            raw = json.dumps(payload).encode()
            bodies.append((raw, sign_payload(raw, SECRET, int(time.time()))))
        barrier, results = threading.Barrier(copies), []
        threads = [
            threading.Thread(target=send, args=(stripe_server.url, *b, barrier, results)) for b in bodies
        ]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert sorted(results) == [(200, "already_paid")] * (copies - 1) + [(200, "subscription_renewed")], (
            results
        )
        assert http.get("/v1/ledger/check", headers=secret).json() == {
            "balanced": True,
            "unbalanced_orders": [],
        }
