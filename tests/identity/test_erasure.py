"""GDPR erasure across every store: a buyer who touched them all is erased, then every table of the
schema is scanned for their name, e-mail, user id and free-text answer (so a store added later without
an erasure decision fails here), their deliverable can no longer be downloaded, and the ledger's totals
are what they were."""

from __future__ import annotations

import json
from typing import Any

from sqlalchemy import func, select
from tests.assembly.test_artifacts_api import POLICY, setup_workspace
from tests.checkout.test_checkout_flow import (
    CATALOG,
    buy,
    charge_refunded,
    deliver,
    pay,
    session_completed,
)
from tests.checkout.test_stripe_provider import API_KEY, SECRET, fake_stripe, fake_stripe_server
from tests.conftest import msg

from offerloop.assembly import service as assembly_service
from offerloop.checkout import service as checkout_service
from offerloop.db.base import Base
from offerloop.identity import erasure
from offerloop.models import Artifact, Decision, FulfilmentTask, LedgerPosting, Order, QuarantinedEvent

__all__ = ["fake_stripe", "fake_stripe_server"]

USER_ID = "usr-zq-4471"
EMAIL = "zelda.quinterro@example.org"
NAME = "Zelda Quinterro"
ANSWER = "escape the dentist job by spring"
NEEDLES = [USER_ID, EMAIL, NAME, ANSWER, "anon-zq-a", "anon-zq-b"]


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bytes | memoryview):
        return bytes(value).decode("latin-1")
    if isinstance(value, dict | list):
        return json.dumps(value, ensure_ascii=False)
    return str(value)


def scan(db, needles: list[str]) -> dict[str, set[str]]:
    """Every table of the schema, every row and column: which needles occur where (case-insensitive)."""
    found: dict[str, set[str]] = {}
    with db.read() as session:
        for table in Base.metadata.sorted_tables:
            for row in session.execute(select(table)):
                blob = " ".join(_text(v) for v in row).lower()
                hits = {n for n in needles if n.lower() in blob}
                if hits:
                    found.setdefault(table.name, set()).update(hits)
    return found


def ledger_totals(db) -> list[tuple[str, str, int]]:
    with db.read() as session:
        stmt = (
            select(LedgerPosting.account, LedgerPosting.currency, func.sum(LedgerPosting.amount))
            .group_by(LedgerPosting.account, LedgerPosting.currency)
            .order_by(LedgerPosting.account, LedgerPosting.currency)
        )
        return [(a, c, int(s)) for a, c, s in session.execute(stmt)]


def test_every_table_has_an_erasure_decision():
    assert sorted(erasure.PLAN) == sorted(Base.metadata.tables)


