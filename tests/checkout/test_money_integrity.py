"""Money and access exactly as paid for (issue 8): refunds that overtake fulfilment, subscriptions ended by a
refund, trials, renewals booked by the checkout's rule, unpaid renewals, plan changes, coupons held by
pending checkouts, platform fees on refunds, payouts and upsells. Every test checks the ledger balances."""

from __future__ import annotations

from datetime import datetime

import pytest
from fastapi.testclient import TestClient
from tests.checkout.test_checkout_flow import (
    allowed,
    buy,
    charge_refunded,
    deliver,
    pay,
    session_completed,
    setup,
    stripe_client,
    subscription_of,
)

__all__ = ["stripe_client"]  # a fixture, shared with test_checkout_flow

from offerloop.api import create_app
from offerloop.checkout import repository as checkout_repository
from offerloop.checkout import service as checkout_service
from offerloop.checkout.exceptions import CheckoutError
from offerloop.config import Settings
from offerloop.entitlements import service as entitlements_service
from offerloop.models import Order
from offerloop.subscriptions import service as subscriptions_service


def balanced(client) -> None:
    assert client.get("/v1/ledger/check", headers=client.headers_).json() == {
        "balanced": True,
        "unbalanced_orders": [],
    }


@pytest.fixture
def taxed(db, database_url, secret_headers):
    """A server whose orders carry 10% tax and a 5% platform fee."""
    settings = Settings(environment="test", database_url=database_url, log_json=True, log_level="WARNING",
                        tax_percent="10", platform_fee_percent="5")  # fmt: skip
    with TestClient(create_app(settings, db=db), raise_server_exceptions=False) as c:
        c.headers_ = secret_headers
        yield c


@pytest.fixture
def api(client, secret_headers):
    client.headers_ = secret_headers
    return client


def act(client, sid: str, action: str, at: str, **extra) -> dict:
    r = client.post(f"/v1/subscriptions/{sid}/actions", headers=client.headers_,
                    json={"action": action, "at": at, **extra})  # fmt: skip
    assert r.status_code == 200, r.text
    return r.json()


def summary(client, order_id: str) -> dict[str, int]:
    ledger = client.get(f"/v1/ledger/orders/{order_id}", headers=client.headers_).json()
    return {k: v["amount"] for k, v in ledger["summary"].items()}


def orders_of(db, order: dict) -> list[Order]:
    with db.read() as session:
        ws = session.get(Order, order["id"]).workspace_id
        found = checkout_repository.orders_of(session, ws, order["buyer_id"])
        session.expunge_all()
        return found


def quota(db, order: dict, when: str) -> bool:
    with db.read() as session:
        ws = session.get(Order, order["id"]).workspace_id
        return entitlements_service.check(session=session, workspace_id=ws, buyer_id=order["buyer_id"],
                                          component="coaching_quota", ref="coaching-1to1",
                                          now=datetime.fromisoformat(when)).allowed  # fmt: skip


# -- 3. access after a full refund ---------------------------------------------------------------------


def test_a_refund_right_after_payment_wins_over_the_pending_fulfilment(api, db, write_headers):
    setup(api, api.headers_, write_headers)
    order = buy(api, api.headers_, "pricing-playbook")
    pay(api, api.headers_, order["id"])
    # the refund lands before the fulfilment worker ran (2 of 5 runs in the report)
    assert (
        api.post(f"/v1/orders/{order['id']}/refund", headers=api.headers_, json={}).json()["status"]
        == "refunded"
    )
    done = checkout_service.run_fulfilment(db=db)
    assert sorted((c, s) for _, c, s in done) == []  # nothing left to deliver: the tasks were canceled
    assert not allowed(api, api.headers_, "download", "pricing-playbook-pdf")
    assert not allowed(api, api.headers_, "module", "lesson-pricing-intro")
    got = api.get(f"/v1/orders/{order['id']}", headers=api.headers_).json()
    assert {t["status"] for t in got["fulfilment"]} == {"canceled"}
    balanced(api)


