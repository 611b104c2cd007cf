"""A trialing subscription set to cancel at the end of its trial can be resumed (the cancel withdrawn) while
the trial runs, over the HTTP API; once the trial has ended it cannot, and the trial's end cancels it."""

from __future__ import annotations

from datetime import datetime, timedelta

from fastapi.testclient import TestClient
from tests.checkout.test_checkout_flow import access_at, buy, pay, setup, subscription_of

from offerloop.checkout import service as checkout_service
from offerloop.db.uow import Database


def _trial(client: TestClient, db: Database, secret_headers, write_headers) -> tuple[dict, str, datetime]:
    setup(client, secret_headers, write_headers)
    order = buy(client, secret_headers, "membership-monthly")
    pay(client, secret_headers, order["id"])
    checkout_service.run_fulfilment(db=db)
    sid, status = subscription_of(db, order)
    assert status == "trialing"
    end = client.get(f"/v1/subscriptions/{sid}", headers=secret_headers).json()["state"]["current_period_end"]
    return order, sid, datetime.fromisoformat(end.replace("Z", "+00:00"))


def _act(client: TestClient, secret_headers, sid: str, action: str, at: datetime, **extra):
    return client.post(f"/v1/subscriptions/{sid}/actions", headers=secret_headers,
                       json={"action": action, "at": at.isoformat(), **extra})  # fmt: skip


def _events(client: TestClient, secret_headers) -> list[str]:
    buyer = client.get("/v1/buyers/lookup", headers=secret_headers, params={"user_id": "ada"}).json()["id"]
    items = client.get(f"/v1/buyers/{buyer}/events", headers=secret_headers).json()["items"]
    return [e["name"] for e in items if (e["name"] or "").startswith("Subscription")]


def test_a_trial_set_to_cancel_is_resumed_before_it_ends_and_then_renews(
    client: TestClient, db: Database, secret_headers, write_headers
) -> None:
    order, sid, trial_end = _trial(client, db, secret_headers, write_headers)
    canceled = _act(client, secret_headers, sid, "cancel", trial_end - timedelta(days=3), at_period_end=True)
    assert canceled.status_code == 200, canceled.text
    assert (canceled.json()["status"], canceled.json()["state"]["cancel_at_period_end"]) == ("trialing", True)

    resumed = _act(client, secret_headers, sid, "resume", trial_end - timedelta(seconds=1))
    assert resumed.status_code == 200, resumed.text
    body = resumed.json()
    assert (body["status"], body["state"]["cancel_at_period_end"]) == ("trialing", False)
    assert body["state"]["current_period_end"] == canceled.json()["state"]["current_period_end"]  # same trial
    assert sorted(_events(client, secret_headers)) == [
        "Subscription Canceled", "Subscription Resumed", "Subscription Started",
    ]  # fmt: skip
    # nothing left to withdraw: a second resume is refused, and changes nothing
    again = _act(client, secret_headers, sid, "resume", trial_end - timedelta(seconds=1))
    assert again.status_code == 409 and again.json()["error"]["code"] == "invalid_transition"
    # the trial's end now starts the first paid period instead of canceling
    renewed = _act(client, secret_headers, sid, "renew", trial_end)
    assert renewed.status_code == 200, renewed.text
    assert renewed.json()["status"] == "active"
    assert access_at(db, order, (trial_end + timedelta(days=1)).isoformat())


def test_a_trial_set_to_cancel_cannot_be_resumed_once_it_has_ended(
    client: TestClient, db: Database, secret_headers, write_headers
) -> None:
    order, sid, trial_end = _trial(client, db, secret_headers, write_headers)
    assert (
        _act(
            client, secret_headers, sid, "cancel", trial_end - timedelta(days=1), at_period_end=True
        ).status_code
        == 200
    )
    refused = _act(client, secret_headers, sid, "resume", trial_end)
    assert refused.status_code == 409, refused.text
    assert refused.json()["error"]["code"] == "invalid_transition"
    assert "the trial ended at" in refused.json()["error"]["message"]
    # dated after the period's end (the trial's) while that is still ahead: refused before the state machine
    refused = _act(client, secret_headers, sid, "resume", trial_end + timedelta(days=2))
    assert refused.status_code == 422 and refused.json()["error"]["details"]["field"] == "at", refused.text
    after = client.get(f"/v1/subscriptions/{sid}", headers=secret_headers).json()
    assert (after["status"], after["state"]["cancel_at_period_end"]) == ("trialing", True)
    ended = _act(client, secret_headers, sid, "renew", trial_end)
    assert ended.status_code == 200 and ended.json()["status"] == "canceled"
    assert not access_at(db, order, (trial_end + timedelta(days=1)).isoformat())
