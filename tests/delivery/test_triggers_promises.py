"""A micro-offer's turnaround promise: recorded when the order is paid, met by its deliverable (on time or
late), and when its due time passes first, turned late with an alert to the creator — the real checkout,
fulfilment, assembly and job runner, the clock moved by passing ``now``."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from fastapi.testclient import TestClient
from tests.assembly.test_artifacts_api import setup_workspace
from tests.checkout.test_checkout_flow import buy, pay
from tests.delivery.test_journeys import identify, track

from offerloop.assembly import service as assembly_service
from offerloop.checkout import service as checkout_service
from offerloop.db.uow import Database
from offerloop.delivery import promises
from offerloop.delivery.journeys import engine
from offerloop.jobs import queue, runner
from offerloop.worker import registry

registry.load()

CATALOG = """
offers:
  - key: teardown
    kind: micro_offer
    title: "Sales page teardown"
    prices: {USD: 9900}
    deliverable_policy: starter-workbook
    turnaround_hours: 48
    daily_capacity: 5
  - key: guide
    kind: product
    title: "A guide"
    prices: {USD: 900}
    components:
      - {component: download, ref: guide-pdf}
"""
ALERT = """
name: promise_late
category: transactional
trigger: {event: Promise Late}
reentry: always
steps:
  - send: {channel: webhook, event: promise.late, text: "order {{ event.properties.order_id }} is late"}
