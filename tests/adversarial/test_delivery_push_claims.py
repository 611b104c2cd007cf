"""Who may receive a buyer's web pushes. The write key is public (it sits in every page), so a subscription made
with it alone names a buyer only by the page's say-so: a visitor can subscribe their own endpoint and keys for
any user id and then read that buyer's pushes (titles, texts, personalised links). So a userId needs the secret
key, or a buyer token minted by the creator's backend (the in-app inbox's token), as the inbox does."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from tests.conftest import basic, bearer, tampered
from tests.delivery.push.pushservice import Running

from offerloop.config import Settings
from offerloop.db.uow import Database
from offerloop.delivery.push import service as push_service
from offerloop.delivery.push.service import PushConfig
from offerloop.identity import service as identity_service
from offerloop.workspaces.schemas import WorkspaceCreated

PUSH = PushConfig(subject="mailto:creator@example.com", allow_private=True, timeout_s=5.0)


@pytest.fixture
def settings(database_url: str) -> Settings:
    return Settings(
        environment="test", database_url=database_url, log_json=True, log_level="WARNING",
        webhook_allow_private=True,
    )  # fmt: skip


def test_delivery_a_visitor_cannot_subscribe_to_another_buyers_pushes(
    db: Database, client: TestClient, workspace: WorkspaceCreated
) -> None:
    write = basic(workspace.write_key)
    assert client.post("/v1/identify", json={"userId": "ann"}, headers=write).status_code == 200
    eavesdropper = Running()
    try:
        r = client.post("/v1/push/subscriptions", headers=write,
                        json={"userId": "ann", "subscription": eavesdropper.subscription("mine", seed=9)})  # fmt: skip
        assert (r.status_code, r.json()["error"]["code"]) == (403, "buyer_token_required"), r.text
        with db.read() as session:
            ann = identity_service.find_buyer(session=session, workspace_id=workspace.id, user_id="ann")[0]
        push_service.send(db, workspace_id=workspace.id, buyer_id=ann, payload={"title": "Your offer"}, ttl_s=60,
                          config=PUSH)  # fmt: skip
        assert eavesdropper.service.delivered == []
    finally:
        eavesdropper.close()


def test_delivery_a_buyer_token_subscribes_its_own_buyer_and_no_other(
    db: Database, client: TestClient, workspace: WorkspaceCreated, other_workspace: WorkspaceCreated
) -> None:
    write, secret = basic(workspace.write_key), bearer(workspace.secret_key)
    for user in ("ann", "bo"):
        assert client.post("/v1/identify", json={"userId": user}, headers=write).status_code == 200
    minted = client.post("/v1/inbox/tokens", json={"user_id": "ann", "ttl_s": 600}, headers=secret)
    assert minted.status_code == 201, minted.text
    token = minted.json()["token"]
    browser = Running()
    try:
        sub = browser.subscription("ann-phone", seed=4)
        both = client.post(
            "/v1/push/subscriptions",
            headers=write,
            json={"token": token, "userId": "bo", "subscription": sub},
        )
        assert both.status_code == 422  # the token names the buyer: no id beside it
        r = client.post("/v1/push/subscriptions", headers=write, json={"token": token, "subscription": sub})
        assert r.status_code == 201, r.text
        assert (r.json()["user_id"], r.json()["resolved"]) == ("ann", True)
        foreign = client.post("/v1/push/subscriptions", headers=basic(other_workspace.write_key),
                              json={"token": token, "subscription": browser.subscription("x", seed=5)})  # fmt: skip
        assert (foreign.status_code, foreign.json()["error"]["code"]) == (403, "invalid_link")
        forged = client.post("/v1/push/subscriptions", headers=write,
                             json={"token": tampered(token), "subscription": browser.subscription("y", seed=6)})  # fmt: skip
        assert (forged.status_code, forged.json()["error"]["code"]) == (403, "invalid_link")
        with db.read() as session:
            ann, bo = (
                identity_service.find_buyer(session=session, workspace_id=workspace.id, user_id=u)[0]
                for u in ("ann", "bo")
            )
        push_service.send(
            db, workspace_id=workspace.id, buyer_id=bo, payload={"title": "Bo's"}, ttl_s=60, config=PUSH
        )
        assert browser.service.delivered == []
        push_service.send(
            db, workspace_id=workspace.id, buyer_id=ann, payload={"title": "Ann's"}, ttl_s=60, config=PUSH
        )
        assert len(browser.service.delivered) == 1
    finally:
        browser.close()


def test_delivery_an_anonymous_device_merged_into_a_buyer_by_a_write_key_identify_gets_none_of_its_pushes(
    db: Database, client: TestClient, workspace: WorkspaceCreated
) -> None:
    """The write key may link an anonymous id to any userId (Segment's model: the page says who signed in). A
    visitor subscribes anonymously, then claims Ann's userId: the device is Ann's record now, but not vouched for."""
    write = basic(workspace.write_key)
    assert client.post("/v1/identify", json={"userId": "ann"}, headers=write).status_code == 200
    eavesdropper = Running()
    try:
        r = client.post("/v1/push/subscriptions", headers=write,
                        json={"anonymousId": "evil", "subscription": eavesdropper.subscription("mine", seed=9)})  # fmt: skip
        assert (r.status_code, r.json()["verified"]) == (201, False), r.text
        claim = client.post("/v1/identify", json={"userId": "ann", "anonymousId": "evil"}, headers=write)
        assert claim.status_code == 200
        with db.read() as session:
            ann = identity_service.find_buyer(session=session, workspace_id=workspace.id, user_id="ann")[0]
            # the claim made the device Ann's
            assert (
                identity_service.find_buyer(session=session, workspace_id=workspace.id, anonymous_id="evil")[
                    0
                ]
                == ann
            )
        sent = push_service.send(db, workspace_id=workspace.id, buyer_id=ann, payload={"title": "Your offer"},
                                 ttl_s=60, config=PUSH)  # fmt: skip
        assert (sent, eavesdropper.service.delivered) == ([], [])
    finally:
        eavesdropper.close()
