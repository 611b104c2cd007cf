"""An automated accessibility check: axe-core (shipped with the tests, tests/console/e2e/vendor) run in a real
headless Chromium on the console's main pages — every section of the nav, a buyer's page, the sign-in page —
finds no serious or critical violation of WCAG 2.0/2.1 A and AA. Each page is also screenshotted."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.conftest import LiveServer, basic, msg

from .conftest import Team
from .test_console_browser import PASSWORD, sign_in

pytestmark = [pytest.mark.server, pytest.mark.browser]
AXE = (Path(__file__).parent / "vendor" / "axe-4.14.1.min.js").read_text()
TAGS = ["wcag2a", "wcag2aa", "wcag21a", "wcag21aa"]


def violations(page: Any) -> list[str]:
    """axe's serious and critical violations on the page as loaded, one line each (rule, impact, targets)."""
    page.evaluate(AXE)
    found = page.evaluate(
        "async (tags) => (await axe.run(document, {runOnly: {type: 'tag', values: tags}})).violations"
        ".map(v => ({id: v.id, impact: v.impact, help: v.help, targets: v.nodes.map(n => n.target.join(' '))}))",
        TAGS,
    )
    return [
        f"{v['id']} ({v['impact']}): {v['help']} — {v['targets'][:5]}"
        for v in found
        if v["impact"] in {"serious", "critical"}
    ]


def test_main_pages_have_no_serious_accessibility_violation(
    browser: Any, live_server: LiveServer, team: Team, shots: Path
) -> None:
    team.user(team.owner, "owner", PASSWORD)
    with httpx.Client(base_url=live_server.url, headers=basic(team.write_key)) as api:
        batch = [msg(type="identify", userId="u-ada", traits={"email": "ada@example.com"}, messageId="a1"),
                 msg(type="track", userId="u-ada", event="Lesson Started", messageId="a2")]  # fmt: skip
        assert api.post("/v1/batch", json={"batch": batch}).status_code == 200
    # the test's own script runs in this context only: the console's CSP allows no injected script
    context = browser.new_context(base_url=live_server.url, viewport={"width": 1280, "height": 900},
                                  bypass_csp=True)  # fmt: skip
    try:
        page = context.new_page()
        page.set_default_timeout(20_000)
        found: dict[str, list[str]] = {}
        page.goto("/console/login")
        found["/console/login"] = violations(page)
        sign_in(page, team.owner)
        page.wait_for_url(re.compile(r"/console$"))
        nav = page.get_by_role("navigation", name="Console sections")
        paths = nav.get_by_role("link").evaluate_all("links => links.map(a => a.pathname)")
        assert paths[0] == "/console" and len(paths) == 11
        page.goto("/console/buyers?q=ada%40example.com")  # one match: its page
        page.wait_for_url(re.compile(r"/console/buyers/byr_"))
        buyer = page.evaluate("location.pathname")
        for path in [*paths, buyer]:
            page.goto(path)
            page.wait_for_load_state("networkidle")  # htmx fragments (the home page's alerts) loaded
            found[path] = violations(page)
            page.screenshot(path=shots / (path.strip("/").replace("/", "-") + ".png"), full_page=True)
        assert {p: v for p, v in found.items() if v} == {}
        assert len(found) == 13
    finally:
        context.close()


def test_the_check_finds_what_it_is_meant_to_find(browser: Any) -> None:
    """The check is not vacuous: a form field without a label and grey-on-white text are reported."""
    context = browser.new_context()
    try:
        page = context.new_page()
        page.set_content(
            '<html lang="en"><head><title>t</title></head><body><main><h1>t</h1>'
            '<p style="color:#bbb;background:#fff">faint text</p><input type="text"></main></body></html>'
        )
        assert sorted(line.split(" ", 1)[0] for line in violations(page)) == ["color-contrast", "label"]
    finally:
        context.close()
