"""Web push against a real push service on loopback that verifies the VAPID JWT and decrypts the payload."""

from __future__ import annotations

import json
from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from tests.conftest import basic, bearer
from tests.delivery.push.pushservice import Running, unb64

from offerloop.db.uow import Database
from offerloop.delivery.push import service
from offerloop.delivery.push.service import PushConfig
from offerloop.identity import service as identity_service
from offerloop.models.delivery_channels import PushSubscription
from offerloop.workspaces.schemas import WorkspaceCreated

LOOPBACK = PushConfig(subject="mailto:creator@example.com", allow_private=True, timeout_s=5.0)


def identify(client: TestClient, headers: dict[str, str], **ids: str) -> None:
    r = client.post("/v1/identify", json={**ids, "traits": {"name": "Jo"}}, headers=headers)
    assert r.status_code == 200, r.text


def subscribe(
    client: TestClient, headers: dict[str, str], subscription: dict[str, Any], **ids: str
) -> dict[str, Any]:
    r = client.post("/v1/push/subscriptions", json={**ids, "subscription": subscription}, headers=headers)
    assert r.status_code == 201, r.text
    return dict(r.json())


def buyer_of(db: Database, ws: str, user_id: str) -> str:
    with db.read() as session:
        return identity_service.find_buyer(session=session, workspace_id=ws, user_id=user_id)[0]


def send(db: Database, ws: str, buyer_id: str, payload: dict[str, Any], **kw: Any) -> list[Any]:
    kw.setdefault("ttl_s", 3600)
    return service.send(db, workspace_id=ws, buyer_id=buyer_id, payload=payload, config=LOOPBACK, **kw)


def test_vapid_key_is_made_once_per_workspace_and_only_its_public_half_is_shown(
    client: TestClient,
    workspace: WorkspaceCreated,
    other_workspace: WorkspaceCreated,
    write_headers: dict[str, str],
) -> None:
    first = client.get("/v1/push/vapid", headers=write_headers)
    assert first.status_code == 200 and set(first.json()) == {"public_key"}
    raw = unb64(first.json()["public_key"])
    assert len(raw) == 65 and raw[0] == 4
    assert client.get("/v1/push/vapid", headers=bearer(workspace.secret_key)).json() == first.json()
    assert client.get("/v1/push/vapid", headers=basic(other_workspace.write_key)).json() != first.json()
    assert client.get("/v1/push/vapid").status_code == 401


def test_a_push_is_signed_encrypted_and_decrypted_by_the_push_service(
    db: Database,
    client: TestClient,
    workspace: WorkspaceCreated,
    secret_headers: dict[str, str],
    write_headers: dict[str, str],
    push_service: Running,
) -> None:
    identify(client, write_headers, userId="u_1")
    # the browser subscribes with the public write key and a buyer token the creator's backend minted
    minted = client.post("/v1/inbox/tokens", json={"user_id": "u_1", "ttl_s": 600}, headers=secret_headers)
    assert minted.status_code == 201, minted.text
    stored = subscribe(
        client, write_headers, push_service.subscription("phone", seed=1), token=minted.json()["token"]
    )
    assert (stored["user_id"], stored["anonymous_id"], stored["resolved"]) == ("u_1", None, True)
    buyer = buyer_of(db, workspace.id, "u_1")
    payload = {"title": "Your workbook is ready", "body": "Café ☕ — open it", "url": "https://creator.example/w/1",
               "tag": "deliverable", "data": {"n": [1, 2.5, None]}}  # fmt: skip

    results = send(db, workspace.id, buyer, payload, urgency="high", topic="workbook-1")

    assert [(r.subscription_id, r.status, r.status_code, r.error) for r in results] == [
        (stored["id"], "sent", 201, None)
    ]
    assert push_service.service.errors == []
    [got] = push_service.service.delivered
    assert json.loads(got.plaintext) == payload
    assert got.plaintext == json.dumps(payload, separators=(",", ":"), ensure_ascii=False).encode()
    assert got.key == client.get("/v1/push/vapid", headers=write_headers).json()["public_key"]
    assert got.claims["sub"] == "mailto:creator@example.com"
    assert (got.headers["ttl"], got.headers["urgency"], got.headers["topic"]) == (
        "3600",
        "high",
        "workbook-1",
    )
    with db.read() as session:
        row = session.scalars(select(PushSubscription).where(PushSubscription.id == stored["id"])).one()
        assert row.buyer_id == buyer and row.last_sent_at is not None


