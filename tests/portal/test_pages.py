"""The portal's pages over HTTP: downloads through the buyer's own artifacts, subscription actions through the
subscriptions service, access and quota, my data (consent, export, erasure) — and nothing of another buyer
or another workspace, whatever ids a hostile buyer puts in URLs and forms."""

from __future__ import annotations

from fastapi.testclient import TestClient

from offerloop.db.uow import Database
from offerloop.workspaces.schemas import WorkspaceCreated

from .helpers import Mailer, ask_for_link, buyer_buys, csrf_of, sign_in


def _artifact_of(client: TestClient, secret: dict[str, str], order_id: str) -> str:
    tasks = client.get(f"/v1/orders/{order_id}", headers=secret).json()["fulfilment"]
    return str(next(t for t in tasks if t["component"] == "deliverable")["result"]["artifact_id"])


def _subscription_of(client: TestClient, secret: dict[str, str], user: str) -> dict:
    buyer = client.get("/v1/buyers/lookup", headers=secret, params={"user_id": user}).json()["id"]
    (sub,) = client.get("/v1/subscriptions", headers=secret, params={"buyer_id": buyer}).json()["items"]
    return dict(sub)


def test_the_buyer_downloads_their_workbook_and_sees_its_versions(
    client: TestClient, workspace: WorkspaceCreated, secret_headers, shop, mailer: Mailer
) -> None:
    sign_in(client, workspace.id, mailer, "ada@example.com")
    art = _artifact_of(client, secret_headers, shop["ada"]["launch-workbook"])
    home = client.get(f"/p/{workspace.id}")
    assert f'data-artifact="{art}"' in home.text and "Ada starter workbook" in home.text
    assert "v1 · " in home.text and "Version 1 is ready." in home.text
    assert home.text.count("data-order=") == 2
    pdf = client.get(f"/p/{workspace.id}/downloads/{art}/pdf")
    assert pdf.status_code == 200 and pdf.headers["content-type"] == "application/pdf"
    assert pdf.headers["content-disposition"] == f'attachment; filename="{art}-v1.pdf"'
    assert "sandbox" in pdf.headers["content-security-policy"]
    link = client.get(
        f"/v1/artifacts/{art}/download", headers=secret_headers, params={"format": "pdf"}
    ).json()
    assert pdf.content == client.get(link["url"]).content and pdf.content.startswith(b"%PDF")
    html = client.get(f"/p/{workspace.id}/downloads/{art}/html")
    assert html.status_code == 200 and "sandbox" in html.headers["content-security-policy"]
    assert client.get(f"/p/{workspace.id}/downloads/{art}/exe").status_code == 422


def test_a_buyer_never_reaches_another_buyers_files_or_subscription(
    client: TestClient, workspace: WorkspaceCreated, secret_headers, shop, mailer: Mailer
) -> None:
    sign_in(client, workspace.id, mailer, "ada@example.com")
    bobs_art = _artifact_of(client, secret_headers, shop["bob"]["launch-workbook"])
    bobs_sub = _subscription_of(client, secret_headers, "bob")
    for fmt in ("pdf", "html", "markdown"):
        assert client.get(f"/p/{workspace.id}/downloads/{bobs_art}/{fmt}").status_code == 404
    assert client.get(f"/p/{workspace.id}/downloads/art_nope/pdf").status_code == 404  # the same answer
    page = client.get(f"/p/{workspace.id}/subscription")
    assert bobs_sub["id"] not in page.text and page.text.count("data-subscription=") == 1
    csrf = csrf_of(page.text)
    for action in ("cancel", "pause", "change_plan"):
        hit = client.post(f"/p/{workspace.id}/subscription/{bobs_sub['id']}",
                          data={"csrf_token": csrf, "action": action, "plan": "membership-annual"})  # fmt: skip
        assert hit.status_code == 404 and "There is no such subscription." in hit.text
    assert _subscription_of(client, secret_headers, "bob") == bobs_sub  # untouched
    for hostile in ("../../v1/orders", "sub_%00", "x" * 41):
        assert client.post(f"/p/{workspace.id}/subscription/{hostile}", data={"csrf_token": csrf, "action": "cancel"}
                           ).status_code in (404, 422)  # fmt: skip


def test_another_workspace_shows_nothing(
    client: TestClient, db: Database, workspace: WorkspaceCreated, other_workspace: WorkspaceCreated, shop,
    mailer: Mailer,
) -> None:  # fmt: skip
    sign_in(client, workspace.id, mailer, "ada@example.com")
    token = client.cookies.get("offerloop_portal")
    # the session cookie of one workspace's portal, sent to another's: no session there
    other = TestClient(client.app)
    other.cookies.set(
        "offerloop_portal", str(token), domain="testserver.local", path=f"/p/{other_workspace.id}"
    )
    there = other.get(f"/p/{other_workspace.id}", follow_redirects=False)
    assert (there.status_code, there.headers["location"]) == (303, f"/p/{other_workspace.id}/login")
    # Ada's address asks the other workspace for a link: the same answer, and nothing is sent
    seen = mailer.links("ada@example.com")
    assert "a sign-in link is on its way" in ask_for_link(other, other_workspace.id, "ada@example.com").text
    assert mailer.links("ada@example.com") == seen
    for missing in ("ws_doesnotexist", "static-nope", "x" * 41, "bad%20slug"):
        gone = client.get(f"/p/{missing}", follow_redirects=False)
        assert gone.status_code == 404 and "There is no buyer portal here." in gone.text
        assert client.get(f"/p/{missing}/login").status_code == 404


