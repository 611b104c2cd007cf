"""Who may receive a buyer's web pushes. The write key is public (it sits in every page), so a subscription made
with it alone names a buyer only by the page's say-so: a visitor can subscribe their own endpoint and keys for
any user id and then read that buyer's pushes (titles, texts, personalised links). The in-app inbox asks for a
token minted by the creator's backend for exactly this reason; push subscriptions do not (yet)."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from tests.conftest import basic
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


@pytest.mark.xfail(
    strict=True,
    reason="open: POST /v1/push/subscriptions trusts the write key's userId; needs a buyer token (API change)",
)
def test_delivery_a_visitor_cannot_subscribe_to_another_buyers_pushes(
    db: Database, client: TestClient, workspace: WorkspaceCreated
) -> None:
    write = basic(workspace.write_key)
    assert client.post("/v1/identify", json={"userId": "ann"}, headers=write).status_code == 200
    eavesdropper = Running()
    try:
        r = client.post("/v1/push/subscriptions", headers=write,
                        json={"userId": "ann", "subscription": eavesdropper.subscription("mine", seed=9)})  # fmt: skip
        assert r.status_code in (201, 401, 403), r.text
        with db.read() as session:
            ann = identity_service.find_buyer(session=session, workspace_id=workspace.id, user_id="ann")[0]
        push_service.send(db, workspace_id=workspace.id, buyer_id=ann, payload={"title": "Your offer"}, ttl_s=60,
                          config=PUSH)  # fmt: skip
        assert eavesdropper.service.delivered == []
    finally:
        eavesdropper.close()
