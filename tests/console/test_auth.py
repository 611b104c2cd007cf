"""Sign-in, sessions, CSRF, rate limits and roles of the console, over HTTP (TestClient, real database)."""

from __future__ import annotations

import re

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import func, select

from offerloop.api import create_app
from offerloop.config import Settings
from offerloop.console import passwords
from offerloop.db.uow import Database
from offerloop.models import ConsoleSession
from offerloop.workspaces.schemas import WorkspaceCreated

from .helpers import PASSWORD, add_user, csrf_of, login_token, sign_in


@pytest.fixture
def owner(db: Database, workspace: WorkspaceCreated):
    return add_user(db, workspace.id, "Owner@Example.com", "owner")


def _sessions(db: Database, user_id: str) -> int:
    with db.read() as session:
        return int(session.scalar(select(func.count()).where(ConsoleSession.user_id == user_id)) or 0)


def test_root_leads_to_the_console_and_the_console_to_sign_in(client: TestClient) -> None:
    root = client.get("/", follow_redirects=False)
    assert (root.status_code, root.headers["location"]) == (307, "/console")
    home = client.get("/console", follow_redirects=False)
    assert (home.status_code, home.headers["location"]) == (303, "/console/login?next=%2Fconsole")
    deep = client.get("/console/buyers?q=x", follow_redirects=False)
    assert deep.headers["location"] == "/console/login?next=%2Fconsole%2Fbuyers%3Fq%3Dx"
    htmx = client.get("/console/home/alerts", headers={"HX-Request": "true"}, follow_redirects=False)
    assert (htmx.status_code, htmx.headers["hx-redirect"]) == (
        401,
        "/console/login?next=%2Fconsole%2Fhome%2Falerts",
    )


def test_sign_in_sets_a_strict_cookie_and_sign_out_ends_the_session(
    client: TestClient, db: Database, owner
) -> None:
    signed = sign_in(client, "owner@example.com")
    assert (signed.status_code, signed.headers["location"]) == (303, "/console")
    cookie = next(c for c in signed.headers.get_list("set-cookie") if c.startswith("offerloop_console="))
    attributes = {part.strip().split("=")[0].lower() for part in cookie.split(";")[1:]}
    assert {"httponly", "path", "samesite", "max-age"} <= attributes and "secure" not in attributes
    assert "SameSite=lax" in cookie and "Path=/console" in cookie
    token = client.cookies.get("offerloop_console")
    home = client.get("/console")
    assert home.status_code == 200 and "owner@example.com" in home.text
    assert home.headers["cache-control"] == "no-store"
    assert "script-src 'self'" in home.headers["content-security-policy"]
    assert _sessions(db, owner.id) == 1
    out = client.post("/console/logout", data={"csrf_token": csrf_of(home.text)}, follow_redirects=False)
    assert (out.status_code, out.headers["location"]) == (303, "/console/login")
    assert _sessions(db, owner.id) == 0
    # the old cookie, replayed, opens nothing
    client.cookies.set("offerloop_console", token, domain="testserver.local", path="/console")
    assert client.get("/console", follow_redirects=False).status_code == 303


def test_wrong_password_and_unknown_email_get_the_same_answer(client: TestClient, owner) -> None:
    wrong = sign_in(client, "owner@example.com", "not the password at all")
    unknown = sign_in(client, "nobody@example.com", PASSWORD)
    assert wrong.status_code == unknown.status_code == 401
    assert re.search(r'role="alert" id="signin-error">([^<]+)<', wrong.text).group(1) == (
        "the e-mail or the password is wrong"
    )
    assert (
        re.search(r'id="signin-error">([^<]+)<', unknown.text).group(1)
        == "the e-mail or the password is wrong"
    )
    assert "offerloop_console=" not in "".join(wrong.headers.get_list("set-cookie")).replace(
        "offerloop_console_login=", ""
    )


def test_sign_in_is_rate_limited_per_email(db: Database, settings: Settings, workspace, owner) -> None:
    limited = settings.model_copy(update={"console_logins_per_minute": 3})
    with TestClient(create_app(limited, db=db), raise_server_exceptions=False) as client:
        codes = [sign_in(client, "owner@example.com", "wrong password here").status_code for _ in range(3)]
        refused = sign_in(client, "owner@example.com")  # even the right password, once over the limit
        assert codes == [401, 401, 401]
        assert refused.status_code == 429 and int(refused.headers["retry-after"]) >= 1
        assert 'data-code="login_rate_limited"' in refused.text
        assert "offerloop_console=" not in "".join(refused.headers.get_list("set-cookie"))


