"""A push subscription the creator's backend vouched for (secret key) under an anonymousId names a device, not a
person: the write key, which is public, may link that anonymousId to any userId (Segment's identify). Before, such
a subscription still unresolved (the anonymousId had sent nothing yet) then received every push of the userId it
was linked to, while the same subscription made after the visitor's first event (resolved) received none: a
hostile visitor whose anonymousId the backend vouched for read another buyer's pushes by claiming their userId."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient
from tests.adversarial.test_delivery_push_claims import PUSH, settings  # noqa: F401 (the fixture)
from tests.conftest import basic, bearer
from tests.delivery.push.pushservice import Running

from offerloop.db.uow import Database
from offerloop.delivery.push import service as push_service
from offerloop.identity import service as identity_service
from offerloop.workspaces.schemas import WorkspaceCreated


@pytest.mark.parametrize("seen_before", [False, True], ids=["unresolved", "resolved"])
def test_found_a_vouched_anonymous_device_claiming_a_users_id_gets_none_of_their_pushes(
    db: Database, client: TestClient, workspace: WorkspaceCreated, seen_before: bool
) -> None:
    write, secret = basic(workspace.write_key), bearer(workspace.secret_key)
    assert client.post("/v1/identify", json={"userId": "ann"}, headers=write).status_code == 200
    if seen_before:
        seen = client.post("/v1/track", json={"anonymousId": "evil", "event": "Viewed"}, headers=write)
        assert seen.status_code == 200
    eavesdropper = Running()
    try:
        r = client.post("/v1/push/subscriptions", headers=secret,
                        json={"anonymousId": "evil", "subscription": eavesdropper.subscription("mine", seed=9)})  # fmt: skip
        assert (r.status_code, r.json()["verified"], r.json()["resolved"]) == (201, True, seen_before), r.text
        claim = client.post("/v1/identify", json={"userId": "ann", "anonymousId": "evil"}, headers=write)
        assert claim.status_code == 200
        with db.read() as session:
            ann = identity_service.find_buyer(session=session, workspace_id=workspace.id, user_id="ann")[0]
        sent = push_service.send(db, workspace_id=workspace.id, buyer_id=ann, payload={"title": "Your receipt"},
                                 ttl_s=60, config=PUSH)  # fmt: skip
        assert (sent, eavesdropper.service.delivered) == ([], [])
    finally:
        eavesdropper.close()