def test_subscription_cancel_pause_and_change_plan_go_through_the_service(
    client: TestClient, db: Database, workspace: WorkspaceCreated, secret_headers, write_headers, shop,
    mailer: Mailer,
) -> None:  # fmt: skip
    sign_in(client, workspace.id, mailer, "ada@example.com")
    sub = _subscription_of(client, secret_headers, "ada")
    assert sub["status"] == "trialing"
    url = f"/p/{workspace.id}/subscription/{sub['id']}"
    csrf = csrf_of(client.get(f"/p/{workspace.id}/subscription").text)
    # a trialing plan cannot be paused: the service says why, as a page, never a 500
    paused = client.post(url, data={"csrf_token": csrf, "action": "pause"})
    assert paused.status_code == 409 and "only an active subscription can be paused" in paused.text
    changed = client.post(
        url, data={"csrf_token": csrf, "action": "change_plan", "plan": "membership-annual"}
    )
    assert changed.status_code == 200 and "Your plan was changed." in changed.text
    assert _subscription_of(client, secret_headers, "ada")["offer_key"] == "membership-annual"
    unknown = client.post(url, data={"csrf_token": csrf, "action": "change_plan", "plan": "pricing-playbook"})
    assert unknown.status_code == 409 and "pricing-playbook is not a plan" in unknown.text
    for _ in range(2):  # a double submit: the second changes nothing
        done = client.post(url, data={"csrf_token": csrf, "action": "cancel"})
        assert done.status_code == 200 and "ends at the end of the current period" in done.text
    after = _subscription_of(client, secret_headers, "ada")
    assert (after["status"], after["state"]["cancel_at_period_end"]) == ("trialing", True)
    events = client.get(
        f"/v1/buyers/{after['buyer_id']}/events", headers=secret_headers, params={"limit": 200}
    )
    assert [e["name"] for e in events.json()["items"]].count("Subscription Canceled") == 1  # recorded once
    page = client.get(f"/p/{workspace.id}/subscription").text
    assert "Cancel at the end of the period" not in page
    for bad in ({"action": "refund"}, {"action": ""}, {"action": "cancel" * 10}):
        assert client.post(url, data={"csrf_token": csrf, **bad}).status_code == 422
    # the trial set to end can still be kept while it runs: the page offers it, and it works
    assert "Keep my subscription</button>" in page
    kept = client.post(url, data={"csrf_token": csrf, "action": "resume"})
    assert kept.status_code == 200 and "Your subscription is running again." in kept.text
    after = _subscription_of(client, secret_headers, "ada")
    assert (after["status"], after["state"]["cancel_at_period_end"]) == ("trialing", False)
    page = client.get(f"/p/{workspace.id}/subscription").text
    assert "Cancel at the end of the period</button>" in page and "Keep my subscription" not in page


def test_forms_without_the_sessions_csrf_token_are_refused(
    client: TestClient, workspace: WorkspaceCreated, secret_headers, shop, mailer: Mailer
) -> None:
    sign_in(client, workspace.id, mailer, "ada@example.com")
    sub = _subscription_of(client, secret_headers, "ada")
    url = f"/p/{workspace.id}/subscription/{sub['id']}"
    csrf = csrf_of(client.get(f"/p/{workspace.id}/subscription").text)
    for data, headers in (({"action": "cancel"}, {}), ({"action": "cancel", "csrf_token": "forged"}, {}),
                          ({"action": "cancel", "csrf_token": csrf}, {"Origin": "https://evil.example"})):  # fmt: skip
        refused = client.post(url, data=data, headers=headers)
        assert refused.status_code == 403 and 'data-code="csrf_refused"' in refused.text
    for path in ("data/delete", "data/export", "data/consent", "logout"):
        assert client.post(f"/p/{workspace.id}/{path}", data={"confirm": "yes"}).status_code == 403
    assert _subscription_of(client, secret_headers, "ada") == sub
    garbage = client.post(
        url, content=b"\xff\xfe" * 100, headers={"Content-Type": "application/x-www-form-urlencoded"}
    )
    assert garbage.status_code == 422
    as_json = client.post(url, json={"action": "cancel", "csrf_token": csrf})
    assert as_json.status_code == 422
    huge = client.post(url, data={"csrf_token": csrf, "action": "cancel", "pad": "x" * 70_000})
    assert huge.status_code == 422
    too_big = client.post(url, content=b"a=" + b"x" * (3 * 1024 * 1024),
                          headers={"Content-Type": "application/x-www-form-urlencoded"})  # fmt: skip
    assert too_big.status_code == 413
    assert _subscription_of(client, secret_headers, "ada") == sub