def test_sign_in_needs_the_form_token_from_this_server(client: TestClient, owner) -> None:
    login_token(client)
    no_token = client.post("/console/login", data={"email": "owner@example.com", "password": PASSWORD},
                           follow_redirects=False)  # fmt: skip
    assert no_token.status_code == 403 and 'data-code="csrf_refused"' in no_token.text
    token = login_token(client)
    cross = client.post("/console/login", headers={"Origin": "https://evil.example"},
                        data={"email": "owner@example.com", "password": PASSWORD, "login_token": token},
                        follow_redirects=False)  # fmt: skip
    assert cross.status_code == 403


def test_posts_without_the_session_csrf_token_are_refused(client: TestClient, db: Database, owner) -> None:
    sign_in(client, "owner@example.com")
    page = client.get("/console")
    token = csrf_of(page.text)
    for data, headers in (
        ({}, {}),
        ({"csrf_token": "x" * 43}, {}),
        ({"csrf_token": token}, {"Origin": "https://evil.example"}),
        ({"csrf_token": token}, {"Referer": "https://evil.example/page"}),
    ):
        r = client.post("/console/logout", data=data, headers=headers, follow_redirects=False)
        assert r.status_code == 403 and 'data-code="csrf_refused"' in r.text, (data, headers)
    assert _sessions(db, owner.id) == 1
    # htmx sends the token as a header
    r = client.post("/console/logout", headers={"X-CSRF-Token": token, "Origin": "http://testserver"},
                    follow_redirects=False)  # fmt: skip
    assert r.status_code == 303 and _sessions(db, owner.id) == 0


def test_a_planted_session_cookie_never_becomes_the_session(client: TestClient, db: Database, owner) -> None:
    client.cookies.set("offerloop_console", "planted-by-attacker", domain="testserver.local", path="/console")
    sign_in(client, "owner@example.com")
    assert client.cookies.get("offerloop_console") not in (None, "planted-by-attacker")
    first = client.cookies.get("offerloop_console")
    sign_in(client, "owner@example.com")  # signing in again replaces the session, never reuses it
    assert client.cookies.get("offerloop_console") != first
    assert _sessions(db, owner.id) == 1


def test_next_only_leads_inside_the_console(client: TestClient, owner) -> None:
    for target, expected in (("/console/buyers", "/console/buyers"), ("//evil.example", "/console"),
                             ("https://evil.example/console", "/console"), ("/docs", "/console")):  # fmt: skip
        r = sign_in(client, "owner@example.com", next_url=target)
        assert r.headers["location"] == expected, target


def test_cookies_are_secure_behind_https(db: Database, settings: Settings, owner) -> None:
    public = settings.model_copy(update={"public_url": "https://offers.example.com"})
    with TestClient(create_app(public, db=db), base_url="https://offers.example.com") as client:
        login = client.get("/console/login")
        assert "Secure" in login.headers["set-cookie"]
        r = sign_in(client, "owner@example.com")
        assert "Secure" in next(
            c for c in r.headers.get_list("set-cookie") if c.startswith("offerloop_console=")
        )


@pytest.mark.parametrize(
    ("role", "buyers", "undo"), [("owner", 200, 303), ("reviewer", 200, 403), ("analyst", 403, 403)]
)
def test_roles_are_enforced_per_page_and_action(client, db, workspace, role, buyers, undo) -> None:
    add_user(db, workspace.id, f"{role}@example.com", role)
    sign_in(client, f"{role}@example.com")
    page = client.get("/console/buyers")
    assert page.status_code == buyers
    if buyers == 403:
        assert 'data-code="role_refused"' in page.text
    home = client.get("/console")
    token = csrf_of(home.text)
    # no such merge: the role is checked before anything is looked up
    r = client.post(
        "/console/buyers/byr_x/merges/mrg_x/undo", data={"csrf_token": token}, follow_redirects=False
    )
    assert r.status_code == (404 if undo == 303 else 403)


def test_sessions_of_another_workspace_see_only_their_own(client, db, workspace, other_workspace) -> None:
    add_user(db, other_workspace.id, "same@example.com", "owner", password="another password 123")
    add_user(db, workspace.id, "same@example.com", "owner")
    sign_in(client, "same@example.com", "another password 123")
    assert client.get("/console").status_code == 200
    buyer = client.get(f"/console/buyers/{'byr_nope'}")
    assert buyer.status_code == 404


