"""HEAD on every GET page of the hosted pages answers as the GET does — same status and header fields —
without a body (RFC 9110 9.3.2: link checkers and uptime monitors ask with HEAD), found or not."""

from __future__ import annotations

from fastapi.testclient import TestClient
from tests.portal.test_head import get_routes, same_as_get
from tests.storefront.helpers import form_of, setup

from offerloop.storefront import web as storefront_web
from offerloop.workspaces.schemas import WorkspaceCreated


def test_every_hosted_page_answers_head_like_get(
    client: TestClient, workspace: WorkspaceCreated, secret_headers: dict[str, str]
) -> None:
    setup(client, secret_headers)
    ws = workspace.id
    assert get_routes(storefront_web.router.routes) == {
        "/o/{workspace}/{offer}",
        "/o/{workspace}/{offer}/buy",
        "/o/{workspace}/thanks/{token}",
        "/o/{workspace}/thanks/{token}/status",
    }  # fmt: skip  (a new page: add it below)
    for offer in ("starter-kit", "playbook"):
        for page in ("", "/buy"):
            status, got = same_as_get(client, f"/o/{ws}/{offer}{page}")
            assert status == 200 and got.headers["content-type"] == "text/html; charset=utf-8"
    assert same_as_get(client, f"/o/{ws}/starter-kit", currency="eur")[0] == 200
    page = client.get(f"/o/{ws}/starter-kit")
    bought = client.post(f"/o/{ws}/starter-kit/buy", data={**form_of(page.text), "email": "hal@example.com"},
                         follow_redirects=False)  # fmt: skip
    assert bought.status_code == 303
    thanks = bought.headers["location"]
    assert same_as_get(client, thanks)[0] == 200
    assert same_as_get(client, f"{thanks}/status")[0] == 200
    for missing in (f"/o/{ws}/nope", f"/o/{ws}/retired/buy", f"/o/{ws}/thanks/{'A' * 43}",
                    f"/o/{ws}/thanks/{'A' * 43}/status", "/o/ws_nope/starter-kit"):  # fmt: skip
        assert same_as_get(client, missing)[0] == 404, missing
    # HEAD on the checkout link shows the form as GET does: it never buys
    orders = client.get("/v1/orders", headers=secret_headers).json()["items"]
    assert client.head(f"/o/{ws}/starter-kit/buy").status_code == 200
    assert client.get("/v1/orders", headers=secret_headers).json()["items"] == orders


def test_a_head_logs_no_decision_and_sets_no_pick(
    client: TestClient, workspace: WorkspaceCreated, secret_headers: dict[str, str], db
) -> None:
    """Nobody sees a HEAD's page: it must not log an impression (its reward would teach the policy that the
    offer was ignored), nor keep a pick for the visitor; the GET after it decides and logs as usual."""
    from sqlalchemy import func, select

    from offerloop.models import Decision

    def logged() -> int:
        with db.read() as session:
            return int(session.scalar(select(func.count()).select_from(Decision)) or 0)

    setup(client, secret_headers)
    before = logged()
    head = client.head(f"/o/{workspace.id}/starter-kit")
    assert (head.status_code, head.content, logged()) == (200, b"", before)
    assert not any(name.startswith("ol_pick_") for name in client.cookies)
    assert client.get(f"/o/{workspace.id}/starter-kit").status_code == 200
    assert logged() == before + 1
    assert any(name.startswith("ol_pick_") for name in client.cookies)