"""


def setup(client: TestClient, secret: dict[str, str], write: dict[str, str], user: str) -> None:
    setup_workspace(client, secret)
    assert client.put("/v1/offers/catalog", headers=secret, json={"text": CATALOG}).status_code == 200
    assert client.put("/v1/journeys/promise_late", headers=secret, json={"yaml": ALERT}).status_code == 200
    identify(client, write, user)


def listed(client: TestClient, secret: dict[str, str], **query: Any) -> list[dict[str, Any]]:
    r = client.get("/v1/promises", headers=secret, params=query)
    assert r.status_code == 200, r.text
    return list(r.json()["items"])


def due_jobs(db: Database, now: datetime) -> list[str]:
    ran = runner.run_due(db, owner="t", now=now, only=(promises.DUE,), limit=50)
    return [r.status for r in ran]


def deliver(db: Database) -> None:
    """Fulfil the paid orders (the deliverable is composed) and render them: ``Artifact Ready``."""
    for _ in range(5):
        if not checkout_service.run_fulfilment(db=db):
            break
    assembly_service.run_pending(db=db)


def test_paid_then_delivered_in_time(client, db, secret_headers, write_headers) -> None:
    setup(client, secret_headers, write_headers, "ada")
    order = buy(client, secret_headers, "teardown", user="ada")
    paid = pay(client, secret_headers, order["id"])
    paid_at = datetime.fromisoformat(paid["paid_at"])
    [promise] = listed(client, secret_headers)
    assert (promise["order_id"], promise["offer_key"], promise["policy_id"], promise["status"]) == (
        order["id"], "teardown", "starter-workbook", "open")  # fmt: skip
    assert datetime.fromisoformat(promise["due_at"]) == paid_at + timedelta(hours=48)
    assert due_jobs(db, paid_at + timedelta(hours=47)) == []  # not due yet
    deliver(db)
    [met] = listed(client, secret_headers)
    assert (met["status"], met["on_time"], met["late_at"]) == ("met", True, None)
    assert met["artifact_id"] is not None and met["artifact_id"].startswith("art")
    assert due_jobs(db, paid_at + timedelta(hours=49)) == ["done"]  # the due job finds it met: no alert
    assert listed(client, secret_headers, status="late") == []
    events = client.get(f"/v1/buyers/{met['buyer_id']}/events", headers=secret_headers).json()["items"]
    assert [e for e in events if e["name"] == promises.LATE_EVENT] == []


def test_the_due_time_passes_first_the_creator_is_alerted_once(
    client, db, workspace, secret_headers, write_headers
) -> None:
    setup(client, secret_headers, write_headers, "bo")
    order = buy(client, secret_headers, "teardown", user="bo")
    paid_at = datetime.fromisoformat(pay(client, secret_headers, order["id"])["paid_at"])
    due_at = paid_at + timedelta(hours=48)
    assert due_jobs(db, due_at - timedelta(seconds=1)) == []
    assert due_jobs(db, due_at + timedelta(seconds=1)) == ["done"]
    [late] = listed(client, secret_headers, status="late")
    assert (late["order_id"], late["status"], late["on_time"]) == (order["id"], "late", None)
    assert datetime.fromisoformat(late["late_at"]) == due_at + timedelta(seconds=1)
    buyer = late["buyer_id"]
    events = client.get(f"/v1/buyers/{buyer}/events", headers=secret_headers).json()["items"]
    alerts = [e["properties"] for e in events if e["name"] == promises.LATE_EVENT]
    assert [(a["order_id"], a["offer_key"], a["turnaround_hours"]) for a in alerts] == [
        (order["id"], "teardown", 48)
    ]
    # The alert reaches the creator through a delivery channel: the journey queues its webhook.
    runner.run_due(db, owner="t", now=due_at + timedelta(seconds=2), only=(engine.RUN,), limit=50)
    sent = client.get("/v1/messages", headers=secret_headers, params={"journey": "promise_late"}).json()[
        "items"
    ]
    assert [(m["channel"], m["buyer_id"], m["category"]) for m in sent] == [
        ("webhook", buyer, "transactional")
    ]
    # A second due job for the same order (a restart, a replay) alerts nobody again.
    with db.write() as session:
        queue.enqueue(session, kind=promises.DUE, key=promises.job_key(workspace.id, order["id"]), run_at=due_at,
                      now=due_at)  # fmt: skip
    assert due_jobs(db, due_at + timedelta(hours=1)) == ["done"]
    events = client.get(f"/v1/buyers/{buyer}/events", headers=secret_headers).json()["items"]
    assert len([e for e in events if e["name"] == promises.LATE_EVENT]) == 1
    # Delivered after all: met, late.
    deliver(db)
    [met] = listed(client, secret_headers)
    assert (met["status"], met["on_time"]) == ("met", False)
    assert listed(client, secret_headers, status="late") == []


def test_look_alike_events_make_and_meet_no_promise(client, db, secret_headers, write_headers) -> None:
    setup(client, secret_headers, write_headers, "cy")
    guide = buy(client, secret_headers, "guide", user="cy")
    pay(client, secret_headers, guide["id"])  # paid, but no micro-offer: no promise
    unpaid = buy(client, secret_headers, "teardown", user="cy")
    track(client, write_headers, "cy", "Order Completed",
          {"order_id": unpaid["id"], "offer_key": "teardown", "kind": "micro_offer"}, "forged-order")  # fmt: skip
    track(client, write_headers, "cy", "Order Completed",
          {"order_id": "ord_nope", "offer_key": "teardown", "kind": "micro_offer"}, "forged-order-2")  # fmt: skip
    assert listed(client, secret_headers) == []
    paid = buy(client, secret_headers, "teardown", user="cy")
    pay(client, secret_headers, paid["id"])
    track(
        client,
        write_headers,
        "cy",
        "Artifact Ready",
        {"artifact_id": "art_forged", "version": 1},
        "forged-art",
    )
    assert [(p["order_id"], p["status"]) for p in listed(client, secret_headers)] == [(paid["id"], "open")]


def test_a_refunded_order_cancels_its_promise_and_the_list_pages(
    client, db, secret_headers, write_headers
) -> None:
    setup(client, secret_headers, write_headers, "di")
    orders = [buy(client, secret_headers, "teardown", user="di") for _ in range(3)]
    for o in orders:
        pay(client, secret_headers, o["id"])
    r = client.post(f"/v1/orders/{orders[0]['id']}/refund", headers=secret_headers, json={"reason": "test"})
    assert r.status_code == 200, r.text
    first = client.get("/v1/promises", headers=secret_headers, params={"limit": 2}).json()
    second = client.get("/v1/promises", headers=secret_headers,
                        params={"limit": 2, "cursor": first["next_cursor"]}).json()  # fmt: skip
    assert second["next_cursor"] is None
    seen = [(p["order_id"], p["status"]) for p in first["items"] + second["items"]]
    assert seen == [(orders[2]["id"], "open"), (orders[1]["id"], "open"), (orders[0]["id"], "canceled")]
    assert [p["order_id"] for p in listed(client, secret_headers, status="canceled")] == [orders[0]["id"]]
    for bad in ({"status": "overdue"}, {"limit": 0}, {"limit": 10_000}, {"cursor": "not-a-cursor"}):
        r = client.get("/v1/promises", headers=secret_headers, params=bad)
        assert r.status_code in (400, 422) and "error" in r.json(), (bad, r.text)
    assert client.get("/v1/promises", headers=write_headers).status_code in (401, 403)