def test_hostile_input_is_answered_not_crashed(client, owner) -> None:
    sign_in(client, "owner@example.com")
    token = csrf_of(client.get("/console").text)
    assert client.get("/console/buyers", params={"q": "x" * 600}).status_code == 422
    assert client.get("/console/buyers/" + "a" * 41).status_code == 422
    assert client.get("/console/buyers/bad%20id").status_code == 422
    assert client.get("/console/nowhere").status_code == 404
    r = client.post("/console/logout", content=b"csrf_token=" + b"\xff" * 10,
                    headers={"Content-Type": "application/x-www-form-urlencoded"})  # fmt: skip
    assert r.status_code == 422
    r = client.post("/console/logout", content=b"a=1&" * 100 + f"csrf_token={token}".encode(),
                    headers={"Content-Type": "application/x-www-form-urlencoded"})  # fmt: skip
    assert r.status_code == 422
    r = client.post("/console/logout", json={"csrf_token": token})
    assert r.status_code == 422
    long_password = sign_in(client, "owner@example.com", "p" * 5000)
    assert long_password.status_code == 422


def test_passwords_are_argon2id_and_verify_only_themselves() -> None:
    hashed = passwords.hash_password("a long enough password")
    assert hashed.startswith("$argon2id$")
    assert passwords.verify(hashed, "a long enough password") is True
    assert passwords.verify(hashed, "a long enough passworD") is False
    assert passwords.verify(None, "a long enough password") is False
    assert passwords.verify("not a hash", "x") is False


def test_a_session_ends_when_it_expires_and_only_its_hash_is_stored(db: Database, owner) -> None:
    from datetime import timedelta

    from offerloop.console import service
    from offerloop.core.clock import utcnow

    start = utcnow()
    with db.write() as session:
        created = service.sign_in(
            session=session, email="OWNER@example.com", password=PASSWORD, hours=2, now=start
        )
    with db.read() as session:
        stored = session.scalars(select(ConsoleSession.id).where(ConsoleSession.user_id == owner.id)).all()
        assert stored == [service.token_hash(created.token)] and created.token not in stored
        alive = service.signed_in(
            session=session, token=created.token, now=start + timedelta(hours=1, minutes=59)
        )
        assert alive is not None and (alive.email, alive.role) == ("owner@example.com", "owner")
        assert service.signed_in(session=session, token=created.token, now=start + timedelta(hours=2)) is None
        assert service.signed_in(session=session, token=created.token + "x", now=start) is None
    with db.write() as session:  # the next sign-in clears this user's expired rows
        service.sign_in(
            session=session, email="owner@example.com", password=PASSWORD, now=start + timedelta(hours=3)
        )
    assert _sessions(db, owner.id) == 1


def test_every_section_has_its_page_and_home_is_the_console(client: TestClient, owner) -> None:
    sign_in(client, "owner@example.com")
    from offerloop.console.web import SECTIONS

    for key, _title in SECTIONS[1:]:  # each section's page marks itself in the nav
        page = client.get(f"/console/{key}")
        assert page.status_code == 200 and f'href="/console/{key}" aria-current="page"' in page.text, key
    assert client.get("/console/nothing-here").status_code == 404
    home = client.get("/console/home", follow_redirects=False)
    assert (home.status_code, home.headers["location"]) == (307, "/console")


def test_an_email_in_many_workspaces_names_its_workspace(client: TestClient, db: Database) -> None:
    from offerloop.console.repository import MAX_ACCOUNTS_PER_EMAIL
    from offerloop.workspaces import service as workspace_service

    spaces = []
    for n in range(MAX_ACCOUNTS_PER_EMAIL + 1):
        with db.write() as session:
            spaces.append(workspace_service.create_workspace(session=session, name=f"Many {n}").id)
        add_user(db, spaces[-1], "many@example.com", "analyst")
    asked = sign_in(client, "many@example.com")
    assert asked.status_code == 422 and "give the workspace id too" in asked.text
    token = login_token(client)
    r = client.post("/console/login", data={"email": "many@example.com", "password": PASSWORD, "login_token": token,
                                            "workspace": spaces[-1]}, follow_redirects=False)  # fmt: skip
    assert r.status_code == 303
    assert f"workspace {spaces[-1]}" not in client.get("/console").text  # signed in; the home page renders
    wrong = login_token(client)
    r = client.post("/console/login", data={"email": "many@example.com", "password": "a wrong password!",
                                            "login_token": wrong, "workspace": spaces[0]})  # fmt: skip
    assert r.status_code == 401