def test_a_task_of_a_refunded_order_is_skipped_even_if_it_was_still_pending(api, db, write_headers):
    """The task runs after the refund committed, whatever state the task was in (e.g. a retry)."""
    setup(api, api.headers_, write_headers)
    order = buy(api, api.headers_, "pricing-playbook")
    pay(api, api.headers_, order["id"])
    api.post(f"/v1/orders/{order['id']}/refund", headers=api.headers_, json={})
    # an admin puts the canceled task back to pending: fulfilment still refuses to grant
    r = api.post(
        f"/v1/orders/{order['id']}/fulfilment/download/pricing-playbook-pdf/retry", headers=api.headers_
    )
    assert r.status_code == 200, r.text
    assert checkout_service.run_fulfilment(db=db) == [(order["id"], "download", "canceled")]
    assert not allowed(api, api.headers_, "download", "pricing-playbook-pdf")


def test_a_stripe_refund_delivered_before_the_checkout_completion_leaves_no_access(
    stripe_client, db, secret_headers, write_headers
):
    client = stripe_client
    client.headers_ = secret_headers
    setup(client, secret_headers, write_headers)
    order = buy(client, secret_headers, "pricing-playbook", provider="stripe")
    assert deliver(client, charge_refunded(order, 2700, event_id="evt_full")).json()["outcome"] == "refunded"
    assert (
        deliver(client, session_completed(order, event_id="evt_paid")).json()["outcome"] == "order_refunded"
    )
    checkout_service.run_fulfilment(db=db)
    assert not allowed(client, secret_headers, "download", "pricing-playbook-pdf")
    assert client.get(f"/v1/orders/{order['id']}", headers=secret_headers).json()["status"] == "refunded"
    balanced(client)


# -- 6. subscriptions and refunds ------------------------------------------------------------------------


def test_a_full_refund_of_a_subscription_order_cancels_it_and_revokes_its_grants(api, db, write_headers):
    setup(api, api.headers_, write_headers)
    order = buy(api, api.headers_, "membership-annual")  # no trial: charged at checkout
    pay(api, api.headers_, order["id"])
    checkout_service.run_fulfilment(db=db)
    assert allowed(api, api.headers_, "community_space", "creator-circle")
    assert allowed(api, api.headers_, "coaching_quota", "coaching-1to1")
    sid, status = subscription_of(db, order)
    assert status == "active"
    assert (
        api.post(f"/v1/orders/{order['id']}/refund", headers=api.headers_, json={}).json()["status"]
        == "refunded"
    )
    assert api.get(f"/v1/subscriptions/{sid}", headers=api.headers_).json()["status"] == "canceled"
    assert not allowed(api, api.headers_, "community_space", "creator-circle")
    assert not allowed(api, api.headers_, "coaching_quota", "coaching-1to1")
    assert not allowed(api, api.headers_, "module", "module-audience-101")
    balanced(api)


def test_a_subscription_refunded_before_fulfilment_never_grants(api, db, write_headers):
    setup(api, api.headers_, write_headers)
    order = buy(api, api.headers_, "membership-annual")
    pay(api, api.headers_, order["id"])
    api.post(f"/v1/orders/{order['id']}/refund", headers=api.headers_, json={})
    checkout_service.run_fulfilment(db=db)
    assert not allowed(api, api.headers_, "community_space", "creator-circle")


# -- 5. trials -----------------------------------------------------------------------------------------


