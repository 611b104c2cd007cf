"""HEAD on every GET page of the portal answers as the GET does — same status and header fields — without a
body (RFC 9110 9.3.2: link checkers and uptime monitors ask with HEAD), signed in or out, found or not."""

from __future__ import annotations

import httpx
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient

from offerloop.portal import web as portal_web
from offerloop.workspaces.schemas import WorkspaceCreated

from .helpers import Mailer, ask_for_link, sign_in

# header fields that are per response by nature (a fresh form token cookie, the clock)
PER_RESPONSE = {"date", "set-cookie", "x-request-id"}


def get_routes(routes: list) -> set[str]:
    """The router's GET page paths; each must answer HEAD too."""
    found = {r.path for r in routes if isinstance(r, APIRoute) and "GET" in r.methods}
    assert all("HEAD" in r.methods for r in routes if isinstance(r, APIRoute) and "GET" in r.methods)
    return found


def same_as_get(client: TestClient, url: str, **params: str) -> tuple[int, httpx.Response]:
    """HEAD ``url`` right after GET: the same status and header fields (but the per-response ones), the
    GET's content length announced, and no body. The status and the GET are returned."""
    got = client.get(url, params=params, follow_redirects=False)
    head = client.head(url, params=params, follow_redirects=False)
    assert head.content == b"", url
    assert head.status_code == got.status_code, url
    strip = lambda r: sorted((k, v) for k, v in r.headers.multi_items() if k not in PER_RESPONSE)  # noqa: E731
    assert strip(head) == strip(got), url
    assert int(head.headers["content-length"]) == len(got.content), url
    return got.status_code, got


def test_every_portal_page_answers_head_like_get(
    client: TestClient, workspace: WorkspaceCreated, secret_headers, shop, mailer: Mailer
) -> None:
    ws = workspace.id
    paths = get_routes(portal_web.router.routes)
    assert paths == {
        "/p/{workspace}/login",
        "/p/{workspace}/auth",
        "/p/{workspace}",
        "/p/{workspace}/downloads/{artifact_id}/{fmt}",
        "/p/{workspace}/subscription",
        "/p/{workspace}/access",
        "/p/{workspace}/data",
    }  # fmt: skip  (a new page: add it below)
    # signed out: the sign-in pages, the confirm page (valid and not), and the pages that send to sign-in
    assert ask_for_link(client, ws, "ada@example.com").status_code == 200
    (link,) = mailer.links("ada@example.com")
    token = httpx.URL(link).params["token"]
    assert same_as_get(client, f"/p/{ws}/login")[0] == 200
    assert same_as_get(client, f"/p/{ws}/auth", token=token)[0] == 200
    assert same_as_get(client, f"/p/{ws}/auth", token="garbage")[0] == 401
    assert same_as_get(client, f"/p/{ws}/auth", token="A" * 500)[0] == 422
    for page in ("", "/subscription", "/access", "/data", "/downloads/art_x/pdf"):
        status, got = same_as_get(client, f"/p/{ws}{page}")
        assert (status, got.headers["location"]) == (303, f"/p/{ws}/login")
    assert same_as_get(client, "/p/nobody_here/login")[0] == 404
    assert same_as_get(client, "/p/bad%20id/login")[0] == 404

    # signed in: every page, a download in each format, another buyer's file and a bad format
    assert sign_in(client, ws, mailer, "ada@example.com").status_code == 303
    tasks = client.get(f"/v1/orders/{shop['ada']['launch-workbook']}", headers=secret_headers).json()[
        "fulfilment"
    ]
    art = next(t for t in tasks if t["component"] == "deliverable")["result"]["artifact_id"]
    for page in ("", "/subscription", "/access", "/data"):
        status, got = same_as_get(client, f"/p/{ws}{page}")
        assert status == 200 and got.headers["content-type"] == "text/html; charset=utf-8"
    assert same_as_get(client, f"/p/{ws}/subscription", done="cancel")[0] == 200
    for fmt in ("pdf", "html", "markdown"):
        status, got = same_as_get(client, f"/p/{ws}/downloads/{art}/{fmt}")
        assert status == 200 and got.headers["content-disposition"].startswith("attachment;")
        assert len(got.content) > 100
    bobs = client.get(f"/v1/orders/{shop['bob']['launch-workbook']}", headers=secret_headers).json()[
        "fulfilment"
    ]
    bobs_art = next(t for t in bobs if t["component"] == "deliverable")["result"]["artifact_id"]
    assert same_as_get(client, f"/p/{ws}/downloads/{bobs_art}/pdf")[0] == 404
    assert same_as_get(client, f"/p/{ws}/downloads/{art}/exe")[0] == 422
    # a POST-only path still refuses HEAD (nothing to GET there)
    assert client.head(f"/p/{ws}/logout").status_code == 405