def test_erasure_reaches_every_store(client, db, secret_headers, write_headers, fake_stripe):
    s = client.app.state.settings
    s.stripe_api_key, s.stripe_webhook_secret, s.stripe_api_base = API_KEY, SECRET, fake_stripe.base

    def send(*messages: dict) -> None:
        r = client.post("/v1/batch", headers=write_headers, json={"batch": list(messages)})
        assert r.status_code == 200, r.text

    setup_workspace(client, secret_headers)
    # The launch workbook's deliverable: paying for it makes a second artifact through fulfilment.
    policy = POLICY.replace("starter-workbook", "launch-workbook").replace("{REVIEW}", "never")
    assert client.put("/v1/policies", headers=secret_headers, json={"text": policy}).status_code == 200
    assert client.put("/v1/offers/catalog", headers=secret_headers, json={"text": CATALOG}).status_code == 200
    # Two anonymous visits, then both tied to the user: a merge; a touchpoint with a click id.
    send(
        msg(type="page", anonymousId="anon-zq-a", messageId="zq-p1",
            context={"page": {"url": f"https://c.example/?utm_source=ig&fbclid=abc&email={EMAIL}"
                                     f"&utm_content={EMAIL}&utm_campaign=hi-{USER_ID}&utm_term={NAME}"}}),
        msg(type="page", anonymousId="anon-zq-b", messageId="zq-p2"),
    )  # fmt: skip
    send(
        msg(type="identify", anonymousId="anon-zq-a", userId=USER_ID, messageId="zq-i1",
            traits={"email": EMAIL, "name": NAME, "first_name": "Zelda"}),
        msg(type="identify", anonymousId="anon-zq-b", userId=USER_ID, messageId="zq-i2"),
        msg(type="track", userId=USER_ID, event="Support Message", messageId="zq-t1",
            properties={"body": f"hi, this is {NAME}, write to {EMAIL}", "rating": 4}),
    )  # fmt: skip
    # A refused event that carries their identifiers lands in quarantine.
    send({"type": "track", "userId": USER_ID, "messageId": "zq-bad", "properties": {"who": EMAIL}})
    # The intake quiz, with a free-text answer.
    r = client.post("/v1/quizzes/intake/answers", headers=write_headers,
                    json={"user_id": USER_ID, "answers": {"stage": "idea", "confidence": 1, "goal": ANSWER}})  # fmt: skip
    assert r.status_code == 200 and r.json()["status"] == "accepted", r.text
    buyer = client.get("/v1/buyers/lookup", params={"user_id": USER_ID}, headers=secret_headers).json()
    # A personalized deliverable with its files, and a download link issued before the erasure.
    r = client.post(
        "/v1/artifacts", headers=secret_headers, json={"user_id": USER_ID, "policy": "starter-workbook"}
    )
    assert r.status_code == 202, r.text
    artifact_id = r.json()["id"]
    assert [status for *_, status in assembly_service.run_pending(db=db)] == ["ready"]
    old_link = client.get(f"/v1/artifacts/{artifact_id}/download?format=html", headers=secret_headers).json()
    page = client.get(old_link["url"])
    assert page.status_code == 200 and NAME in page.text
    # Offers shown through the decision engine; a manual sale, a subscription and a Stripe-paid order.
    assert (
        client.get("/v1/offers", headers=secret_headers, params={"user_id": USER_ID, "k": 3}).status_code
        == 200
    )
    pay(client, secret_headers, buy(client, secret_headers, "pricing-playbook", user=USER_ID)["id"])
    pay(client, secret_headers, buy(client, secret_headers, "membership-monthly", user=USER_ID)["id"])
    stripe_order = buy(
        client, secret_headers, "launch-workbook", user=USER_ID, provider="stripe", email=EMAIL
    )
    paid = session_completed(stripe_order, event_id="evt_zq_paid")
    paid["data"]["object"]["customer_details"] = {"email": EMAIL, "name": NAME, "phone": None}
    paid["data"]["object"]["customer_email"] = EMAIL
    assert deliver(client, paid).json()["outcome"] == "paid"
    # Run due tasks until none is left: the shared test database may hold other due tasks first (a
    # failed one is pushed back by its backoff, so this ends).
    for _ in range(20):
        if not checkout_service.run_fulfilment(db=db):
            break
    with db.read() as session:
        tasks = session.execute(
            select(FulfilmentTask.component, FulfilmentTask.status, FulfilmentTask.last_error).where(
                FulfilmentTask.buyer_id == buyer["id"]
            )
        ).all()
    assert tasks and {status for _, status, _ in tasks} == {"done"}, tasks
    assembly_service.run_pending(db=db)
    with db.read() as session:
        made = session.scalars(select(Artifact.policy_id).where(Artifact.buyer_id == buyer["id"])).all()
    assert sorted(made) == ["launch-workbook", "starter-workbook"]  # asked for, and paid for

    # The orders credited to the touchpoint, whose personalised link named the buyer (utm_content, utm_campaign).
    credit = client.post("/v1/attribution/refresh", headers=secret_headers,
                         json={"models": ["last"], "start": "2026-10-01", "end": "2030-01-01", "lookback_days": 365})  # fmt: skip
    assert credit.status_code == 200 and credit.json()["rows"] > 0, credit.text
    before = scan(db, NEEDLES)
    # The buyer really did reach these stores (so the scan below proves something).
    touched = {"buyers", "identities", "events", "quarantine", "merges", "artifact_versions", "artifact_files",
               "payment_events", "decisions", "buyer_features", "touchpoints", "attribution_credits"}  # fmt: skip
    assert touched <= set(before), sorted(set(before))
    with db.read() as session:
        tables_with_buyer_id = {
            t.name for t in Base.metadata.sorted_tables for c in t.columns
            if c.name in ("buyer_id", "winner_id", "loser_id")
            and session.execute(select(func.count()).select_from(t).where(c == buyer["id"])).scalar()
        }  # fmt: skip
    assert {"orders", "subscriptions", "entitlements", "fulfilment_tasks", "decisions", "artifacts",
            "buyer_features", "touchpoints"} <= tables_with_buyer_id  # fmt: skip
    totals = ledger_totals(db)
    assert totals and sum(amount for _, _, amount in totals) == 0

    r = client.delete(f"/v1/buyers/{buyer['id']}", headers=secret_headers)
    assert r.status_code == 200, r.text

    assert scan(db, NEEDLES) == {}
    assert ledger_totals(db) == totals
    # Kept for aggregates: the decision log (with the model's features) and the orders' amounts.
    with db.read() as session:
        decisions = session.execute(
            select(Decision.context, Decision.propensity).where(Decision.buyer_id == buyer["id"])
        ).all()
        orders = session.scalars(select(Order.total).where(Order.buyer_id == buyer["id"])).all()
    assert decisions and all(context and p is not None for context, p in decisions)
    assert sorted(orders) == [0, 1900, 2700]  # the plan starts with a trial: its order charged nothing
    # The old link and a newly asked one both fail.
    assert client.get(old_link["url"]).status_code == 404
    again = client.get(f"/v1/artifacts/{artifact_id}/download", headers=secret_headers)
    assert again.status_code == 404 and again.json()["error"]["code"] == "artifact_not_found"
    # The export of the tombstone holds nothing personal either; event facts survive for aggregates.
    export = client.get(f"/v1/buyers/{buyer['id']}/export", headers=secret_headers).json()
    blob = json.dumps(export).lower()
    assert [n for n in NEEDLES if n.lower() in blob] == []
    quiz = next(e for e in export["events"] if e["name"] == "Quiz Completed")
    assert quiz["properties"] == {"quiz_id": "intake", "quiz_version": quiz["properties"]["quiz_version"],
                                  "scores": {"pricing_confidence": 1.0}}  # fmt: skip
    support = next(e for e in export["events"] if e["name"] == "Support Message")
    assert support["properties"] == {"rating": 4}
    # Erased entitlements mean no access for anyone who takes the user id next.
    r = client.get("/v1/entitlements/check", headers=secret_headers,
                   params={"user_id": USER_ID, "component": "module", "ref": "pricing-basics"})  # fmt: skip
    assert r.status_code in (200, 404) and (r.status_code == 404 or r.json()["allowed"] is False)