def test_a_trial_is_charged_once_at_its_end_and_its_quota_starts_with_the_paid_period(api, db, write_headers):
    setup(api, api.headers_, write_headers)
    order = buy(api, api.headers_, "membership-monthly")  # 7-day trial
    assert (order["subtotal"], order["tax"], order["total"]) == (0, 0, 0)
    assert order["lines"][0]["trial_days"] == 7 and order["lines"][0]["after_trial"] == 3900
    pay(api, api.headers_, order["id"])
    checkout_service.run_fulfilment(db=db)
    sid, status = subscription_of(db, order)
    assert status == "trialing"
    assert (
        api.get(f"/v1/ledger/orders/{order['id']}", headers=api.headers_).status_code == 404
    )  # nothing booked
    assert allowed(api, api.headers_, "community_space", "creator-circle")  # the trial gives access
    state = api.get(f"/v1/subscriptions/{sid}", headers=api.headers_).json()["state"]
    trial_start, trial_end = state["current_period_start"], state["current_period_end"]
    assert not quota(db, order, trial_start)  # ... but no coaching quota before the first paid period
    r = api.post("/v1/entitlements/use", headers=api.headers_,
                 json={"buyer_id": order["buyer_id"], "component": "coaching_quota", "ref": "coaching-1to1"})  # fmt: skip
    assert r.status_code == 409 and r.json()["error"]["code"] == "not_entitled", r.text
    act(api, sid, "renew", trial_end)  # the trial ends: the first period is charged, once
    assert quota(db, order, trial_end)
    charges = [o for o in orders_of(db, order) if o.id != order["id"]]
    assert [(o.status, o.total) for o in charges] == [("paid", 3900)]
    revenue = api.get("/v1/revenue", headers=api.headers_, params={"by": "offer", "currency": "USD"}).json()[
        "items"
    ]
    assert revenue == [{"key": "membership-monthly", "amount": 3900, "formatted": "USD 39.00"}]
    balanced(api)


# -- 6. renewals and proration by the checkout's rule; unpaid renewals; plan changes ----------------------


def test_renewals_and_proration_book_tax_and_platform_fee_like_a_checkout(taxed, db, write_headers):
    api = taxed
    setup(api, api.headers_, write_headers)
    product = buy(api, api.headers_, "pricing-playbook")
    assert (product["tax"], product["total"]) == (270, 2970)
    pay(api, api.headers_, product["id"])
    assert summary(api, product["id"])["tax"] == 270 and summary(api, product["id"])["platform_fee"] == 135
    order = buy(api, api.headers_, "membership-monthly")
    pay(api, api.headers_, order["id"])
    sid, _ = subscription_of(db, order)
    trial_end = api.get(f"/v1/subscriptions/{sid}", headers=api.headers_).json()["state"][
        "current_period_end"
    ]
    act(api, sid, "renew", trial_end)
    (renewal,) = [o for o in orders_of(db, order) if o.id not in (order["id"], product["id"])]
    assert (renewal.subtotal, renewal.tax, renewal.total) == (3900, 390, 4290)
    s = summary(api, renewal.id)
    assert (s["gross"], s["tax"], s["platform_fee"]) == (3900, 390, 195)
    # a switch to the annual plan at the period's start: 39000 less the unused 3900, taxed, with the fee
    act(api, sid, "change_plan", trial_end, plan="membership-annual")
    (change,) = [o for o in orders_of(db, order) if o.id not in (order["id"], product["id"], renewal.id)]
    s = summary(api, change.id)
    assert (s["gross"], s["tax"], s["platform_fee"]) == (35100, 3510, 1755)
    balanced(api)


def test_a_downgrade_credit_follows_the_same_rule_tax_and_platform_fee_back(taxed, db, write_headers):
    api = taxed
    setup(api, api.headers_, write_headers)
    order = buy(api, api.headers_, "membership-annual")
    paid = pay(api, api.headers_, order["id"])
    assert (paid["tax"], paid["total"]) == (3900, 42900)
    sid, _ = subscription_of(db, order)
    start = api.get(f"/v1/subscriptions/{sid}", headers=api.headers_).json()["state"]["current_period_start"]
    # to the monthly plan at the very start: the unused year (39000) less the new month (3900) comes back,
    # with its tax (3510), and the platform fee in proportion (1950 * 38610 / 42900 = 1755)
    act(api, sid, "change_plan", start, plan="membership-monthly")
    s = summary(api, order["id"])
    assert (s["refunds"], s["tax"], s["platform_fee"]) == (35100, 390, 195)
    balanced(api)


