"""Browser tests: Debian's headless Chromium (/usr/bin/chromium) driven by Playwright against a running
`offerloop serve`. Never a downloaded browser: CI installs the `chromium` package (.ci/run); without it
these tests are skipped, saying why."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from tests.conftest import LiveServer

CHROMIUM = Path(os.environ.get("OFFERLOOP_CHROMIUM", "/usr/bin/chromium"))
ARGS = ["--headless", "--no-sandbox", "--disable-gpu", "--disable-background-networking"]

if not CHROMIUM.exists():
    pytest.skip(
        f"{CHROMIUM} is missing: install Debian's chromium package (apt-get install -y chromium; .ci/run does)",
        allow_module_level=True,
    )
sync_api = pytest.importorskip("playwright.sync_api", reason="the dev extra (playwright) is not installed")


# Per module, not per session: while Playwright's sync API is open the main thread has a running event loop,
# and every later test that calls asyncio.run (tests/delivery, tests/live) failed after the browser tests.
@pytest.fixture(scope="module")
def browser() -> Iterator[Any]:
    with sync_api.sync_playwright() as p:
        chromium = p.chromium.launch(executable_path=str(CHROMIUM), args=ARGS)
        yield chromium
        chromium.close()


@pytest.fixture
def shots(request: pytest.FixtureRequest, tmp_path: Path) -> Path:
    """Where a test saves its screenshots: $OFFERLOOP_SCREENSHOTS/<test> (CI keeps them), else tmp_path."""
    base = os.environ.get("OFFERLOOP_SCREENSHOTS")
    folder = Path(base) / request.node.name if base else tmp_path / "screenshots"
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@pytest.fixture
def page(browser: Any, live_server: LiveServer) -> Iterator[Any]:
    context = browser.new_context(base_url=live_server.url, viewport={"width": 1280, "height": 900})
    tab = context.new_page()
    tab.set_default_timeout(20_000)
    problems: list[str] = []
    tab.on("console", lambda m: problems.append(m.text) if m.type == "error" else None)
    tab.on("pageerror", lambda e: problems.append(str(e)))
    yield tab
    context.close()
    # every page ran its shipped script under the console's CSP: no violation, no script error (a failed
    # resource the test provoked, such as a refused form's 4xx, is the browser's "Failed to load" line)
    assert [p for p in problems if not p.startswith("Failed to load resource")] == []


class Team:
    """A workspace with its keys and console users, made through the CLI as an operator would."""

    def __init__(self, server: LiveServer) -> None:
        self.server = server
        created = json.loads(server.cli("workspace", "create", "Browser Creator", "--json").stdout)
        self.id: str = created["id"]
        self.write_key: str = created["write_key"]
        # addresses of this workspace only: on PostgreSQL the server shares the test database with other tests
        self.owner, self.analyst = f"owner.{self.id}@example.com", f"analyst.{self.id}@example.com"

    def user(self, email: str, role: str, password: str) -> None:
        subprocess.run(
            [sys.executable, "-m", "offerloop.cli.main", "user", "create", "-w", self.id, "--email", email,
             "--role", role],
            input=password + "\n", env=self.server.env(), capture_output=True, text=True, check=True,
        )  # fmt: skip


@pytest.fixture
def team(live_server: LiveServer) -> Team:
    return Team(live_server)
