"""Subscription actions over HTTP as a careless or hostile client sends them, against `offerloop serve` on
loopback (SQLite, or PostgreSQL with OFFERLOOP_TEST_DATABASE_URL): the same action from many threads at once is
taken once (one step, one event, one charge), a retried one changes nothing, and another workspace's keys neither
see nor change the subscription."""

from __future__ import annotations

import json
import threading
from collections import Counter
from pathlib import Path

import httpx
import pytest
from tests.conftest import LiveServer, basic, bearer

pytestmark = pytest.mark.server

CATALOG = (Path(__file__).resolve().parents[2] / "examples" / "demo" / "offers.yaml").read_text()
THREADS = 10


def _at_once(server: LiveServer, headers: dict[str, str], path: str, body: dict) -> Counter[str]:
    """THREADS posts of ``body`` released at once, each on its own connection: their statuses and error codes."""
    barrier = threading.Barrier(THREADS)
    seen: list[str] = []
    lock = threading.Lock()

    def one() -> None:
        with httpx.Client(base_url=server.url, headers=headers, timeout=60) as http:
            barrier.wait()
            r = http.post(path, json=body)
        outcome = "200" if r.status_code == 200 else f"{r.status_code} {r.json()['error']['code']}"
        with lock:
            seen.append(outcome)

    threads = [threading.Thread(target=one) for _ in range(THREADS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return Counter(seen)


def test_subscription_actions_sent_at_once_twice_and_with_another_workspaces_keys(
    live_server: LiveServer,
) -> None:
    ws = json.loads(live_server.cli("workspace", "create", "Subs", "--json").stdout)
    other = json.loads(live_server.cli("workspace", "create", "Other", "--json").stdout)
    secret = bearer(ws["secret_key"])
    with httpx.Client(base_url=live_server.url, headers=secret, timeout=30) as http:
        assert http.put("/v1/offers/catalog", json={"text": CATALOG}).status_code == 200
        ident = {"userId": "ada", "messageId": "ada-1", "traits": {"email": "ada@example.com"}}
        assert http.post("/v1/identify", json=ident, headers=basic(ws["write_key"])).status_code == 200
        order = http.post("/v1/checkout", json={"user_id": "ada", "offer": "membership-monthly"}).json()
        assert http.post(f"/v1/orders/{order['id']}/paid", json={"reference": "INV-1"}).status_code == 200
        [sub] = http.get("/v1/subscriptions").json()["items"]
        sid, trial_end = sub["id"], sub["state"]["current_period_end"]

    # another workspace's keys: its secret key finds no such subscription, a write key may not act at all
    with httpx.Client(base_url=live_server.url, timeout=30) as http:
        for method, path, body in (("GET", f"/v1/subscriptions/{sid}", None),
                                   ("POST", f"/v1/subscriptions/{sid}/actions", {"action": "cancel"})):  # fmt: skip
            r = http.request(method, path, json=body, headers=bearer(other["secret_key"]))
            assert (r.status_code, r.json()["error"]["code"]) == (404, "subscription_not_found"), r.text
            r = http.request(method, path, json=body, headers=basic(ws["write_key"]))
            assert (r.status_code, r.json()["error"]["code"]) == (403, "secret_key_required"), r.text
        assert http.get("/v1/subscriptions", headers=bearer(other["secret_key"])).json()["items"] == []

    actions = f"/v1/subscriptions/{sid}/actions"
    # the trial's end renewed from every thread at once: one period, charged once
    renew = {"action": "renew", "at": trial_end}
    assert _at_once(live_server, secret, actions, renew) == Counter(
        {"200": 1, "409 invalid_transition": THREADS - 1}
    )
    for action in ("pause", "resume"):
        assert _at_once(live_server, secret, actions, {"action": action}) == Counter(
            {"200": 1, "409 invalid_transition": THREADS - 1}
        ), action
    # a cancel at the period's end sent at once and again: scheduled once, the repeats change nothing
    cancel = {"action": "cancel", "at_period_end": True}
    assert _at_once(live_server, secret, actions, cancel) == Counter({"200": THREADS})

    with httpx.Client(base_url=live_server.url, headers=secret, timeout=30) as http:
        after = http.get(f"/v1/subscriptions/{sid}").json()
        assert (after["status"], after["state"]["cancel_at_period_end"]) == ("active", True)
        orders = http.get("/v1/orders", params={"limit": 100}).json()["items"]
        assert sorted(o["total"] for o in orders) == [0, 3900]  # the trial's checkout, one renewal
        buyer = http.get("/v1/buyers/lookup", params={"user_id": "ada"}).json()["id"]
        events = http.get(f"/v1/buyers/{buyer}/events", params={"limit": 100}).json()["items"]
        steps = Counter(e["name"] for e in events if (e["name"] or "").startswith("Subscription"))
        assert steps == Counter({"Subscription Started": 1, "Subscription Renewed": 1, "Subscription Paused": 1,
                                 "Subscription Resumed": 1, "Subscription Canceled": 1})  # fmt: skip
        assert http.get("/v1/ledger/check").json() == {"balanced": True, "unbalanced_orders": []}