def test_erasure_leaves_other_buyers_alone(client, db, secret_headers, write_headers):
    """Needles match whole tokens: another buyer whose id contains this one's is untouched, and a refused
    event of someone else that only mentions the erased buyer's name is kept, with the name redacted."""
    send = lambda *m: client.post("/v1/batch", headers=write_headers, json={"batch": list(m)})  # noqa: E731
    send(
        msg(type="identify", userId="ana", messageId="ana-1", traits={"email": "ana@example.com", "name": "Ana Quist"}),
        msg(type="identify", userId="banana", messageId="ban-1", traits={"email": "banana@example.com", "name": "Banana Ana"}),
        msg(type="track", userId="banana", event="Note", messageId="ban-2", properties={"to": "anastasia"}),
    )  # fmt: skip
    send({"type": "track", "userId": "banana", "messageId": "ban-q"})
    send(
        {"type": "track", "userId": "other-person", "messageId": "oth-q", "properties": {"met": "Ana Quist"}}
    )
    send({"type": "track", "userId": "ana", "messageId": "ana-q"})
    others = ["banana@example.com", "banana", "other-person", "oth-q"]
    before = scan(db, others)
    assert {"quarantine", "events", "buyers", "identities"} <= set(before)
    ana = client.get("/v1/buyers/lookup", params={"user_id": "ana"}, headers=secret_headers).json()
    assert client.delete(f"/v1/buyers/{ana['id']}", headers=secret_headers).status_code == 200
    assert scan(db, others) == before
    assert scan(db, ["Ana Quist", "ana-q"]) == {}  # (its e-mail is a substring of banana@example.com)
    banana = client.get("/v1/buyers/lookup", params={"user_id": "banana"}, headers=secret_headers).json()
    assert banana["traits"] == {"email": "banana@example.com", "name": "Banana Ana"}
    with db.read() as session:
        kept = session.scalars(select(QuarantinedEvent).where(QuarantinedEvent.message_id == "oth-q")).one()
        assert kept.payload["properties"] == {"met": "[erased]"}


