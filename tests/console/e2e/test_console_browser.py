"""The console in a real headless Chromium against `offerloop serve`: sign in, a wrong password, the sign-in
rate limit, a forged form refused (CSRF), a buyer found by e-mail and a merge undone, a role refused."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.conftest import LiveServer, basic, msg

from .conftest import Team

pytestmark = [pytest.mark.server, pytest.mark.browser]
PASSWORD = "a long browser password"


def sign_in(page: Any, email: str, password: str = PASSWORD) -> None:
    page.goto("/console")
    page.get_by_label("E-mail", exact=True).fill(email)
    page.get_by_label("Password", exact=True).fill(password)
    page.get_by_role("button", name="Sign in").click()


def test_sign_in_wrong_password_and_sign_out(page: Any, team: Team, shots: Path) -> None:
    team.user(team.owner, "owner", PASSWORD)
    page.goto("/")
    assert page.url.endswith("/console/login?next=%2Fconsole")
    page.screenshot(path=shots / "01-sign-in.png", full_page=True)
    sign_in(page, team.owner, "not the right password")
    assert page.get_by_role("alert").inner_text() == "the e-mail or the password is wrong"
    page.screenshot(path=shots / "02-wrong-password.png", full_page=True)
    sign_in(page, team.owner)
    page.wait_for_url(re.compile(r"/console$"))
    assert page.get_by_role("heading", level=1).inner_text() == "Today"
    nav = page.get_by_role("navigation", name="Console sections")
    assert nav.get_by_role("link").all_inner_texts() == [
        "Home", "Buyers", "Personas", "Decisions", "Journeys", "Assembly", "Offers", "Orders and subscriptions",
        "Ledger and payouts", "Analytics", "Settings",
    ]  # fmt: skip
    page.locator('[data-alert="none"]').wait_for()  # the alerts fragment, loaded by htmx
    page.screenshot(path=shots / "03-home.png", full_page=True)
    cookie = next(c for c in page.context.cookies() if c["name"] == "offerloop_console")
    assert cookie["httpOnly"] is True and cookie["sameSite"] == "Lax" and cookie["path"] == "/console"
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url(re.compile(r"/console/login$"))
    page.goto("/console")
    assert "/console/login" in page.url


def test_sign_in_is_rate_limited(page: Any, team: Team, shots: Path) -> None:
    team.user(team.owner, "owner", PASSWORD)
    for _ in range(5):  # the default: 5 a minute per address and per e-mail
        sign_in(page, team.owner, "wrong password again")
        assert page.get_by_role("alert").inner_text() == "the e-mail or the password is wrong"
    sign_in(page, team.owner)  # the right password, over the limit
    assert page.get_by_role("heading", level=1).inner_text() == "Too many attempts"
    assert page.locator('[data-code="login_rate_limited"]').count() == 1
    page.screenshot(path=shots / "rate-limited.png", full_page=True)


def test_a_forged_form_is_refused(page: Any, team: Team, shots: Path) -> None:
    team.user(team.owner, "owner", PASSWORD)
    sign_in(page, team.owner)
    page.wait_for_url(re.compile(r"/console$"))
    page.evaluate(
        "document.querySelector('form[action=\"/console/logout\"] input[name=csrf_token]').value = 'forged'"
    )
    page.get_by_role("button", name="Sign out").click()
    assert page.get_by_role("heading", level=1).inner_text() == "Not allowed"
    assert page.locator('[data-code="csrf_refused"]').count() == 1
    page.screenshot(path=shots / "csrf-refused.png", full_page=True)
    page.goto("/console")  # the forged request did not sign the user out
    assert page.get_by_role("heading", level=1).inner_text() == "Today"


def test_find_a_buyer_by_email_and_undo_a_merge(
    page: Any, team: Team, live_server: LiveServer, shots: Path
) -> None:
    team.user(team.owner, "owner", PASSWORD)
    with httpx.Client(base_url=live_server.url, headers=basic(team.write_key)) as api:
        for batch in (
            [msg(type="identify", userId="u-uma", anonymousId="laptop", traits={"email": "uma@example.com"},
                 messageId="i1")],
            [msg(type="identify", anonymousId="tablet", traits={"colour": "red"}, messageId="t1"),
             msg(type="track", anonymousId="tablet", event="Drop Viewed", messageId="t2")],
            [msg(type="track", userId="u-uma", anonymousId="tablet", event="Login", messageId="l1")],
        ):  # fmt: skip
            assert api.post("/v1/batch", json={"batch": batch}).status_code == 200
    sign_in(page, team.owner)
    page.wait_for_url(re.compile(r"/console$"))
    page.get_by_role("navigation", name="Console sections").get_by_role("link", name="Buyers").click()
    page.get_by_label("Find a buyer by e-mail, user id, anonymous id, phone or buyer id").fill(
        "Uma@Example.com"
    )
    page.get_by_role("button", name="Search").click()
    page.get_by_role("link", name="uma@example.com").click()  # the htmx result list
    page.wait_for_url(re.compile(r"/console/buyers/byr_"))
    identities = page.locator("#identities code").all_inner_texts()
    assert sorted(identities) == ["laptop", "tablet", "u-uma", "uma@example.com"]
    page.screenshot(path=shots / "01-buyer-merged.png", full_page=True)
    page.get_by_role("button", name="Undo the merge of").click()
    page.wait_for_url(re.compile(r"done=merge_undone"))
    assert "merge was undone" in page.locator("#done").inner_text()
    assert sorted(page.locator("#identities code").all_inner_texts()) == [
        "laptop",
        "u-uma",
        "uma@example.com",
    ]
    page.screenshot(path=shots / "02-merge-undone.png", full_page=True)
    page.get_by_role("link", name="← Buyers").click()
    page.get_by_label("Find a buyer by e-mail, user id, anonymous id, phone or buyer id").fill("tablet")
    page.get_by_role("button", name="Search").click()
    page.locator(".results a").click()
    page.wait_for_url(re.compile(r"/console/buyers/byr_"))
    assert sorted(page.locator("#identities code").all_inner_texts()) == ["tablet"]


def test_an_analyst_is_refused_buyer_pages(page: Any, team: Team, shots: Path) -> None:
    team.user(team.analyst, "analyst", PASSWORD)
    sign_in(page, team.analyst)
    page.wait_for_url(re.compile(r"/console$"))
    page.get_by_role("navigation", name="Console sections").get_by_role("link", name="Buyers").click()
    assert page.get_by_role("heading", level=1).inner_text() == "Not allowed"
    assert "your role (analyst) cannot do this" in page.get_by_role("alert").inner_text()
    page.screenshot(path=shots / "role-refused.png", full_page=True)


def test_the_console_fits_a_phone(browser: Any, live_server: LiveServer, team: Team, shots: Path) -> None:
    team.user(team.owner, "owner", PASSWORD)
    context = browser.new_context(base_url=live_server.url, viewport={"width": 375, "height": 740},
                                  is_mobile=True, has_touch=True)  # fmt: skip
    try:
        phone = context.new_page()
        sign_in(phone, team.owner)
        phone.wait_for_url(re.compile(r"/console$"))
        width = phone.evaluate("document.documentElement.scrollWidth")
        assert width <= 375  # no sideways scrolling of the page itself
        phone.keyboard.press("Tab")  # the first stop is the skip link
        assert phone.evaluate("document.activeElement.textContent") == "Skip to content"
        phone.screenshot(path=shots / "phone-home.png", full_page=True)
    finally:
        context.close()


def test_docs_render_offline(page: Any, shots: Path) -> None:
    requested: list[str] = []
    page.on("request", lambda r: requested.append(r.url))
    page.goto("/docs")
    page.locator(".swagger-ui .info .title").wait_for()
    assert "offerloop" in page.locator(".swagger-ui .info .title").inner_text()
    base = page.url.rsplit("/docs", 1)[0]
    assert [u for u in requested if not u.startswith(base)] == []
    page.screenshot(path=shots / "docs.png")