def test_a_renewal_that_ends_unpaid_is_booked_back_and_a_recovery_books_it_again(api, db, write_headers):
    setup(api, api.headers_, write_headers)
    order = buy(api, api.headers_, "membership-monthly")
    pay(api, api.headers_, order["id"])
    sid, _ = subscription_of(db, order)
    trial_end = api.get(f"/v1/subscriptions/{sid}", headers=api.headers_).json()["state"][
        "current_period_end"
    ]
    act(api, sid, "renew", trial_end)

    def revenue() -> int:
        rows = api.get("/v1/revenue", headers=api.headers_, params={"by": "offer", "currency": "USD"}).json()[
            "items"
        ]
        return sum(r["amount"] for r in rows)

    assert revenue() == 3900
    failed = act(api, sid, "payment_failed", trial_end)
    assert failed["status"] == "past_due" and revenue() == 0
    (charge,) = [o for o in orders_of(db, order) if o.id != order["id"]]
    assert charge.status == "unpaid"
    recovered = act(api, sid, "payment_succeeded", failed["state"]["next_retry_at"])
    assert recovered["status"] == "active" and revenue() == 3900
    (charge,) = [o for o in orders_of(db, order) if o.id != order["id"]]
    assert charge.status == "paid"
    balanced(api)


PLANS = """
offers:
  - key: basic
    kind: subscription
    title: Basic
    prices: {USD: 1000}
    interval: month
    quotas: {coaching_session: 1}
    components:
      - {component: community_space, ref: basic-space}
      - {component: coaching_quota, ref: coaching, quantity: 1}
  - key: pro
    kind: subscription
    title: Pro
    prices: {USD: 3000}
    interval: month
    quotas: {coaching_session: 4}
    components:
      - {component: community_space, ref: pro-space}
      - {component: coaching_quota, ref: coaching, quantity: 4}
      - {component: module, ref: pro-module}
"""


def test_a_plan_change_changes_what_the_buyer_may_use(api, db, write_headers):
    setup(api, api.headers_, write_headers, catalog=PLANS)
    order = buy(api, api.headers_, "basic")
    pay(api, api.headers_, order["id"])
    checkout_service.run_fulfilment(db=db)
    sid, _ = subscription_of(db, order)
    assert allowed(api, api.headers_, "community_space", "basic-space")
    start = api.get(f"/v1/subscriptions/{sid}", headers=api.headers_).json()["state"]["current_period_start"]
    act(api, sid, "change_plan", start, plan="pro")
    assert allowed(api, api.headers_, "community_space", "pro-space")
    assert allowed(api, api.headers_, "module", "pro-module")
    assert not allowed(api, api.headers_, "community_space", "basic-space")
    check = api.get("/v1/entitlements/check", headers=api.headers_,
                    params={"user_id": "ada", "component": "coaching_quota", "ref": "coaching"}).json()  # fmt: skip
    assert check["allowed"] and check["quantity"] == 4
    act(api, sid, "change_plan", start, plan="basic")  # and back down
    assert allowed(api, api.headers_, "community_space", "basic-space")
    assert not allowed(api, api.headers_, "community_space", "pro-space")
    assert not allowed(api, api.headers_, "module", "pro-module")
    balanced(api)


# -- 7. coupons, platform fee on refunds, payouts, upsells ------------------------------------------------