def test_webhooks_arriving_after_erasure_bring_no_personal_data_back(
    client, db, secret_headers, write_headers, fake_stripe
):
    """Stripe keeps sending events about an erased buyer's order (a refund, a late retry): they are applied
    and kept for idempotency, but the customer's name, e-mail and address in them are not stored."""
    s = client.app.state.settings
    s.stripe_api_key, s.stripe_webhook_secret, s.stripe_api_base = API_KEY, SECRET, fake_stripe.base
    assert client.put("/v1/offers/catalog", headers=secret_headers, json={"text": CATALOG}).status_code == 200
    r = client.post("/v1/identify", headers=write_headers,
                    json={"userId": USER_ID, "traits": {"email": EMAIL, "name": NAME}})  # fmt: skip
    assert r.status_code == 200, r.text
    order = buy(client, secret_headers, "pricing-playbook", user=USER_ID, provider="stripe", email=EMAIL)
    person = {"email": EMAIL, "name": NAME, "address": {"line1": "12 Quinterro Lane", "city": "Lisbon"}}
    paid = session_completed(order, event_id="evt_zq_late_paid")
    paid["data"]["object"]["customer_details"] = person
    assert deliver(client, paid).json()["outcome"] == "paid"
    r = client.delete(f"/v1/buyers/{order['buyer_id']}", headers=secret_headers)
    assert r.status_code == 200, r.text
    assert scan(db, [*NEEDLES, "Quinterro Lane"]) == {}

    refund = charge_refunded(order, order["total"], event_id="evt_zq_late_refund")
    refund["data"]["object"].update(billing_details=person, receipt_email=EMAIL)
    assert deliver(client, refund).json()["outcome"] == "refunded"
    retry = session_completed(order, event_id="evt_zq_late_retry")
    retry["data"]["object"].update(customer_details=person, customer_email=EMAIL)
    assert deliver(client, retry).json()["outcome"] == "order_refunded"

    assert scan(db, [*NEEDLES, "Quinterro Lane"]) == {}
    events = client.get(f"/v1/orders/{order['id']}/payments", headers=secret_headers).json()["items"]
    assert [(e["provider_event_id"], e["outcome"]) for e in events] == [
        ("evt_zq_late_paid", "paid"), ("evt_zq_late_refund", "refunded"), ("evt_zq_late_retry", "order_refunded")
    ]  # fmt: skip


def test_nothing_new_is_delivered_to_an_erased_buyer(client, db, secret_headers, write_headers, fake_stripe):
    """A checkout paid after its buyer asked for erasure is booked (the money is real) but delivers no access
    and no deliverable to the tombstone; granting access or making a deliverable for it is refused."""
    s = client.app.state.settings
    s.stripe_api_key, s.stripe_webhook_secret, s.stripe_api_base = API_KEY, SECRET, fake_stripe.base
    setup_workspace(client, secret_headers)
    assert client.put("/v1/offers/catalog", headers=secret_headers, json={"text": CATALOG}).status_code == 200
    order = buy(client, secret_headers, "pricing-playbook", user=USER_ID, provider="stripe", email=EMAIL)
    r = client.delete(f"/v1/buyers/{order['buyer_id']}", headers=secret_headers)
    assert r.status_code == 200, r.text

    assert deliver(client, session_completed(order, event_id="evt_zq_after")).json()["outcome"] == "paid"
    for _ in range(20):
        if not checkout_service.run_fulfilment(db=db):
            break
    detail = client.get(f"/v1/orders/{order['id']}", headers=secret_headers).json()
    assert detail["status"] == "paid"
    assert detail["fulfilment"] and {(t["status"], str(t["result"])) for t in detail["fulfilment"]} == {
        ("canceled", "{'skipped': 'buyer is erased'}")
    }
    grants = client.get(f"/v1/buyers/{order['buyer_id']}/entitlements", headers=secret_headers)
    assert grants.status_code == 200 and grants.json() == {"items": [], "next_cursor": None}
    assert client.get("/v1/ledger/check", headers=secret_headers).json()["balanced"] is True

    r = client.post("/v1/entitlements", headers=secret_headers, json={
        "buyer_id": order["buyer_id"], "component": "download", "ref": "x", "source": "manual"})  # fmt: skip
    assert _code(r) == (409, "buyer_erased")
    r = client.post("/v1/artifacts", headers=secret_headers,
                    json={"buyer_id": order["buyer_id"], "policy": "starter-workbook"})  # fmt: skip
    assert _code(r) == (409, "buyer_erased")
    with db.read() as session:
        assert session.scalars(select(Artifact.id).where(Artifact.buyer_id == order["buyer_id"])).all() == []


def _code(r) -> tuple[int, str]:
    return r.status_code, r.json()["error"]["code"]