def test_a_subscription_for_an_unknown_id_is_resolved_when_the_buyer_appears(
    db: Database,
    client: TestClient,
    workspace: WorkspaceCreated,
    write_headers: dict[str, str],
    push_service: Running,
) -> None:
    early = subscribe(
        client, write_headers, push_service.subscription("laptop", seed=2), anonymousId="anon-9"
    )
    assert (early["resolved"], early["verified"]) == (False, False)
    r = client.post("/v1/track", json={"anonymousId": "anon-9", "event": "Viewed"}, headers=write_headers)
    assert r.status_code == 200, r.text
    with db.read() as session:
        buyer = identity_service.find_buyer(
            session=session, workspace_id=workspace.id, anonymous_id="anon-9"
        )[0]
    [result] = send(db, workspace.id, buyer, {"title": "Hello"})
    assert (result.subscription_id, result.status) == (early["id"], "sent")
    assert [json.loads(d.plaintext) for d in push_service.service.delivered] == [{"title": "Hello"}]
    with db.read() as session:
        assert (
            session.scalars(select(PushSubscription.buyer_id).where(PushSubscription.id == early["id"])).one()
            == buyer
        )


def test_an_anonymous_subscription_stops_at_sign_in_until_registered_again_with_a_buyer_token(
    db: Database,
    client: TestClient,
    workspace: WorkspaceCreated,
    write_headers: dict[str, str],
    secret_headers: dict[str, str],
    push_service: Running,
) -> None:
    """A write-key identify can merge any anonymous device into any userId: a known buyer's pushes go only to
    subscriptions named by the secret key or a buyer token."""
    device = push_service.subscription("phone", seed=4)
    early = subscribe(client, write_headers, device, anonymousId="anon-4")
    identify(client, write_headers, userId="u_4", anonymousId="anon-4")
    buyer = buyer_of(db, workspace.id, "u_4")
    assert send(db, workspace.id, buyer, {"title": "Private"}) == []
    token = client.post("/v1/inbox/tokens", json={"user_id": "u_4", "ttl_s": 600}, headers=secret_headers)
    assert token.status_code == 201, token.text
    again = subscribe(client, write_headers, device, token=token.json()["token"])
    assert (again["id"], again["verified"], again["user_id"]) == (early["id"], True, "u_4")
    [result] = send(db, workspace.id, buyer, {"title": "Private"})
    assert (result.subscription_id, result.status) == (early["id"], "sent")
    assert [json.loads(d.plaintext) for d in push_service.service.delivered] == [{"title": "Private"}]


def test_410_from_the_push_service_deletes_the_subscription(
    db: Database,
    client: TestClient,
    workspace: WorkspaceCreated,
    secret_headers: dict[str, str],
    write_headers: dict[str, str],
    push_service: Running,
) -> None:
    identify(client, write_headers, userId="u_2")
    stored = subscribe(client, secret_headers, push_service.subscription("old", seed=3), userId="u_2")
    buyer = buyer_of(db, workspace.id, "u_2")
    push_service.service.status = 410
    [gone] = send(db, workspace.id, buyer, {"title": "x"})
    assert (gone.subscription_id, gone.status, gone.status_code) == (stored["id"], "gone", 410)
    assert send(db, workspace.id, buyer, {"title": "x"}) == []
    assert len(push_service.service.delivered) == 1  # the push service got it once, then said it was gone