def test_a_once_per_buyer_coupon_is_held_by_a_pending_checkout(api, write_headers):
    setup(api, api.headers_, write_headers)
    first = buy(api, api.headers_, "pricing-playbook", coupon="LAUNCH20")
    second = api.post("/v1/checkout", headers=api.headers_,
                      json={"user_id": "ada", "offer": "launch-workbook", "coupon": "launch20"})  # fmt: skip
    assert second.status_code == 422 and second.json()["error"]["code"] == "coupon_already_used", second.text
    api.post(f"/v1/orders/{first['id']}/cancel", headers=api.headers_)  # the abandoned checkout gives it back
    third = buy(api, api.headers_, "launch-workbook", coupon="LAUNCH20")
    assert third["discount"] == 380
    pay(api, api.headers_, third["id"])
    again = api.post("/v1/checkout", headers=api.headers_,
                     json={"user_id": "ada", "offer": "pricing-playbook", "coupon": "LAUNCH20"})  # fmt: skip
    assert again.status_code == 422 and again.json()["error"]["code"] == "coupon_already_used"


def test_the_platform_fee_is_returned_in_proportion_to_refunds(taxed, write_headers):
    api = taxed
    setup(api, api.headers_, write_headers)
    order = buy(api, api.headers_, "pricing-playbook")  # 2700 + 270 tax; platform fee 5% of 2700 = 135
    pay(api, api.headers_, order["id"])
    api.post(f"/v1/orders/{order['id']}/refund", headers=api.headers_, json={"amount": 990})  # a third
    s = summary(api, order["id"])
    assert (s["platform_fee"], s["refunds"], s["tax"]) == (90, 900, 180)
    api.post(f"/v1/orders/{order['id']}/refund", headers=api.headers_, json={})
    s = summary(api, order["id"])
    assert (s["platform_fee"], s["processor_fee"], s["net"]) == (0, 0, 0)
    balanced(api)


def test_payouts_are_recorded_once_by_reference_and_never_exceed_the_balance(api, write_headers):
    setup(api, api.headers_, write_headers)
    order = buy(api, api.headers_, "pricing-playbook")
    pay(api, api.headers_, order["id"])
    body = {"reference": "po_1", "amount": 2000, "currency": "USD", "paid_at": "2026-12-01T00:00:00Z"}
    first = api.post("/v1/ledger/payouts", headers=api.headers_, json=body)
    assert first.status_code == 201, first.text
    assert (first.json()["created"], first.json()["pending_balance"]["amount"]) == (True, 700)
    again = api.post("/v1/ledger/payouts", headers=api.headers_, json=body)
    assert again.status_code == 200 and again.json()["created"] is False
    assert again.json()["entry_id"] == first.json()["entry_id"]
    other = api.post("/v1/ledger/payouts", headers=api.headers_, json={**body, "amount": 1999})
    assert other.status_code == 409 and other.json()["error"]["code"] == "payout_reference_conflict"
    too_much = api.post(
        "/v1/ledger/payouts", headers=api.headers_, json={**body, "reference": "po_2", "amount": 701}
    )
    assert too_much.status_code == 422, too_much.text
    report = api.get("/v1/ledger/payouts", headers=api.headers_,
                     params={"start": "2026-01-01", "end": "2030-01-01", "currency": "USD"}).json()  # fmt: skip
    assert report["paid_out"]["amount"] == 2000
    balanced(api)


def test_a_paid_order_offers_its_upsell_and_the_upsell_can_be_bought(api, db, write_headers):
    setup(api, api.headers_, write_headers)
    order = buy(api, api.headers_, "pricing-playbook")
    assert api.get(f"/v1/orders/{order['id']}", headers=api.headers_).json()["upsells"] == []  # not paid yet
    pay(api, api.headers_, order["id"])
    upsells = api.get(f"/v1/orders/{order['id']}", headers=api.headers_).json()["upsells"]
    assert [(u["key"], u["price"], u["currency"]) for u in upsells] == [("membership-monthly", 3900, "USD")]
    bought = buy(api, api.headers_, upsells[0]["key"])
    pay(api, api.headers_, bought["id"])
    # owned now: not offered again
    assert api.get(f"/v1/orders/{order['id']}", headers=api.headers_).json()["upsells"] == []


