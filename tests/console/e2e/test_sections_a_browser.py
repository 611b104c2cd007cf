"""Personas, Decisions, Journeys and Settings in a real headless Chromium against `offerloop serve`: an owner
visits the four pages (the persona chart and the htmx fragments load), pauses a journey, and edits the persona
templates — a lint error shown inline, then fixed and saved."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

import pytest
from tests.conftest import LiveServer

from ..test_sections_a import TEMPLATES
from .test_browser_review_refund import KeyedTeam, nav
from .test_console_browser import sign_in

pytestmark = [pytest.mark.server, pytest.mark.browser]
JOURNEY = """name: welcome
trigger: {event: Signed Up}
steps:
  - send: {channel: email, subject: "Welcome", text: "Hello"}
  - wait: 2d
"""


@pytest.fixture
def team(live_server: LiveServer) -> KeyedTeam:
    return KeyedTeam(live_server)


def test_visit_the_four_sections_pause_a_journey_and_fix_a_template(
    page: Any, team: KeyedTeam, live_server: LiveServer, shots: Path
) -> None:
    with team.api() as api:
        assert api.put("/v1/personas/templates", json=TEMPLATES).status_code == 200
        assert api.put("/v1/journeys/welcome", json={"yaml": JOURNEY}).status_code == 200
    team.identify("ana", name="Ana Lima")  # a buyer: the templates give her a persona
    sign_in(page, team.member("owner"))
    page.wait_for_url(re.compile(r"/console$"))

    nav(page, "Personas")
    assert page.get_by_role("heading", level=1).inner_text() == "Personas"
    page.locator("#velocity table, #velocity #no-velocity").first.wait_for()  # the htmx fragment
    page.screenshot(path=shots / "01-personas.png", full_page=True)

    nav(page, "Decisions")
    assert page.get_by_role("heading", level=1).inner_text() == "Decisions"
    page.locator("#evaluation #eval-method").wait_for()
    page.screenshot(path=shots / "02-decisions.png", full_page=True)

    nav(page, "Settings")
    assert page.get_by_role("heading", level=1).inner_text() == "Settings"
    assert page.locator("#keys tbody tr").count() == 2 and team.secret_key not in page.content()
    page.screenshot(path=shots / "03-settings.png", full_page=True)

    nav(page, "Journeys")
    journey = page.locator('[data-journey="welcome"]')
    assert journey.get_attribute("data-paused") == "no"
    assert journey.locator('tr[data-step="0"] td').nth(1).inner_text() == "send email: Welcome"
    page.get_by_role("button", name="Pause welcome").click()
    page.wait_for_url(re.compile(r"done=paused"))
    assert page.get_by_role("status").inner_text().startswith("Paused")
    assert page.locator('[data-journey="welcome"]').get_attribute("data-paused") == "yes"
    page.screenshot(path=shots / "04-journey-paused.png", full_page=True)
    with team.api() as api:
        assert api.get("/v1/journeys/welcome").json()["paused"] is True

    nav(page, "Personas")
    editor = page.get_by_label("Templates (YAML)")
    assert "name: superfan" in editor.input_value()
    editor.fill(TEMPLATES.replace("weight: 2", "weight: -2"))
    page.get_by_role("button", name="Save").click()
    problems = page.locator("#templates-problems li")
    problems.first.wait_for()
    assert problems.all_inner_texts() == [
        "<personas>:5: personas[0].signals[0].weight: must be more than 0, got -2"
    ]
    assert page.get_by_role("alert").inner_text() == "1 problem: nothing was saved."
    page.screenshot(path=shots / "05-template-lint-error.png", full_page=True)
    with team.api() as api:
        assert api.get("/v1/personas/templates").json()["version"] == 1
    editor = page.get_by_label("Templates (YAML)")
    editor.fill(TEMPLATES.replace("weight: 2", "weight: 3"))
    page.get_by_role("button", name="Check").click()
    assert page.locator("#templates-result").inner_text() == "No problems found: save to use them."
    page.get_by_role("button", name="Save").click()
    page.wait_for_url(re.compile(r"done=saved-v2"))
    assert "persona templates version 2" in page.get_by_role("status").inner_text()
    page.screenshot(path=shots / "06-template-saved.png", full_page=True)
    with team.api() as api:
        stored = api.get("/v1/personas/templates").json()
    assert stored["version"] == 2 and stored["templates"]["personas"][0]["signals"][0]["weight"] == 3