def test_the_same_endpoint_twice_is_one_subscription_and_delete_forgets_it(
    db: Database,
    client: TestClient,
    workspace: WorkspaceCreated,
    secret_headers: dict[str, str],
    write_headers: dict[str, str],
    push_service: Running,
) -> None:
    sub = push_service.subscription("tab", seed=4)
    first = subscribe(client, write_headers, sub, anonymousId="a-1")
    again = subscribe(client, secret_headers, sub, userId="u_4")  # the creator's backend names the buyer
    assert again["id"] == first["id"] and again["user_id"] == "u_4"
    r = client.request(
        "DELETE", "/v1/push/subscriptions", json={"endpoint": sub["endpoint"]}, headers=write_headers
    )
    assert r.json() == {"deleted": True}
    r = client.request(
        "DELETE", "/v1/push/subscriptions", json={"endpoint": sub["endpoint"]}, headers=write_headers
    )
    assert r.json() == {"deleted": False}


def test_another_workspace_cannot_reach_a_subscription(
    db: Database, client: TestClient, workspace: WorkspaceCreated, other_workspace: WorkspaceCreated,
    secret_headers: dict[str, str], write_headers: dict[str, str], push_service: Running,
) -> None:  # fmt: skip
    sub = push_service.subscription("mine", seed=5)
    subscribe(client, secret_headers, sub, userId="u_5")
    other = basic(other_workspace.write_key)
    r = client.request("DELETE", "/v1/push/subscriptions", json={"endpoint": sub["endpoint"]}, headers=other)
    assert r.json() == {"deleted": False}
    with db.read() as session:
        assert (
            len(
                session.scalars(
                    select(PushSubscription).where(PushSubscription.workspace_id == workspace.id)
                ).all()
            )
            == 1
        )
    r = client.post(
        "/v1/push/send",
        json={"buyer_id": "byr_nope", "payload": {}},
        headers=bearer(other_workspace.secret_key),
    )
    assert (r.status_code, r.json()["error"]["code"]) == (404, "buyer_not_found")


GOOD_KEYS = {
    "p256dh": "BNcRdreALRFXTkOOUHK1EtK2wtaz5Ry4YfYCA_0QTpQtUbVlUls0VJXg7A8u-Ts1XbjhazAkj7I99e8QcYP7DkM",
    "auth": "tBHItJI5svbpez7KI4CCXg",
}


@pytest.mark.parametrize(
    "body",
    [
        {}, {"userId": "u"}, {"subscription": {"endpoint": "https://push.example/x", "keys": GOOD_KEYS}},
        {"anonymousId": "", "subscription": {"endpoint": "https://push.example/x", "keys": GOOD_KEYS}},
        {"anonymousId": "u", "subscription": {"endpoint": "https://push.example/x"}},
        {"anonymousId": "u", "subscription": {"endpoint": "https://push.example/x", "keys": {"p256dh": "abc", "auth": GOOD_KEYS["auth"]}}},
        {"anonymousId": "u", "subscription": {"endpoint": "https://push.example/x", "keys": {**GOOD_KEYS, "auth": "AAAA"}}},
        {"anonymousId": "u", "subscription": {"endpoint": "https://push.example/x", "keys": {**GOOD_KEYS, "p256dh": "B" + "A" * 86}}},
        {"anonymousId": "u", "subscription": {"endpoint": "https://push.example/x", "keys": {**GOOD_KEYS, "auth": "!!!"}}},
        {"anonymousId": "u", "subscription": {"endpoint": "ftp://push.example/x", "keys": GOOD_KEYS}},
        {"anonymousId": "u", "subscription": {"endpoint": "https://u:p@push.example/x", "keys": GOOD_KEYS}},
        {"anonymousId": "u", "subscription": {"endpoint": "https://push.example/" + "x" * 3000, "keys": GOOD_KEYS}},
        {"anonymousId": "u", "subscription": "nope"}, {"userId": ["u"], "subscription": {}}, {"userId": "u", "extra": 1},
    ],
)  # fmt: skip
def test_bad_subscription_bodies_are_422(
    client: TestClient, write_headers: dict[str, str], body: dict[str, Any]
) -> None:
    r = client.post("/v1/push/subscriptions", json=body, headers=write_headers)
    assert r.status_code == 422, r.text
    assert r.json()["error"]["code"] in {"validation_failed", "invalid_push_subscription"}
    raw = client.post(
        "/v1/push/subscriptions",
        content=b"{garbage",
        headers={**write_headers, "Content-Type": "application/json"},
    )
    assert raw.status_code == 422


