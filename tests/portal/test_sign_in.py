"""Sign-in by magic link over HTTP (TestClient, real database, mail sent by the real delivery jobs into the
embedded Maildir): single use, expiry, no enumeration, rate limits, CSRF on the pre-session forms, no session
fixation, and only hashes stored."""

from __future__ import annotations

import hashlib
from datetime import timedelta

import httpx
from fastapi.testclient import TestClient
from sqlalchemy import select

from offerloop.core.clock import utcnow
from offerloop.db.uow import Database
from offerloop.models import OutboxMessage, PortalLoginToken, PortalSession
from offerloop.portal import service as portal_service
from offerloop.workspaces import service as workspace_service
from offerloop.workspaces.schemas import WorkspaceCreated

from .helpers import Mailer, ask_for_link, csrf_of, form_token, post_token, sign_in, use_link


def test_the_mailed_link_signs_the_buyer_in_once_with_a_strict_cookie(
    client: TestClient, db: Database, workspace: WorkspaceCreated, shop, mailer: Mailer
) -> None:
    asked = ask_for_link(client, workspace.id, "Ada@Example.com")
    assert asked.status_code == 200 and "a sign-in link is on its way" in asked.text
    (link,) = mailer.links("ada@example.com")
    assert link.startswith(f"http://127.0.0.1:8000/p/{workspace.id}/auth?token=")
    token = httpx.URL(link).params["token"]
    with db.read() as session:
        rows = list(
            session.scalars(select(PortalLoginToken).where(PortalLoginToken.workspace_id == workspace.id))
        )
        assert [r.id for r in rows] == [
            hashlib.sha256(token.encode()).hexdigest()
        ]  # the hash, never the token
        assert rows[0].expires_at - rows[0].created_at == timedelta(minutes=15)
    # opening the link shows a button (a mail scanner fetching it uses nothing up); pressing it signs in
    signed = use_link(client, link)
    assert (signed.status_code, signed.headers["location"]) == (303, f"/p/{workspace.id}")
    cookie = next(c for c in signed.headers.get_list("set-cookie") if c.startswith("offerloop_portal="))
    assert "HttpOnly" in cookie and "SameSite=lax" in cookie and f"Path=/p/{workspace.id};" in cookie + ";"
    assert "Secure" not in cookie  # http here; https public URLs get Secure cookies
    home = client.get(f"/p/{workspace.id}")
    assert home.status_code == 200 and "ada@example.com" in home.text and "Your downloads" in home.text
    assert (
        home.headers["cache-control"] == "no-store"
        and "script-src 'self'" in home.headers["content-security-policy"]
    )
    with db.read() as session:
        body = session.scalars(select(OutboxMessage).where(OutboxMessage.workspace_id == workspace.id,
                                                          OutboxMessage.key.like("portal-sign-in/%"))).one().body  # fmt: skip
    assert token not in str(body) and body["text"] == portal_service.USED_TEXT  # no working secret kept
    # the same link again, in another browser: refused on opening (no button), and if posted anyway
    other = TestClient(client.app)
    again = other.get(f"/p/{workspace.id}/auth", params={"token": token})
    assert again.status_code == 401 and 'data-code="link_not_valid"' in again.text
    assert "<form" not in again.text and "Sign in</button>" not in again.text
    posted = post_token(other, workspace.id, token)
    assert posted.status_code == 401 and 'data-code="link_not_valid"' in posted.text


def test_an_expired_or_forged_link_opens_nothing(
    client: TestClient, db: Database, workspace: WorkspaceCreated, shop, mailer: Mailer, settings
) -> None:
    with db.write() as session:  # asked 16 minutes ago
        assert portal_service.request_link(session=session, workspace_id=workspace.id, email="ada@example.com",
                                           public_url=settings.public_url, now=utcnow() - timedelta(minutes=16))  # fmt: skip
    (link,) = mailer.links("ada@example.com")
    token = httpx.URL(link).params["token"]
    for forged in (token, token[:-1] + ("A" if token[-1] != "A" else "B"), "x", "A" * 128):
        sent = post_token(client, workspace.id, forged)
        assert sent.status_code == 401 and 'data-code="link_not_valid"' in sent.text
    page = client.get(f"/p/{workspace.id}/login")
    huge = client.post(
        f"/p/{workspace.id}/auth", data={"token": "A" * 5000, "form_token": form_token(page.text)}
    )
    assert huge.status_code == 422
    assert client.get(f"/p/{workspace.id}/auth", params={"token": "A" * 500}).status_code == 422
    assert client.get(f"/p/{workspace.id}", follow_redirects=False).status_code == 303  # still signed out


