"""Every step of a subscription is one event on the buyer record, named by the subscription's step number: two
steps dated the same millisecond are two events, and a step asked for twice (a retried request) is one."""

from __future__ import annotations

from datetime import datetime, timedelta

from fastapi.testclient import TestClient
from tests.checkout.test_checkout_flow import buy, pay, setup, subscription_of

from offerloop.checkout import service as checkout_service
from offerloop.db.uow import Database


def _active(client: TestClient, db: Database, secret_headers, write_headers) -> tuple[str, str]:
    """An active monthly subscription of ada's (its trial renewed into the first period) and that period's start."""
    setup(client, secret_headers, write_headers)
    order = buy(client, secret_headers, "membership-monthly")
    pay(client, secret_headers, order["id"])
    checkout_service.run_fulfilment(db=db)
    sid, _ = subscription_of(db, order)
    trial_end = client.get(f"/v1/subscriptions/{sid}", headers=secret_headers).json()["state"][
        "current_period_end"
    ]
    renewed = _act(client, secret_headers, sid, "renew", trial_end)
    assert renewed.status_code == 200, renewed.text
    return sid, renewed.json()["state"]["current_period_start"]


def _act(client: TestClient, secret_headers, sid: str, action: str, at: str):
    return client.post(
        f"/v1/subscriptions/{sid}/actions", headers=secret_headers, json={"action": action, "at": at}
    )


def _steps(client: TestClient, secret_headers) -> list[tuple[str, str]]:
    """(name, messageId) of ada's subscription events, oldest first."""
    buyer = client.get("/v1/buyers/lookup", headers=secret_headers, params={"user_id": "ada"}).json()["id"]
    r = client.get(f"/v1/buyers/{buyer}/events", headers=secret_headers, params={"limit": 100})
    assert r.status_code == 200, r.text
    return sorted(
        (e["message_id"], e["name"])
        for e in r.json()["items"]
        if (e["name"] or "").startswith("Subscription")
    )


def test_pause_resume_pause_in_the_same_millisecond_are_three_events(
    client: TestClient, db: Database, secret_headers, write_headers
) -> None:
    sid, start = _active(client, db, secret_headers, write_headers)
    at = datetime.fromisoformat(start.replace("Z", "+00:00")).replace(microsecond=100) + timedelta(days=1)
    steps = (
        ("pause", "paused", 0),
        ("resume", "active", 300),
        ("pause", "paused", 600),
    )  # µs: one millisecond
    for action, status, us in steps:
        r = _act(client, secret_headers, sid, action, (at + timedelta(microseconds=us)).isoformat())
        assert r.status_code == 200, r.text
        assert r.json()["status"] == status
    assert _steps(client, secret_headers) == [
        (f"{sid}-pause-step2", "Subscription Paused"),
        (f"{sid}-pause-step4", "Subscription Paused"),
        (f"{sid}-renew-step1", "Subscription Renewed"),
        (f"{sid}-resume-step3", "Subscription Resumed"),
        (f"{sid}-started", "Subscription Started"),
    ]


def test_a_step_asked_for_twice_is_recorded_once(
    client: TestClient, db: Database, secret_headers, write_headers
) -> None:
    sid, start = _active(client, db, secret_headers, write_headers)
    cancel = {"action": "cancel", "at": start, "at_period_end": True}
    first = client.post(f"/v1/subscriptions/{sid}/actions", headers=secret_headers, json=cancel)
    again = client.post(f"/v1/subscriptions/{sid}/actions", headers=secret_headers, json=cancel)  # retried
    assert (first.status_code, again.status_code) == (200, 200), again.text
    assert again.json() == first.json()
    # a pause asked for twice: the second is refused (it is paused already), and records nothing either
    assert _act(client, secret_headers, sid, "pause", start).status_code == 200
    refused = _act(client, secret_headers, sid, "pause", start)
    assert refused.status_code == 409 and refused.json()["error"]["code"] == "invalid_transition", (
        refused.text
    )
    assert _steps(client, secret_headers) == [
        (f"{sid}-cancel-step2", "Subscription Canceled"),
        (f"{sid}-pause-step3", "Subscription Paused"),
        (f"{sid}-renew-step1", "Subscription Renewed"),
        (f"{sid}-started", "Subscription Started"),
    ]
