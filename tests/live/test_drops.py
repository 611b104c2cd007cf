"""Live drops over HTTP (in-process app, real database): open/close/status, the overlay page and its assets,
the short link to checkout, and hostile input answered with 404/409/422, never 500."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from offerloop.api.app import create_app
from offerloop.models import AuditEntry
from offerloop.workspaces.schemas import WorkspaceCreated

CATALOG = """\
offers:
  - key: print
    kind: drop
    title: "Limited print"
    description: "Signed, numbered"
    prices: {USD: 4900, EUR: 4500}
    inventory: 3
    per_buyer_limit: 1
    opens_at: "2990-01-01T00:00:00Z"
    closes_at: "2999-01-01T00:00:00Z"
    variants:
      - {key: early, title: "Limited print (early bird)", price: {USD: 3900, EUR: 3500}}
  - key: old
    kind: drop
    title: "Last year's print"
    prices: {USD: 4900}
    inventory: 3
    opens_at: "2020-01-01T00:00:00Z"
    closes_at: "2021-01-01T00:00:00Z"
  - key: unsigned
    kind: drop
    title: "Not yet"
    prices: {USD: 100}
    inventory: 1
    opens_at: "2990-01-01T00:00:00Z"
    closes_at: "2999-01-01T00:00:00Z"
  - key: book
    kind: product
    title: "Book"
    prices: {USD: 900}
