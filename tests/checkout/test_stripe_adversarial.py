"""Adversarial checks of the changes made in Stripe first for a subscription Stripe bills (breaker3).

What Stripe charged is what is booked, access follows what was paid for, nothing a client sends is a 500 and
nothing is applied twice: a plan no longer for sale, a plan change whose answer was lost and that Stripe's own
events then report, redelivered or out-of-order events. Driven over HTTP against the loopback Stripe stand-in
(``FakeStripeServer``), with signed webhooks."""

from __future__ import annotations

import threading
from datetime import UTC, datetime

import httpx
import pytest
from sqlalchemy import Engine
from tests.checkout.test_checkout_flow import deliver
from tests.checkout.test_stripe_concurrency import stripe_server
from tests.checkout.test_stripe_provider import FakeStripeServer, event
from tests.checkout.test_stripe_refunds import balanced, ledger, refund_requests
from tests.checkout.test_stripe_subscription_actions import (
    NO_TRIAL,
    SUB,
    T0,
    act,
    at,
    changes,
    deliver_while_open,
    echo,
    events_named,
    live_plan,
    state,
    stripe_client,
    stripe_plan,
)
from tests.conftest import LiveServer, bearer

from offerloop.checkout.stripe_events import WebhookEvent, normalize
from offerloop.core import currencies

__all__ = ["stripe_client", "stripe_server"]

#: The monthly circle retired: no longer for sale, still in the catalog for the buyers already on it.
RETIRED = NO_TRIAL.replace(
    "  - key: membership-monthly\n", "  - key: membership-monthly\n    active: false\n", 1
)


def orders(client, headers) -> list[dict]:
    return client.get("/v1/orders", headers=headers, params={"limit": 100}).json()["items"]


def test_a_plan_no_longer_for_sale_cannot_be_switched_to(
    stripe_client, secret_headers, write_headers, fake_stripe
):
    """Checkout refuses an inactive offer (NotForSale); a plan change to it must too, or a buyer on the dear plan
    moves to a retired cheap one, in Stripe as well."""
    client = stripe_client
    _order, sub = stripe_plan(client, secret_headers, write_headers, fake_stripe)
    r = client.put("/v1/offers/catalog", headers=secret_headers, json={"text": RETIRED})
    assert r.status_code == 200, r.text
    r = act(client, secret_headers, sub, "change_plan", plan="membership-monthly", at=at(86_400))
    assert (r.status_code, r.json()["error"]["code"]) == (409, "invalid_plan"), r.text
    assert changes(fake_stripe) == []
    assert state(client, secret_headers, sub)["offer_key"] == "inner-circle"
    balanced(client, secret_headers)


def test_unknown_or_malformed_plans_are_refused_without_asking_stripe(
    stripe_client, secret_headers, write_headers, fake_stripe
):
    client = stripe_client
    _order, sub = stripe_plan(client, secret_headers, write_headers, fake_stripe)
    for plan, status in (("nope", 404), ("", 409), ("pricing-playbook", 409), ("inner-circle", 409),
                         ("membership-annual", 409), ("x" * 5000, 404)):  # fmt: skip
        r = act(client, secret_headers, sub, "change_plan", plan=plan, at=at(86_400))
        assert r.status_code in (status, 422), (plan[:20], r.status_code, r.text[:300])
    for body in ({"action": "change_plan", "plan": 5}, {"action": "cancel", "at_period_end": "maybe"},
                 {"action": "cancel", "at": "yesterday"}, {"action": ["cancel"]}, {"action": "explode"}):  # fmt: skip
        r = client.post(f"/v1/subscriptions/{sub['id']}/actions", headers=secret_headers, json=body)
        assert 400 <= r.status_code < 500, (body, r.status_code, r.text[:300])
    assert changes(fake_stripe) == []