def test_the_answer_never_tells_whether_an_address_is_a_buyers(
    client: TestClient, workspace: WorkspaceCreated, shop, mailer: Mailer
) -> None:
    known = ask_for_link(client, workspace.id, "ada@example.com")
    unknown = ask_for_link(client, workspace.id, "nobody@example.com")
    assert (known.status_code, known.text) == (unknown.status_code, unknown.text) == (200, known.text)
    assert mailer.links("nobody@example.com") == set() and len(mailer.links("ada@example.com")) == 1
    bad = ask_for_link(client, workspace.id, "not an address")
    assert bad.status_code == 422 and "not an e-mail address" in bad.text  # its form only, never who buys


def test_links_are_rate_limited_per_address_and_at_most_three_are_alive(
    client: TestClient, workspace: WorkspaceCreated, shop, mailer: Mailer
) -> None:
    for address in ("ada@example.com", "nobody@example.com"):  # the same for a buyer and a stranger
        answers = [ask_for_link(client, workspace.id, address).status_code for _ in range(6)]
        assert answers == [200, 200, 200, 200, 200, 429]
    refused = ask_for_link(client, workspace.id, "ADA@example.com ")
    assert refused.status_code == 429 and int(refused.headers["retry-after"]) >= 1
    assert len(mailer.links("ada@example.com")) == portal_service.MAX_LIVE_LINKS  # no mailbox flood


def test_links_are_rate_limited_per_client_address(client: TestClient, workspace: WorkspaceCreated) -> None:
    answers = [ask_for_link(client, workspace.id, f"x{i}@example.com").status_code for i in range(21)]
    assert answers == [200] * 20 + [429]


def test_the_pre_session_forms_need_their_token(
    client: TestClient, workspace: WorkspaceCreated, shop, mailer: Mailer
) -> None:
    client.get(f"/p/{workspace.id}/login")
    missing = client.post(f"/p/{workspace.id}/login", data={"email": "ada@example.com"})
    forged = client.post(
        f"/p/{workspace.id}/login", data={"email": "ada@example.com", "form_token": "forged"}
    )
    assert missing.status_code == forged.status_code == 403 and 'data-code="csrf_refused"' in forged.text
    page = client.get(f"/p/{workspace.id}/login")
    elsewhere = client.post(f"/p/{workspace.id}/login", headers={"Origin": "https://evil.example"},
                            data={"email": "ada@example.com", "form_token": form_token(page.text)})  # fmt: skip
    assert elsewhere.status_code == 403
    assert mailer.links("ada@example.com") == set()


def test_a_cookie_set_before_sign_in_is_never_adopted(
    client: TestClient, db: Database, workspace: WorkspaceCreated, shop, mailer: Mailer
) -> None:
    # an attacker plants a session id of their choosing, then one of their own real sessions (Bob's)
    client.cookies.set(
        "offerloop_portal", "planted-by-attacker", domain="testserver.local", path=f"/p/{workspace.id}"
    )
    signed = sign_in(client, workspace.id, mailer, "ada@example.com")
    assert signed.status_code == 303
    ada_token = client.cookies.get("offerloop_portal")
    assert ada_token not in (None, "planted-by-attacker")
    with db.read() as session:
        assert session.get(PortalSession, hashlib.sha256(b"planted-by-attacker").hexdigest()) is None
    bob = TestClient(client.app)
    sign_in(bob, workspace.id, mailer, "bob@example.com")
    bob_token = bob.cookies.get("offerloop_portal")
    victim = TestClient(client.app)
    victim.cookies.set("offerloop_portal", bob_token, domain="testserver.local", path=f"/p/{workspace.id}")
    sign_in(victim, workspace.id, mailer, "ada@example.com")
    assert victim.cookies.get("offerloop_portal") not in (bob_token, ada_token)
    # the planted session ended: Bob's browser is signed out, the victim sees Ada's own page
    assert bob.get(f"/p/{workspace.id}", follow_redirects=False).status_code == 303
    assert "ada@example.com" in victim.get(f"/p/{workspace.id}").text