def test_strict_settings_refuse_plain_http_and_private_push_endpoints(
    db: Database, database_url: str, workspace: WorkspaceCreated
) -> None:
    from offerloop.api import create_app
    from offerloop.config import Settings

    strict = Settings(environment="test", database_url=database_url, log_level="WARNING")
    with TestClient(create_app(strict, db=db), raise_server_exceptions=False) as c:
        for endpoint in [
            "http://push.example/x",
            "https://127.0.0.1/x",
            "https://10.0.0.2/x",
            "https://localhost/x",
        ]:
            r = c.post("/v1/push/subscriptions", json={"anonymousId": "u", "subscription": {"endpoint": endpoint, "keys": GOOD_KEYS}},
                       headers=basic(workspace.write_key))  # fmt: skip
            assert (r.status_code, r.json()["error"]["code"]) == (422, "invalid_push_subscription"), endpoint
        ok = c.post("/v1/push/subscriptions", json={"anonymousId": "u", "subscription": {"endpoint": "https://push.example/x", "keys": GOOD_KEYS}},
                    headers=basic(workspace.write_key))  # fmt: skip
        assert ok.status_code == 201


def test_payload_limits_and_send_validation(
    db: Database,
    client: TestClient,
    workspace: WorkspaceCreated,
    secret_headers: dict[str, str],
    write_headers: dict[str, str],
) -> None:
    identify(client, write_headers, userId="u_7")
    buyer = buyer_of(db, workspace.id, "u_7")
    big = client.post(
        "/v1/push/send", json={"buyer_id": buyer, "payload": {"b": "x" * 5000}}, headers=secret_headers
    )
    assert (big.status_code, big.json()["error"]["code"]) == (413, "push_payload_too_large")
    for body in ({"buyer_id": buyer, "payload": {}, "urgency": "asap"}, {"buyer_id": buyer, "payload": {}, "topic": "no spaces"},
                 {"buyer_id": buyer, "payload": {}, "ttl_s": -1}, {"buyer_id": buyer, "payload": []}):  # fmt: skip
        assert client.post("/v1/push/send", json=body, headers=secret_headers).status_code == 422, body
    assert (
        client.post(
            "/v1/push/send", json={"buyer_id": buyer, "payload": {}}, headers=write_headers
        ).status_code
        == 403
    )
    assert (
        client.post("/v1/push/send", json={"buyer_id": buyer, "payload": {}}, headers=secret_headers).json()
        == []
    )


def test_service_worker_and_helper_are_served_by_offerloop(client: TestClient) -> None:
    sw = client.get("/v1/push/sw.js")
    assert sw.status_code == 200 and sw.headers["content-type"].startswith("text/javascript")
    assert sw.headers["service-worker-allowed"] == "/"
    text = sw.text
    assert 'addEventListener("push"' in text and "showNotification" in text and "notificationclick" in text
    assert '"Push Notification Clicked"' in text and 'new URL("../track", self.location.href)' in text
    helper = client.get("/v1/push/subscribe.js")
    assert helper.status_code == 200 and helper.headers["content-type"].startswith("text/javascript")
    assert "pushManager.subscribe" in helper.text and "applicationServerKey" in helper.text
    assert (
        "importScripts" not in text and "fetch(new URL(path, BASE)" in helper.text
    )  # loads nothing from elsewhere


def test_vapid_subject_comes_from_mail_from_or_the_public_url() -> None:
    from offerloop.config import Settings

    assert (
        service.vapid_subject(Settings(public_url="https://offers.example.com"))
        == "https://offers.example.com"
    )
    assert service.vapid_subject(Settings(public_url="http://127.0.0.1:8000")) == "mailto:push@127.0.0.1"

    class WithMail:
        mail_from = "Rowan <rowan@creator.example>"
        public_url = "https://offers.example.com"

    assert service.vapid_subject(WithMail()) == "mailto:rowan@creator.example"