@pytest.mark.parametrize("invoice_first", [False, True])
def test_an_upgrade_whose_answer_was_lost_books_what_stripe_charged_when_its_events_report_it(
    stripe_client, secret_headers, write_headers, fake_stripe, invoice_first
):
    """Stripe upgrades and invoices the proration (3686: its period is 7 s off ours, each line rounded), every
    answer is lost (502, nothing changes here). Stripe's customer.subscription.updated and its invoice.paid
    (billing reason subscription_update) report it, in either order: what is booked is what Stripe's invoice
    charged (the update used to book our own proration, 3685, and the invoice nothing; or, invoice first,
    the invoice was dropped as already paid)."""
    client = stripe_client
    order, sub = stripe_plan(client, secret_headers, write_headers, fake_stripe, "membership-monthly", 3900)
    stripe_sub = fake_stripe.state.subscriptions[SUB]
    stripe_sub["current_period_start"] -= 7
    stripe_sub["current_period_end"] -= 7
    fake_stripe.state.lost_answers = 3
    r = act(client, secret_headers, sub, "change_plan", plan="inner-circle", at=at(1_000_003))
    assert (r.status_code, r.json()["error"]["code"]) == (502, "payment_provider_error"), r.text
    [invoice] = fake_stripe.state.invoices
    assert invoice["amount_paid"] == 3686
    updated = echo(fake_stripe, "customer.subscription.updated", "evt_lost_upgrade", T0 + 1_000_004)
    paid = event("invoice.paid", {"id": invoice["id"], "object": "invoice", "subscription": SUB,
                                  "billing_reason": "subscription_update", "amount_paid": 3686, "currency": "usd",
                                  "status": "paid", "payment_intent": "pi_upgrade",
                                  "metadata": {"order_id": order["id"]}}, event_id="evt_lost_upgrade_paid")  # fmt: skip
    paid["created"] = T0 + 1_000_005
    for payload, outcome in sorted([(updated, "plan_changed"), (paid, "proration_booked")],
                                   key=lambda p: (p[0] is updated) == invoice_first):  # fmt: skip
        assert deliver(client, payload).json()["outcome"] == outcome
        assert deliver(client, payload).json()["outcome"] == "duplicate"
    booked = [o for o in orders(client, secret_headers) if o["id"] != order["id"]]
    assert [o["total"] for o in booked] == [3686]
    assert state(client, secret_headers, sub)["offer_key"] == "inner-circle"
    assert events_named(client, secret_headers, sub, "Subscription Changed") == 1
    # asking again changes nothing and asks Stripe nothing more
    r = act(client, secret_headers, sub, "change_plan", plan="inner-circle", at=at(1_000_010))
    assert r.status_code == 409, r.text
    assert ledger(client, secret_headers, booked[0]["id"])["summary"]["gross"]["amount"] == 3686
    balanced(client, secret_headers)


def test_an_upgrade_retried_after_a_lost_answer_is_charged_and_booked_once(
    stripe_client, secret_headers, write_headers, fake_stripe
):
    """The client retries the lost upgrade a second later (a new key: the change's time names it)."""
    client = stripe_client
    order, sub = stripe_plan(client, secret_headers, write_headers, fake_stripe, "membership-monthly", 3900)
    fake_stripe.state.lost_answers = 3
    assert (
        act(client, secret_headers, sub, "change_plan", plan="inner-circle", at=at(1_000_003)).status_code
        == 502
    )
    r = act(client, secret_headers, sub, "change_plan", plan="inner-circle", at=at(1_000_004))
    assert r.status_code == 200, r.text
    charged = sum(i["amount_paid"] for i in fake_stripe.state.invoices)
    booked = [o["total"] for o in orders(client, secret_headers) if o["id"] != order["id"]]
    assert booked == [charged], (booked, charged, [c[2] for c in changes(fake_stripe)])
    balanced(client, secret_headers)


def dashboard_upgrade(client, headers, write_headers, fake: FakeStripeServer) -> tuple[dict, dict]:
    """The monthly circle bought through Stripe, upgraded to the inner circle in Stripe's dashboard a day in
    (Stripe's default proration: charged on the next invoice), and Stripe's customer.subscription.updated."""
    order, sub = stripe_plan(client, headers, write_headers, fake, "membership-monthly", 3900)
    stripe_sub = fake.state.subscriptions[SUB]
    stripe_sub["items"]["data"][0]["price"]["unit_amount"] = 9900
    stripe_sub["metadata"]["plan"] = "inner-circle"
    updated = echo(fake, "customer.subscription.updated", "evt_dashboard_upgrade", T0 + 86_400)
    assert deliver(client, updated).json()["outcome"] == "plan_changed"
    return order, sub