def test_sign_out_ends_the_session(
    client: TestClient, workspace: WorkspaceCreated, shop, mailer: Mailer
) -> None:
    sign_in(client, workspace.id, mailer, "ada@example.com")
    token = client.cookies.get("offerloop_portal")
    home = client.get(f"/p/{workspace.id}")
    out = client.post(
        f"/p/{workspace.id}/logout", data={"csrf_token": csrf_of(home.text)}, follow_redirects=False
    )
    assert (out.status_code, out.headers["location"]) == (303, f"/p/{workspace.id}/login")
    replay = TestClient(client.app)
    replay.cookies.set("offerloop_portal", str(token), domain="testserver.local", path=f"/p/{workspace.id}")
    assert replay.get(f"/p/{workspace.id}", follow_redirects=False).status_code == 303


def _confirm_page(client: TestClient, workspace_id: str, token: str | None) -> httpx.Response:
    return client.get(f"/p/{workspace_id}/auth", params={} if token is None else {"token": token})


def _refused_without_a_button(page: httpx.Response) -> None:
    assert page.status_code == 401
    assert "<h1>This link does not work</h1>" in page.text
    assert portal_service.LINK_REFUSED_TEXT in page.text and "ask for a new one" in page.text.lower()
    assert 'data-code="link_not_valid"' in page.text
    assert (
        "<form" not in page.text and 'name="token"' not in page.text and "Sign in</button>" not in page.text
    )
    assert "/login" in page.text  # where to ask for a new one
    assert page.headers["cache-control"] == "no-store"


def test_the_confirm_page_refuses_a_garbage_expired_or_used_link_without_a_button(
    client: TestClient, db: Database, workspace: WorkspaceCreated, shop, mailer: Mailer, settings
) -> None:
    # garbage, empty, and well-formed but unknown
    for junk in ("garbage", "", None, "A" * 128, "not a token at all"):
        _refused_without_a_button(_confirm_page(client, workspace.id, junk))
    # expired: asked 16 minutes ago
    with db.write() as session:
        assert portal_service.request_link(session=session, workspace_id=workspace.id, email="ada@example.com",
                                           public_url=settings.public_url, now=utcnow() - timedelta(minutes=16))  # fmt: skip
    (expired,) = mailer.links("ada@example.com")
    _refused_without_a_button(_confirm_page(client, workspace.id, httpx.URL(expired).params["token"]))
    # valid: the confirm step with its button; opening it (twice, as a mail scanner would) uses nothing up
    seen = mailer.links("ada@example.com")
    assert ask_for_link(client, workspace.id, "ada@example.com").status_code == 200
    link = mailer.new_link("ada@example.com", seen)
    token = httpx.URL(link).params["token"]
    for _ in range(2):
        page = _confirm_page(client, workspace.id, token)
        assert page.status_code == 200 and "Sign in</button>" in page.text
        assert f'name="token" value="{token}"' in page.text and 'name="form_token"' in page.text
    # another workspace's portal does not know this link
    with db.write() as session:
        other = workspace_service.create_workspace(session=session, name="Elsewhere")
    _refused_without_a_button(_confirm_page(TestClient(client.app), other.id, token))
    assert use_link(client, link).status_code == 303
    # used: refused, in this browser and in another
    _refused_without_a_button(_confirm_page(client, workspace.id, token))
    _refused_without_a_button(_confirm_page(TestClient(client.app), workspace.id, token))


def test_the_confirm_page_of_an_erased_buyer_refuses(
    client: TestClient, db: Database, workspace: WorkspaceCreated, shop, mailer: Mailer, secret_headers
) -> None:
    assert ask_for_link(client, workspace.id, "bob@example.com").status_code == 200
    (link,) = mailer.links("bob@example.com")
    bob = client.get("/v1/buyers/lookup", headers=secret_headers, params={"user_id": "bob"}).json()["id"]
    assert client.delete(f"/v1/buyers/{bob}", headers=secret_headers).status_code == 200
    _refused_without_a_button(_confirm_page(client, workspace.id, httpx.URL(link).params["token"]))


def test_refused_confirm_pages_are_rate_limited_per_client_address(
    client: TestClient, workspace: WorkspaceCreated, shop, mailer: Mailer
) -> None:
    """Guessing links through the confirm page is limited like posting them; a valid link is not counted."""
    assert ask_for_link(client, workspace.id, "ada@example.com").status_code == 200  # one of the 20
    (link,) = mailer.links("ada@example.com")
    token = httpx.URL(link).params["token"]
    for _ in range(3):
        assert _confirm_page(client, workspace.id, token).status_code == 200
    answers = [_confirm_page(client, workspace.id, f"guess-{i}").status_code for i in range(20)]
    assert answers == [401] * 19 + [429]