"""


@pytest.fixture
def drop(client: TestClient, secret_headers: dict[str, str]) -> None:
    r = client.put("/v1/offers/catalog", headers=secret_headers, json={"text": CATALOG})
    assert r.status_code == 200, r.text
    for key in ("print", "old"):
        assert client.post(f"/v1/offers/{key}/signoff", headers=secret_headers).status_code == 200


def post(client: TestClient, headers: dict[str, str], path: str) -> tuple[int, Any]:
    r = client.post(path, headers=headers)
    return r.status_code, r.json()


def test_open_close_are_idempotent_audited_and_change_what_can_be_bought(
    client: TestClient, db: Any, drop: None, secret_headers: dict[str, str], workspace: WorkspaceCreated
) -> None:
    status = client.get("/v1/drops/print", headers=secret_headers).json()
    assert status == {
        "key": "print", "title": "Limited print", "state": "scheduled", "opens_at": "2990-01-01T00:00:00Z",
        "closes_at": "2999-01-01T00:00:00Z", "closed_at": None, "inventory": 3, "units_left": 3,
    }  # fmt: skip
    buy = {"anonymous_id": "viewer-1", "offer": "print"}
    r = client.post("/v1/checkout", headers=secret_headers, json=buy)
    assert (r.status_code, r.json()["error"]["code"]) == (409, "not_for_sale")

    code, opened = post(client, secret_headers, "/v1/drops/print/open")
    assert (code, opened["state"], opened["changed"], opened["closes_at"]) == (
        200,
        "live",
        True,
        "2999-01-01T00:00:00Z",
    )
    assert opened["opens_at"] < "2990"  # live from now, not from its schedule
    assert post(client, secret_headers, "/v1/drops/print/open")[1]["changed"] is False
    r = client.post("/v1/checkout", headers=secret_headers, json={**buy, "variant": "early"})
    assert (r.status_code, r.json()["total"]) == (201, 3900)
    assert client.get("/v1/drops/print", headers=secret_headers).json()["units_left"] == 2  # a unit held

    code, closed = post(client, secret_headers, "/v1/drops/print/close")
    assert (code, closed["state"], closed["changed"], closed["units_left"]) == (200, "closed", True, 2)
    assert closed["closed_at"] is not None
    assert post(client, secret_headers, "/v1/drops/print/close")[1]["changed"] is False
    r = client.post(
        "/v1/checkout", headers=secret_headers, json={"anonymous_id": "viewer-2", "offer": "print"}
    )
    assert (r.status_code, r.json()["error"]["code"]) == (409, "not_for_sale")
    listed = client.get("/v1/offers/catalog", headers=secret_headers).json()["items"]
    assert [o["state"] for o in listed if o["key"] == "print"] == ["closed"]

    reopened = post(client, secret_headers, "/v1/drops/print/open")[1]  # a drop closed by hand can reopen
    assert (reopened["state"], reopened["closed_at"], reopened["changed"]) == ("live", None, True)
    # a catalog edit keeps the creator's open/close
    assert client.put("/v1/offers/catalog", headers=secret_headers, json={"text": CATALOG}).status_code == 200
    assert client.get("/v1/drops/print", headers=secret_headers).json()["state"] == "live"
    with db.read() as session:
        actions = session.execute(
            select(AuditEntry.action, AuditEntry.target_id)
            .where(AuditEntry.workspace_id == workspace.id, AuditEntry.action.like("drops.%"))
            .order_by(AuditEntry.id)
        ).all()
    assert [tuple(a) for a in actions] == [
        ("drops.open", "print"),
        ("drops.close", "print"),
        ("drops.open", "print"),
    ]


@pytest.mark.parametrize(
    ("path", "status", "code"),
    [
        ("/v1/drops/unsigned/open", 409, "not_signed_off"),
        ("/v1/drops/old/open", 409, "drop_ended"),
        ("/v1/drops/book/open", 404, "drop_not_found"),
        ("/v1/drops/nope/open", 404, "drop_not_found"),
        ("/v1/drops/nope/close", 404, "drop_not_found"),
        ("/v1/drops/" + "x" * 5000 + "/open", 404, "drop_not_found"),
    ],
)
def test_what_cannot_be_opened_says_why(
    client: TestClient, drop: None, secret_headers: dict[str, str], path: str, status: int, code: str
) -> None:
    r = client.post(path, headers=secret_headers)
    assert (r.status_code, r.json()["error"]["code"]) == (status, code)


def test_closing_an_unsigned_drop_does_not_let_it_open(
    client: TestClient, drop: None, secret_headers: dict[str, str]
) -> None:
    assert post(client, secret_headers, "/v1/drops/unsigned/close")[1]["state"] == "closed"
    code, body = post(client, secret_headers, "/v1/drops/unsigned/open")
    assert (code, body["error"]["code"]) == (409, "not_signed_off")
    status = client.get("/v1/drops/unsigned", headers=secret_headers).json()
    assert (status["state"], status["closed_at"] is not None) == (
        "closed",
        True,
    )  # the refused open left no trace


def test_another_workspace_cannot_see_or_open_the_drop(
    client: TestClient, drop: None, other_workspace: WorkspaceCreated
) -> None:
    other = {"Authorization": f"Bearer {other_workspace.secret_key}"}
    for r in (
        client.post("/v1/drops/print/open", headers=other),
        client.get("/v1/drops/print", headers=other),
    ):
        assert r.status_code == 404, r.text
    assert client.post("/v1/drops/print/open").status_code == 401


def test_the_overlay_page_and_its_assets(
    client: TestClient, drop: None, workspace: WorkspaceCreated, secret_headers: dict[str, str]
) -> None:
    ws = workspace.id
    r = client.get(f"/live/{ws}/print", params={"viewer": "v-<b>"})
    assert r.status_code == 422  # not an anonymousId
    r = client.get(f"/live/{ws}/print", params={"currency": '"><script>'})
    assert r.status_code == 422  # longer than a currency code
    r = client.get(f"/live/{ws}/print", params={"viewer": "viewer-1", "currency": "EUR"})
    assert r.status_code == 200
    assert r.headers["content-type"].startswith("text/html")
    assert "script-src 'self'" in r.headers["content-security-policy"]
    assert "connect-src 'self'" in r.headers["content-security-policy"]
    page = r.text
    assert '<h1 class="ol-title">Limited print</h1>' in page
    assert f'data-workspace="{ws}" data-drop="print" data-viewer="viewer-1" data-currency="EUR"' in page
    assert '<span class="ol-left">3</span> of 3 left' in page and "https://" not in page  # nothing from a CDN
    for name, kind in (("overlay.js", "text/javascript"), ("overlay.css", "text/css")):
        asset = client.get(f"/live/_assets/{name}")
        assert asset.status_code == 200 and asset.headers["content-type"].startswith(kind)
        assert b"https://" not in asset.content
    assert client.get("/live/_assets/..%2Fservice.py").status_code == 404
    assert client.get("/live/_assets/service.py").status_code == 404
    for path in (
        f"/live/{ws}/nope",
        "/live/ws_unknown/print",
        f"/live/{ws}/book",
        "/live/" + "w" * 3000 + "/print",
    ):
        assert client.get(path).status_code == 404, path


def test_the_short_link_checks_the_viewer_out_identified_and_refuses_when_not_live(
    client: TestClient, drop: None, workspace: WorkspaceCreated, secret_headers: dict[str, str]
) -> None:
    ws = workspace.id
    go = f"/v1/live/{ws}/print/go"
    r = client.get(go, params={"viewer": "viewer-9"}, follow_redirects=False)
    assert r.status_code == 409 and r.headers["content-type"].startswith("text/html")
    assert "Limited print is scheduled: it cannot be bought now" in r.text
    post(client, secret_headers, "/v1/drops/print/open")
    r = client.get(go, params={"viewer": "viewer-9", "currency": "EUR"}, follow_redirects=False)
    assert r.status_code == 303, r.text
    location = r.headers["location"]
    assert location.startswith(f"/live/{ws}/print/orders/ord_")
    order_id = location.rsplit("/", 1)[1]
    order = client.get(f"/v1/orders/{order_id}", headers=secret_headers).json()
    # the variant the decision engine chose for the viewer (the only one: early), at its price
    assert (order["status"], order["currency"], order["total"]) == ("pending", "EUR", 3500)
    assert (order["lines"][0]["variant"], order["decision_id"][:4]) == ("early", "dec_")
    buyer = client.get(
        "/v1/buyers/lookup", headers=secret_headers, params={"anonymous_id": "viewer-9"}
    ).json()
    assert buyer["id"] == order["buyer_id"]  # the viewer, identified by their anonymousId
    # a made-up (or another workspace's) decision is no presentation: the viewer is decided for as the overlay does
    other = client.get(go, params={"viewer": "viewer-8", "decision": "dec_made_up"}, follow_redirects=False)
    other_order = client.get(
        f"/v1/orders/{other.headers['location'].rsplit('/', 1)[1]}", headers=secret_headers
    )
    assert (other_order.json()["total"], other_order.json()["decision_id"][:4]) == (3900, "dec_")
    assert other_order.json()["decision_id"] != "dec_made_up"
    again = client.get(go, params={"viewer": "viewer-9"}, follow_redirects=False)
    assert again.headers["location"] == location  # a second click holds no second unit
    assert client.get("/v1/drops/print", headers=secret_headers).json()["units_left"] == 1
    page = client.get(location)
    assert page.status_code == 200 and "EUR 35.00" in page.text and order_id in page.text
    assert client.get(f"/live/{ws}/old/orders/{order_id}").status_code == 404  # not an order of that drop
    assert client.get(f"/live/{ws}/print/orders/ord_nope").status_code == 404
    post(client, secret_headers, "/v1/drops/print/close")
    r = client.get(go, params={"viewer": "viewer-10"}, follow_redirects=False)
    assert r.status_code == 409 and "is closed" in r.text


@pytest.mark.parametrize(
    ("params", "status"),
    [({}, 422), ({"viewer": ""}, 422), ({"viewer": "x" * 129}, 422), ({"viewer": "a b"}, 422),
     ({"viewer": "ok\u0000"}, 422), ({"viewer": "é"}, 422), ({"viewer": "v" * 8000}, 422)],
)  # fmt: skip
def test_garbage_viewers_are_refused(
    client: TestClient, drop: None, workspace: WorkspaceCreated, params: dict[str, str], status: int
) -> None:
    ws = workspace.id
    for path in (f"/v1/live/{ws}/print/stream", f"/v1/live/{ws}/print/go"):
        r = client.get(path, params=params, follow_redirects=False)
        assert r.status_code in (status, 414), (path, r.status_code, r.text[:200])


def test_unknown_workspaces_and_drops_are_404(
    client: TestClient, drop: None, workspace: WorkspaceCreated
) -> None:
    ws = workspace.id
    for path in (f"/v1/live/{ws}/nope/stream", "/v1/live/ws_nope/print/stream", f"/v1/live/{ws}/book/stream",
                 f"/v1/live/{ws}/nope/go", "/v1/live/%2e%2e/print/stream"):  # fmt: skip
        r = client.get(path, params={"viewer": "viewer-1"}, follow_redirects=False)
        assert r.status_code == 404, (path, r.text[:200])


def test_the_short_link_is_rate_limited_per_client_address(
    db: Any, settings: Any, drop: None, workspace: WorkspaceCreated, secret_headers: dict[str, str]
) -> None:
    """A script minting viewers to hold every unit of a drop is refused after the per-minute allowance: 429,
    an HTML page and Retry-After, and no order is made for the refused requests."""
    app = create_app(settings.model_copy(update={"live_go_per_minute": 2}), db=db)
    ws = workspace.id
    with TestClient(app, raise_server_exceptions=False) as client:
        post(client, secret_headers, "/v1/drops/print/open")
        codes = [client.get(f"/v1/live/{ws}/print/go", params={"viewer": f"bot-{i}"}, follow_redirects=False)
                 for i in range(4)]  # fmt: skip
        assert [r.status_code for r in codes] == [303, 303, 429, 429]
        refused = codes[2]
        assert refused.headers["content-type"].startswith("text/html")
        assert refused.headers["retry-after"] == "30"  # 2 a minute: one back every 30 s
        assert "too many checkouts from this address: try again in 30 s" in refused.text
        assert client.get("/v1/drops/print", headers=secret_headers).json()["units_left"] == 1
        pending = client.get("/v1/orders", headers=secret_headers, params={"status": "pending"}).json()[
            "items"
        ]
        assert len(pending) == 2


def test_one_address_holds_at_most_a_few_units_of_a_drop_through_the_short_link(
    db: Any, settings: Any, drop: None, workspace: WorkspaceCreated, secret_headers: dict[str, str]
) -> None:
    """Waiting out the rate limit does not let one address hold the stock: its unpaid holds are capped (a hold
    lapses after the checkout's minutes); a viewer's second click returns their order and is not refused."""
    loose = settings.model_copy(update={"live_go_per_minute": 1000, "live_go_holds_per_address": 2})
    ws = workspace.id
    with TestClient(create_app(loose, db=db), raise_server_exceptions=False) as client:
        post(client, secret_headers, "/v1/drops/print/open")

        def go(viewer: str) -> Any:
            return client.get(f"/v1/live/{ws}/print/go", params={"viewer": viewer}, follow_redirects=False)

        first, second, third = go("bot-1"), go("bot-2"), go("bot-3")
        assert [r.status_code for r in (first, second, third)] == [303, 303, 429]
        assert third.headers["retry-after"] == "900"  # the first hold lapses after 15 minutes
        assert "this address already holds 2 units of this drop: try again in 900 s" in third.text
        again = go("bot-1")
        assert (again.status_code, again.headers["location"]) == (303, first.headers["location"])
        assert client.get("/v1/drops/print", headers=secret_headers).json()["units_left"] == 1