def test_an_upgrade_made_in_stripes_dashboard_prorated_on_the_next_invoice_books_nothing_now(
    stripe_client, secret_headers, write_headers, fake_stripe
):
    """Stripe's default proration (create_prorations) charges nothing at once: its update must not book a charge
    nobody took (it used to book our own proration as a paid order)."""
    client = stripe_client
    order, sub = dashboard_upgrade(client, secret_headers, write_headers, fake_stripe)
    assert state(client, secret_headers, sub)["offer_key"] == "inner-circle"
    assert [o["id"] for o in orders(client, secret_headers)] == [order["id"]]
    balanced(client, secret_headers)


def test_an_upgrade_made_here_is_booked_once_whatever_stripe_redelivers(
    stripe_client, secret_headers, write_headers, fake_stripe
):
    """The upgrade's invoice.paid, delivered before and after the echo and twice, books nothing more."""
    client = stripe_client
    order, sub = stripe_plan(client, secret_headers, write_headers, fake_stripe, "membership-monthly", 3900)
    r = act(client, secret_headers, sub, "change_plan", plan="inner-circle", at=at(1_000_003))
    assert r.status_code == 200, r.text
    [invoice] = fake_stripe.state.invoices
    for n in range(2):
        paid = event("invoice.paid", {"id": invoice["id"], "object": "invoice", "subscription": SUB,
                                      "billing_reason": "subscription_update", "amount_paid": invoice["amount_paid"],
                                      "currency": "usd", "status": "paid", "payment_intent": f"pi_up_{n}",
                                      "metadata": {"order_id": order["id"]}}, event_id=f"evt_up_paid_{n}")  # fmt: skip
        paid["created"] = T0 + 1_000_004 + n
        assert deliver(client, paid).json()["outcome"] == "already_paid"
    updated = echo(fake_stripe, "customer.subscription.updated", "evt_up_echo", T0 + 1_000_009)
    assert deliver(client, updated).json()["outcome"] == "no_change"
    booked = [o["total"] for o in orders(client, secret_headers) if o["id"] != order["id"]]
    assert booked == [invoice["amount_paid"]]
    balanced(client, secret_headers)


def test_a_plan_change_invoice_in_another_currency_is_refused_visibly(
    stripe_client, secret_headers, write_headers, fake_stripe
):
    client = stripe_client
    order, _sub = stripe_plan(client, secret_headers, write_headers, fake_stripe, "membership-monthly", 3900)
    paid = event("invoice.paid", {"id": "in_eur", "object": "invoice", "subscription": SUB,
                                  "billing_reason": "subscription_update", "amount_paid": 1200, "currency": "eur",
                                  "status": "paid", "metadata": {"order_id": order["id"]}}, event_id="evt_eur")  # fmt: skip
    paid["created"] = T0 + 50
    assert deliver(client, paid).json()["outcome"] == "currency_mismatch"
    assert [o["id"] for o in orders(client, secret_headers)] == [order["id"]]
    balanced(client, secret_headers)


# -- the same action sent twice at once, over a live server (real transactions) ---------------------------------


