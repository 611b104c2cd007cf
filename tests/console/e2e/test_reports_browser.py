"""A heavy report in a real headless Chromium: a server whose reports all count as slow (inline budget 0 s) and
that runs no jobs itself. The cohorts page shows its snapshot with its age; after a new purchase the owner presses
"Compute again", the page says it is computing and polls; a worker process computes the report and the new cohort
appears without a reload. Screenshots of each step."""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import orjson
import pytest
from sqlalchemy import Engine
from tests.attribution.test_store import IG, _order, _page
from tests.conftest import LiveServer, basic, running_server

from .test_browser_review_refund import KeyedTeam, team  # noqa: F401  (fixture)
from .test_console_browser import sign_in

pytestmark = [pytest.mark.server, pytest.mark.browser]


class SlowReportsServer(LiveServer):
    def env(self) -> dict[str, str]:
        return {**super().env(), "OFFERLOOP_WORKER_THREADS": "0", "OFFERLOOP_CONSOLE_REPORT_INLINE_S": "0"}


@pytest.fixture
def live_server(tmp_path: Path, engine: Engine, database_url: str) -> Iterator[LiveServer]:
    yield from running_server(SlowReportsServer, tmp_path, engine, database_url)


def _send(team: KeyedTeam, batch: list[dict[str, Any]]) -> None:  # noqa: F811
    sent = httpx.post(f"{team.server.url}/v1/batch", headers=basic(team.secret_key),
                      content=orjson.dumps({"batch": batch}), timeout=30)  # fmt: skip
    assert sent.status_code == 200, sent.text


def _cohorts(page: Any) -> list[str]:
    return [row.get_attribute("data-cohort") for row in page.locator("#cohorts tbody tr").all()]


def test_compute_a_report_again_and_watch_it_arrive(page: Any, team: KeyedTeam, shots: Path) -> None:  # noqa: F811
    _send(
        team, [_page("u1", IG, "2026-11-01T10:00:00Z", 1), _order("u1", "o1", 5000, "2026-11-04T10:00:00Z")]
    )
    sign_in(page, team.member("owner"))
    page.wait_for_url(re.compile(r"/console$"))

    page.goto(
        "/console/analytics/cohorts?periods=3"
    )  # never computed, a small workspace: computed for this view
    assert _cohorts(page) == ["2026-11"]
    _send(team, [_order("u2", "o2", 3000, "2026-12-01T10:00:00Z")])
    page.reload()  # known slow now (0 s budget): the snapshot, with its age
    frame = page.locator(".report-frame .report-status")
    assert frame.get_attribute("data-report") == "snapshot" and "Computed" in frame.inner_text()
    assert _cohorts(page) == ["2026-11"]
    page.screenshot(path=str(shots / "01-snapshot.png"), full_page=True)

    page.get_by_role("button", name="Compute again").click()
    page.wait_for_url(re.compile(r"/console/analytics/cohorts\?periods=3$"))
    assert page.locator(".report-status").get_attribute("data-report") == "refreshing"
    assert "computing it again now" in page.locator(".report-status").inner_text()
    page.screenshot(path=str(shots / "02-refreshing.png"), full_page=True)

    team.server.cli("worker", "--once")  # what a worker process does: the queued report is computed
    page.locator('#cohorts tr[data-cohort="2026-12"]').wait_for(timeout=20_000)  # swapped in by the poll
    assert _cohorts(page) == ["2026-11", "2026-12"]
    assert page.locator(".report-status").get_attribute("data-report") == "snapshot"
    assert page.url.endswith("/console/analytics/cohorts?periods=3")  # no navigation: htmx swapped the frame
    page.screenshot(path=str(shots / "03-computed.png"), full_page=True)
