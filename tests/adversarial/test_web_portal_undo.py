"""A portal session opened through a merge that is later undone. Lee's device (anonymous, lee@example.com) was
merged into Wendy's account by an identify that turned out wrong; while merged, Lee asked for a sign-in link with
his own address and got a session — as the merged buyer, Wendy. The creator undoes the merge: Lee's session must
no longer open Wendy's portal (her purchases, her data export, her subscription)."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient
from tests.conftest import msg
from tests.portal.helpers import Mailer, ask_for_link, post_token, sign_in

from offerloop.config import Settings
from offerloop.db.uow import Database
from offerloop.workspaces.schemas import WorkspaceCreated


@pytest.fixture
def mailer(db: Database, settings: Settings, tmp_path: Path) -> Mailer:
    settings.maildir_path = str(tmp_path / "maildir")
    return Mailer(db, settings)


def test_web_a_portal_session_opened_through_a_merge_ends_when_the_merge_is_undone(
    client: TestClient, workspace: WorkspaceCreated, secret_headers, write_headers, mailer: Mailer
) -> None:
    def identify(**fields: object) -> None:
        r = client.post("/v1/identify", headers=write_headers, json=msg(**fields))
        assert r.status_code == 200, r.text

    identify(userId="wendy", traits={"email": "wendy@example.com", "first_name": "Wendy"}, messageId="w1")
    identify(anonymousId="lee-phone", traits={"email": "lee@example.com"}, messageId="l1")
    identify(anonymousId="lee-phone", userId="wendy", messageId="wrong")  # the wrong merge
    (merge,) = client.get("/v1/merges", headers=secret_headers).json()["items"]
    signed = sign_in(client, workspace.id, mailer, "lee@example.com")
    assert signed.status_code == 303, signed.text
    assert client.get(f"/p/{workspace.id}").status_code == 200  # merged: Lee is Wendy's buyer for now
    undone = client.post(f"/v1/merges/{merge['id']}/undo", headers=secret_headers)
    assert undone.status_code == 200, undone.text
    page = client.get(f"/p/{workspace.id}/data", follow_redirects=False)
    assert page.status_code == 303 or "wendy@example.com" not in page.text
    # Lee signs in again with his address and reaches his own record, not Wendy's.
    signed = sign_in(client, workspace.id, mailer, "lee@example.com")
    assert signed.status_code == 303, signed.text
    mine = client.get(f"/p/{workspace.id}/data")
    assert mine.status_code == 200 and "lee@example.com" in mine.text and "wendy@example.com" not in mine.text


def test_web_a_link_asked_for_through_a_merge_is_refused_once_the_merge_is_undone(
    client: TestClient, workspace: WorkspaceCreated, secret_headers, write_headers, mailer: Mailer
) -> None:
    for fields in (
        {"userId": "wendy", "traits": {"email": "wendy@example.com"}, "messageId": "w1"},
        {"anonymousId": "lee-phone", "traits": {"email": "lee@example.com"}, "messageId": "l1"},
        {"anonymousId": "lee-phone", "userId": "wendy", "messageId": "wrong"},
    ):
        assert client.post("/v1/identify", headers=write_headers, json=msg(**fields)).status_code == 200
    (merge,) = client.get("/v1/merges", headers=secret_headers).json()["items"]
    assert ask_for_link(client, workspace.id, "lee@example.com").status_code == 200
    (link,) = mailer.links("lee@example.com")
    assert client.post(f"/v1/merges/{merge['id']}/undo", headers=secret_headers).status_code == 200
    url = httpx.URL(link)
    assert client.get(f"{url.path}?{url.query.decode()}").status_code == 401  # the confirm page refuses it
    assert post_token(client, workspace.id, url.params["token"]).status_code == 401  # and so does the sign-in
    assert client.get(f"/p/{workspace.id}", follow_redirects=False).status_code == 303  # not signed in