@pytest.mark.parametrize("change", ["cancel_now", "downgrade", "pause"])
def test_the_same_action_sent_twice_at_once_is_made_once(
    stripe_server: LiveServer, fake_stripe: FakeStripeServer, change: str
) -> None:
    """Two tabs (or a retry racing the first request): Stripe is asked once, one event, one credit."""
    with httpx.Client(base_url=stripe_server.url, timeout=60) as http:
        secret, sub_id, _order, sub = live_plan(stripe_server, http, fake_stripe, f"twice_{change}")
        body = {"cancel_now": {"action": "cancel", "at_period_end": False},
                "downgrade": {"action": "change_plan", "plan": "membership-monthly"},
                "pause": {"action": "pause"}}[change]  # fmt: skip
        barrier, results = threading.Barrier(2), []

        def send() -> None:
            with httpx.Client(base_url=stripe_server.url, timeout=60) as own:
                barrier.wait()
                res = own.post(f"/v1/subscriptions/{sub['id']}/actions", headers=secret, json=body)
                results.append((res.status_code, res.json().get("error", {}).get("code")))

        threads = [threading.Thread(target=send) for _ in range(2)]
        for t in threads:
            t.start()
        for t in threads:
            t.join(60)
        assert sorted(results)[0] == (200, None) and sorted(results)[1] in ((200, None), (409, "invalid_transition"),
                                                                            (409, "illegal_transition")), results  # fmt: skip
        changed = [q for q in fake_stripe.state.requests
                   if q.path == f"/v1/subscriptions/{sub_id}" and q.method != "GET"]  # fmt: skip
        assert len(changed) == 1, [(q.method, q.form) for q in changed]
        names = [e["name"] for e in http.get(f"/v1/buyers/{sub['buyer_id']}/events", headers=secret,
                                              params={"limit": 200}).json()["items"]]  # fmt: skip
        name = {"cancel_now": "Subscription Canceled", "downgrade": "Subscription Changed",
                "pause": "Subscription Paused"}[change]  # fmt: skip
        assert names.count(name) == 1, names
        refunds = [q.form["amount"] for q in fake_stripe.state.requests if q.path == "/v1/refunds"]
        assert refunds == (["6000"] if change == "downgrade" else [])
        assert http.get("/v1/ledger/check", headers=secret).json() == {
            "balanced": True,
            "unbalanced_orders": [],
        }


def test_an_upgrades_invoice_paid_delivered_before_the_upgrade_commits_is_booked_once(
    stripe_server: LiveServer, engine: Engine, fake_stripe: FakeStripeServer
) -> None:
    """Stripe charges the upgrade and sends its invoice.paid before it answers us: the webhook waits for the
    action (its locks, or SQLite's one writer), then finds the invoice booked with the change."""
    with httpx.Client(base_url=stripe_server.url, timeout=60) as http:
        secret, sub_id, order, sub = live_plan(stripe_server, http, fake_stripe, "early_invoice")
        start = int(datetime.fromisoformat(sub["state"]["current_period_start"]).timestamp())
        end = int(datetime.fromisoformat(sub["state"]["current_period_end"]).timestamp())
        fake_stripe.state.subscriptions[sub_id].update(current_period_start=start, current_period_end=end)
        down = http.post(f"/v1/subscriptions/{sub['id']}/actions", headers=secret,
                         json={"action": "change_plan", "plan": "membership-monthly"})  # fmt: skip
        assert down.status_code == 200, down.text
        results: list[tuple[int, str]] = []
        threads: list[threading.Thread] = []

        def invoice_now(method: str, path: str) -> None:
            fake_stripe.state.before_answer = None
            invoice = fake_stripe.state.invoices[-1]
            payload = event("invoice.paid", {"id": invoice["id"], "object": "invoice", "subscription": sub_id,
                                             "billing_reason": "subscription_update", "currency": "usd",
                                             "amount_paid": invoice["amount_paid"], "status": "paid",
                                             "metadata": {"order_id": order["id"]}},
                            event_id=f"evt_{sub_id}_up_paid")  # fmt: skip
            threads.append(deliver_while_open(stripe_server.url, engine, payload, results))

        fake_stripe.state.before_answer = invoice_now
        up = http.post(f"/v1/subscriptions/{sub['id']}/actions", headers=secret,
                       json={"action": "change_plan", "plan": "inner-circle"})  # fmt: skip
        assert up.status_code == 200, up.text
        for thread in threads:
            thread.join(60)
        assert results == [(200, "already_paid")]
        [invoice] = fake_stripe.state.invoices
        mine = [o for o in http.get("/v1/orders", headers=secret, params={"limit": 100}).json()["items"]
                if o["id"] != order["id"]]  # fmt: skip
        assert [o["total"] for o in mine] == [invoice["amount_paid"]]
        assert http.get("/v1/ledger/check", headers=secret).json() == {
            "balanced": True,
            "unbalanced_orders": [],
        }