def test_access_and_quota(client: TestClient, workspace: WorkspaceCreated, shop, mailer: Mailer) -> None:
    sign_in(client, workspace.id, mailer, "ada@example.com")
    page = client.get(f"/p/{workspace.id}/access")
    assert page.status_code == 200
    assert 'data-grant="module:module-launch-201"' in page.text
    assert 'data-grant="community_space:creator-circle"' in page.text
    assert 'data-quota="coaching_session">coaching session: 2 of 2 left' in page.text


def test_my_data_consent_export_and_erasure(
    client: TestClient, workspace: WorkspaceCreated, secret_headers, shop, mailer: Mailer
) -> None:
    sign_in(client, workspace.id, mailer, "ada@example.com")
    page = client.get(f"/p/{workspace.id}/data")
    csrf = csrf_of(page.text)
    saved = client.post(f"/p/{workspace.id}/data/consent",
                        data={"csrf_token": csrf, "marketing": "no", "personalization": "yes", "ai_rewrite": "reviewed_only"})  # fmt: skip
    assert saved.status_code == 200 and "Your choices were saved." in saved.text
    ada = client.get("/v1/buyers/lookup", headers=secret_headers, params={"user_id": "ada"}).json()
    assert ada["consent"] == {"marketing": False, "personalization": True, "ai_rewrite": "reviewed_only"}
    assert (
        client.post(
            f"/p/{workspace.id}/data/consent", data={"csrf_token": csrf, "marketing": "maybe"}
        ).status_code
        == 422
    )
    exported = client.post(f"/p/{workspace.id}/data/export", data={"csrf_token": csrf})
    assert exported.status_code == 200 and exported.headers["content-type"] == "application/json"
    body = exported.json()
    assert (
        body["buyer"]["id"] == ada["id"]
        and {"kind": "email", "value": "ada@example.com"} in body["buyer"]["identities"]
    )
    unconfirmed = client.post(f"/p/{workspace.id}/data/delete", data={"csrf_token": csrf})
    assert unconfirmed.status_code == 422
    erased = client.post(f"/p/{workspace.id}/data/delete", data={"csrf_token": csrf, "confirm": "yes"})
    assert erased.status_code == 200 and "Your data was erased" in erased.text
    assert client.get(f"/p/{workspace.id}", follow_redirects=False).status_code == 303  # signed out
    record = client.get(f"/v1/buyers/{ada['id']}", headers=secret_headers).json()
    assert record["deleted"] is True and record["identities"] == []
    # the erased address gets the same answer as anyone, and no link
    seen = mailer.links("ada@example.com")
    assert "a sign-in link is on its way" in ask_for_link(client, workspace.id, "ada@example.com").text
    assert mailer.links("ada@example.com") == seen


def test_a_merged_buyers_session_follows_the_survivor(
    client: TestClient, workspace: WorkspaceCreated, secret_headers, write_headers, shop, mailer: Mailer
) -> None:
    from tests.conftest import msg

    # Cleo is known only by her e-mail (no user id) and signs in; then she identifies with a user id that another
    # buyer already holds, carrying the same e-mail: the identified buyer wins, Cleo's record merges into it
    first = msg(anonymousId="anon-cleo", messageId="c1", traits={"email": "cleo@example.com"})
    assert client.post("/v1/identify", headers=write_headers, json=first).status_code == 200
    sign_in(client, workspace.id, mailer, "cleo@example.com")
    before = client.post(
        f"/p/{workspace.id}/data/export",
        data={"csrf_token": csrf_of(client.get(f"/p/{workspace.id}/data").text)},
    ).json()
    buyer_buys(client, secret_headers, write_headers, "cleo-account", "membership-monthly")
    link = msg(userId="cleo-account", messageId="c2", traits={"email": "cleo@example.com"})
    assert client.post("/v1/identify", headers=write_headers, json=link).status_code == 200
    survivor = client.get(
        "/v1/buyers/lookup", headers=secret_headers, params={"user_id": "cleo-account"}
    ).json()
    assert survivor["id"] != before["buyer"]["id"]
    assert (
        client.get(f"/v1/buyers/{before['buyer']['id']}", headers=secret_headers).json()["id"]
        == survivor["id"]
    )
    data = client.get(f"/p/{workspace.id}/data")
    assert data.status_code == 200
    after = client.post(f"/p/{workspace.id}/data/export", data={"csrf_token": csrf_of(data.text)}).json()
    assert after["buyer"]["id"] == survivor["id"] and before["buyer"]["id"] in after["merged_buyer_ids"]
    assert (
        client.get(f"/p/{workspace.id}/subscription").text.count("data-subscription=") == 1
    )  # the survivor's plan