def test_an_unpaid_renewal_is_booked_back_to_nothing(db, workspace):
    from pathlib import Path

    from offerloop.ledger import service as ledger_service
    from offerloop.offers import service as offers_service

    catalog = (Path(__file__).resolve().parents[2] / "examples" / "demo" / "offers.yaml").read_text()
    ws = workspace.id
    with db.write() as session:
        offers_service.load_catalog(session=session, workspace_id=ws, text=catalog)
        buyer = checkout_service.buyer_for(session=session, workspace_id=ws, user_id="ada")
        order = checkout_service.begin(session=session, workspace_id=ws, buyer_id=buyer, offer_key="membership-annual",
                                       currency="USD", provider="stripe")  # fmt: skip
        checkout_service.mark_paid(session=session, workspace_id=ws, order_id=order.id, actor="t")
        (sub,) = subscriptions_service.of_buyer(session=session, workspace_id=ws, buyer_id=buyer)
        end = subscriptions_service.state_of(sub).current_period_end
        # Stripe's renewal and failed retry, as its webhooks apply them (asked for here: provider_managed)
        subscriptions_service.act(
            session=session, workspace_id=ws, subscription_id=sub.id, action="renew", at=end, actor="stripe"
        )
        (renewal,) = [o for o in checkout_repository.orders_of(session, ws, buyer) if o.id != order.id]
        booked = ledger_service.order_ledger(session=session, workspace_id=ws, order_id=renewal.id).summary
        assert booked.processor_fee.amount == 0  # no fee is guessed: only one the provider reports
        subscriptions_service.act(session=session, workspace_id=ws, subscription_id=sub.id,
                                             action="payment_failed", at=end, actor="stripe")  # fmt: skip
        booked = ledger_service.order_ledger(session=session, workspace_id=ws, order_id=renewal.id).summary
        assert (booked.processor_fee.amount, booked.net.amount, renewal.status) == (
            0,
            0,
            "unpaid",
        )
        assert ledger_service.unbalanced_orders(session=session, workspace_id=ws) == []


def test_a_lapsed_hold_gives_the_buyer_their_allowance_back(db, workspace):
    from datetime import UTC, timedelta
    from pathlib import Path

    from offerloop.offers import service as offers_service

    catalog = (Path(__file__).resolve().parents[2] / "examples" / "demo" / "offers.yaml").read_text()
    ws = workspace.id
    t0 = datetime(2027, 3, 1, 12, 0, tzinfo=UTC)
    with db.write() as session:
        offers_service.load_catalog(
            session=session, workspace_id=ws, text=catalog.replace("per_buyer_limit: 2", "per_buyer_limit: 1")
        )
        offers_service.sign_off(session=session, workspace_id=ws, key="drop-limited-print", actor="creator")
        buyer = checkout_service.buyer_for(session=session, workspace_id=ws, user_id="ada")

    def checkout(at: datetime) -> str:
        with db.write() as session:
            return checkout_service.begin(session=session, workspace_id=ws, buyer_id=buyer, offer_key="drop-limited-print",
                                          currency="USD", now=at).id  # fmt: skip

    first = checkout(t0)
    with pytest.raises(CheckoutError) as refused:
        checkout(t0 + timedelta(minutes=5))  # the held unit counts
    assert refused.value.code == "per_buyer_limit"
    second = checkout(t0 + timedelta(minutes=16))  # the hold lapsed: the allowance is back
    with db.write() as session:
        checkout_service.mark_paid(session=session, workspace_id=ws, order_id=second, actor="t")
        claimed = checkout_repository.claimed(session, ws, "drop", "drop-limited-print", buyer)
        assert claimed == 1
        # the lapsed order is paid after all: the payment happened, so it counts (over the limit, not lost)
        checkout_service.mark_paid(session=session, workspace_id=ws, order_id=first, actor="t")
        assert checkout_repository.claimed(session, ws, "drop", "drop-limited-print", buyer) == 2
    with pytest.raises(CheckoutError):
        checkout(t0 + timedelta(minutes=40))