def test_up_down_up_books_exactly_what_stripe_charged_and_refunded(
    stripe_client, secret_headers, write_headers, fake_stripe
):
    client = stripe_client
    order, sub = stripe_plan(client, secret_headers, write_headers, fake_stripe, "membership-monthly", 3900)
    for n, plan in enumerate(["inner-circle", "membership-monthly", "inner-circle"]):
        r = act(client, secret_headers, sub, "change_plan", plan=plan, at=at(1_000_003 + n))
        assert r.status_code == 200, (plan, r.text)
    charged = sum(i["amount_paid"] for i in fake_stripe.state.invoices)
    refunded = sum(int(q.form["amount"]) for q in fake_stripe.state.requests if q.path == "/v1/refunds")
    mine = [o for o in orders(client, secret_headers) if o["id"] != order["id"]]
    assert len(fake_stripe.state.invoices) == 2 and refunded > 0
    assert sum(o["total"] for o in mine) == charged
    assert sum(o["refunded"] for o in orders(client, secret_headers)) == refunded
    assert state(client, secret_headers, sub)["offer_key"] == "inner-circle"
    assert events_named(client, secret_headers, sub, "Subscription Changed") == 3
    balanced(client, secret_headers)


def test_another_workspaces_subscription_cannot_be_acted_on(
    stripe_client, secret_headers, write_headers, fake_stripe, other_workspace
):
    client = stripe_client
    other_secret_headers = bearer(other_workspace.secret_key)
    _order, sub = stripe_plan(client, secret_headers, write_headers, fake_stripe)
    for action, body in (("cancel", {"at_period_end": False}), ("pause", {}), ("change_plan", {"plan": "x"})):
        r = act(client, other_secret_headers, sub, action, **body)
        assert r.status_code == 404, (action, r.text)
    assert changes(fake_stripe) == []


def test_a_cycle_invoice_carrying_a_dashboard_upgrades_prorations_renews_and_is_booked(
    stripe_client, secret_headers, write_headers, fake_stripe
):
    client = stripe_client
    order, _sub = dashboard_upgrade(client, secret_headers, write_headers, fake_stripe)
    end = fake_stripe.state.subscriptions[SUB]["current_period_end"]
    amount = 9900 + 3000  # the new period and the prorated difference for the rest of the first one
    paid = event("invoice.paid", {"id": "in_cycle_2", "object": "invoice", "subscription": SUB,
                                  "billing_reason": "subscription_cycle", "amount_paid": amount, "currency": "usd",
                                  "status": "paid", "payment_intent": "pi_cycle_2",
                                  "subscription_details": {"metadata": {"order_id": order["id"]}}},
                 event_id="evt_cycle_2")  # fmt: skip
    paid["created"] = end + 60
    assert deliver(client, paid).json()["outcome"] == "subscription_renewed"
    assert deliver(client, paid).json()["outcome"] == "duplicate"
    [renewal] = [o for o in orders(client, secret_headers) if o["id"] != order["id"]]
    assert (renewal["total"], renewal["provider_ref"]) == (amount, "pi_cycle_2")
    assert [(line["reason"], line["total"]) for line in renewal["lines"]] == [
        ("renewal", 9900),
        ("proration", 3000),
    ]
    assert state(client, secret_headers, _sub)["state"]["current_period_start"] == _iso(end)
    assert ledger(client, secret_headers, renewal["id"])["summary"]["gross"]["amount"] == amount
    balanced(client, secret_headers)


def _iso(ts: int) -> str:
    return datetime.fromtimestamp(ts, UTC).isoformat().replace("+00:00", "Z")


def cycle_invoice(
    order: dict, invoice_id: str, amount: int, created: int, lines: list[dict] | None = None
) -> dict:
    obj = {"id": invoice_id, "object": "invoice", "subscription": SUB, "billing_reason": "subscription_cycle",
           "amount_paid": amount, "currency": "usd", "status": "paid", "payment_intent": f"pi_{invoice_id}",
           "subscription_details": {"metadata": {"order_id": order["id"]}}}  # fmt: skip
    if lines is not None:  # as API 2025-03-31 and later list them: the proration flag under parent
        obj["lines"] = {"object": "list", "has_more": False, "data": [
            {"id": f"il_{n}", "object": "line_item", "amount": value,
             "parent": {"type": "subscription_item_details",
                        "subscription_item_details": {"proration": prorated, "subscription": SUB}}}
            for n, (value, prorated) in enumerate(lines)]}  # fmt: skip
    paid = event("invoice.paid", obj, event_id=f"evt_{invoice_id}")
    paid["created"] = created
    return paid


def test_an_invoices_prorations_are_read_from_its_lines_in_every_api_version() -> None:
    def prorations(lines: list[dict], has_more: bool = False) -> int | None:
        obj = {"id": "in_1", "object": "invoice", "amount_paid": 0, "currency": "usd",
               "lines": {"object": "list", "data": lines, "has_more": has_more}}  # fmt: skip
        normalized = normalize(WebhookEvent(id="evt_1", type="invoice.paid", created=T0, object=obj, raw={}))
        assert normalized is not None
        return normalized.proration

    old = [{"amount": 9900, "proration": False}, {"amount": -4950, "proration": True},
           {"amount": 1950, "proration": True}]  # fmt: skip
    new = [{"amount": 9900, "parent": {"subscription_item_details": {"proration": False}}},
           {"amount": 3000, "parent": {"subscription_item_details": {"proration": True}}},
           {"amount": 25, "parent": {"invoice_item_details": {"proration": True}}}]  # fmt: skip
    assert (prorations(old), prorations(new), prorations(new[:1])) == (-3000, 3025, 0)
    assert (prorations(new, has_more=True), prorations([])) == (None, None)  # not every line listed: unknown
    # MGA: Stripe counts it in hundredths of ISO units (as every amount of the invoice)
    obj = {"id": "in_2", "object": "invoice", "amount_paid": 0, "currency": "mga",
           "lines": {"object": "list", "data": [{"amount": 500, "proration": True}], "has_more": False}}  # fmt: skip
    got = normalize(WebhookEvent(id="evt_2", type="invoice.paid", created=T0, object=obj, raw={}))
    assert got is not None and got.proration == currencies.from_provider_units("stripe", "mga", 500)


def test_a_cycle_invoice_carrying_a_dashboard_downgrades_credit_renews_and_books_what_was_charged(
    stripe_client, secret_headers, write_headers, fake_stripe
):
    """Downgraded in Stripe's dashboard (its credit for the unused time is Stripe's, on the next invoice): the
    cycle invoice lists the new period (3900) and the prorations (-4950 + 1950): 900 charged, 900 booked."""
    client = stripe_client
    order, sub = stripe_plan(client, secret_headers, write_headers, fake_stripe)
    stripe_sub = fake_stripe.state.subscriptions[SUB]
    stripe_sub["items"]["data"][0]["price"]["unit_amount"] = 3900
    stripe_sub["metadata"]["plan"] = "membership-monthly"
    updated = echo(fake_stripe, "customer.subscription.updated", "evt_dashboard_downgrade", T0 + 86_400)
    assert deliver(client, updated).json()["outcome"] == "plan_changed"
    assert refund_requests(fake_stripe) == []
    end = stripe_sub["current_period_end"]
    paid = cycle_invoice(order, "in_down", 900, end + 60, [(3900, False), (-4950, True), (1950, True)])
    assert deliver(client, paid).json()["outcome"] == "subscription_renewed"
    [renewal] = [o for o in orders(client, secret_headers) if o["id"] != order["id"]]
    assert (renewal["subtotal"], renewal["discount"], renewal["total"]) == (3900, 3000, 900)
    assert state(client, secret_headers, sub)["state"]["current_period_start"] == _iso(end)
    balanced(client, secret_headers)


def test_a_cycle_invoice_off_the_plans_amount_without_a_plan_change_is_still_refused(
    stripe_client, secret_headers, write_headers, fake_stripe
):
    """Prorations are accepted only as Stripe reports them: listed as proration lines, or (no lines listed) after
    a plan change Stripe reported this period. Any other amount is refused visibly and books nothing."""
    client = stripe_client
    order, sub = stripe_plan(client, secret_headers, write_headers, fake_stripe)
    end = fake_stripe.state.subscriptions[SUB]["current_period_end"]
    before = state(client, secret_headers, sub)
    assert (
        deliver(client, cycle_invoice(order, "in_odd", 12900, end + 60)).json()["outcome"]
        == "amount_mismatch"
    )
    listed = cycle_invoice(order, "in_odd_lines", 12900, end + 61, [(9900, False), (3000, False)])
    assert deliver(client, listed).json()["outcome"] == "amount_mismatch"
    assert [o["id"] for o in orders(client, secret_headers)] == [order["id"]]
    assert state(client, secret_headers, sub) == before
    balanced(client, secret_headers)
