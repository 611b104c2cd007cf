"""The console's heavy reports over HTTP: a report never computed in a large workspace is queued and its page
polls for it; a slow one is shown from its snapshot with its age and a button to compute it again (CSRF-checked,
any role, back only to a console page); a kept error is a clear 4xx; a fragment stays a fragment."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from datetime import timedelta

import pytest
from fastapi.testclient import TestClient
from tests.analytics.helpers import add_buyers, add_order
from tests.analytics.test_customer_analytics import build
from tests.console.helpers import sign_in_as

from offerloop.api.app import create_app
from offerloop.config import Settings
from offerloop.core.clock import utcnow
from offerloop.db.uow import Database
from offerloop.jobs import runner
from offerloop.reports import service, tasks  # noqa: F401  (tasks: registers the job kind)

COHORTS = "/console/analytics/cohorts?periods=3"


@pytest.fixture
def slow_client(db: Database, settings: Settings, monkeypatch) -> Iterator[TestClient]:
    """Every report counts as slow (inline budget 0 s) and every workspace as large: nothing computed on view."""
    monkeypatch.setattr(service, "INLINE_BUYERS", 0)
    app = create_app(settings.model_copy(update={"console_report_inline_s": 0.0}), db=db)
    with TestClient(app, raise_server_exceptions=False) as c:
        yield c


def _refresh(db: Database) -> list[str]:
    ran = runner.run_due(
        db, owner="test", now=utcnow() + timedelta(seconds=1), only=(service.JOB_KIND,), limit=10
    )
    return [r.status for r in ran]


def _cohort_rows(html: str) -> list[str]:
    return re.findall(r'<tr data-cohort="([^"]+)">', html)


def test_queued_then_shown_with_its_age_then_computed_again_on_request(slow_client, db, workspace) -> None:
    build(db, workspace.id)
    csrf = sign_in_as(slow_client, db, workspace.id, "reviewer")  # every role may ask: it changes no data
    first = slow_client.get(COHORTS)
    assert (
        first.status_code == 200 and 'data-report="queued"' in first.text and _cohort_rows(first.text) == []
    )
    # the page polls itself and swaps in its own report frame
    assert re.search(
        r'hx-get="/console/analytics/cohorts\?periods=3" hx-trigger="load delay:2s" '
        r'hx-target="closest .report-frame" hx-select=".report-frame" hx-swap="outerHTML"',
        first.text,
    )
    assert _refresh(db) == ["done"]

    shown = slow_client.get(COHORTS)
    assert 'data-report="snapshot"' in shown.text and "Computed just now" in shown.text
    assert _cohort_rows(shown.text) == ["2026-01", "2026-02", "2026-03", "2026-04"]
    report = re.search(r'name="report" value="([^"]+)"', shown.text)
    assert report is not None
    params = json.loads(report.group(1).replace("&#34;", '"'))
    assert params == {"kind": "cohorts", "by": "first_purchase_month", "periods": 3}

    add_buyers(db, workspace.id, "n1")
    add_order(db, workspace.id, "n1", "2026-05-02T10:00", 900)
    assert _cohort_rows(slow_client.get(COHORTS).text)[-1] == "2026-04"  # the snapshot, until computed again

    form = {"csrf_token": csrf, "report": json.dumps(params), "back": COHORTS}
    asked = slow_client.post("/console/reports/refresh", data=form, follow_redirects=False)
    assert asked.status_code == 303 and asked.headers["location"] == COHORTS
    refreshing = slow_client.get(COHORTS)
    assert 'data-report="refreshing"' in refreshing.text and 'hx-trigger="load delay:5s"' in refreshing.text
    assert _refresh(db) == ["done"]
    assert _cohort_rows(slow_client.get(COHORTS).text)[-1] == "2026-05"


def test_the_refresh_button_refuses_what_a_client_makes_up(slow_client, db, workspace) -> None:
    csrf = sign_in_as(slow_client, db, workspace.id, "analyst")
    good = json.dumps({"kind": "velocity"})
    post = slow_client.post
    assert post("/console/reports/refresh", data={"report": good}, follow_redirects=False).status_code == 403
    for bad in (
        "",
        "{",
        json.dumps({"kind": "nope"}),
        json.dumps({"kind": "cohorts", "periods": 99}),
        "x" * 5000,
        json.dumps({"kind": "attribution", "start": "1900-01-01"}),
        json.dumps({"kind": "ltv", "calibration_end": "2999-01-01"}),
    ):
        r = post("/console/reports/refresh", data={"csrf_token": csrf, "report": bad}, follow_redirects=False)
        assert r.status_code == 422 and 'data-code="' in r.text, bad[:40]
    for back in ("https://evil.example/", "//evil.example/console", "/v1/buyers", "/console/x\nLocation: y",
                 "/console/../../etc/passwd"):  # fmt: skip
        r = post("/console/reports/refresh", data={"csrf_token": csrf, "report": good, "back": back},
                 follow_redirects=False)  # fmt: skip
        assert r.status_code == 303 and r.headers["location"] == "/console", back
    assert _refresh(db) == ["done"]  # one velocity job, however many times it was asked for


def test_a_kept_error_is_a_clear_4xx(slow_client, db, workspace) -> None:
    sign_in_as(slow_client, db, workspace.id, "analyst")
    url = "/console/analytics/ltv?fit=1&calibration_end=2026-02-28"
    assert 'data-report="queued"' in slow_client.get(url).text
    assert _refresh(db) == ["done"]
    r = slow_client.get(url)
    assert r.status_code == 422 and 'data-code="ltv_not_enough_buyers"' in r.text


def test_fragments_stay_fragments_and_workspaces_apart(slow_client, db, workspace, other_workspace) -> None:
    sign_in_as(slow_client, db, workspace.id, "owner")
    hx = {"HX-Request": "true"}
    for url in ("/console/personas/velocity", "/console/decisions/evaluation?days=7",
                "/console/analytics?start=2026-11-01&end=2026-11-30"):  # fmt: skip
        r = slow_client.get(url, headers=hx)
        assert r.status_code == 200 and "<html" not in r.text and 'data-report="queued"' in r.text, url
    assert sorted(_refresh(db)) == ["done", "done", "done"]
    assert 'data-report="snapshot"' in slow_client.get("/console/personas/velocity", headers=hx).text
    # another workspace's team sees its own report (queued), never this one's snapshot
    other = TestClient(slow_client.app, raise_server_exceptions=False)
    sign_in_as(other, db, other_workspace.id, "owner")
    assert 'data-report="queued"' in other.get("/console/personas/velocity", headers=hx).text


def test_a_workspace_cannot_queue_reports_without_end(slow_client, db, workspace, monkeypatch) -> None:
    monkeypatch.setattr(service, "MAX_QUEUED", 2)
    sign_in_as(slow_client, db, workspace.id, "analyst")
    for url in ("/console/personas/velocity", COHORTS):
        assert 'data-report="queued"' in slow_client.get(url).text
    assert 'data-report="queued"' in slow_client.get(COHORTS).text  # already queued: asking again is fine
    r = slow_client.get("/console/analytics/cohorts?periods=6")  # a third report while two wait
    assert (
        r.status_code == 429 and 'data-code="too_many_reports"' in r.text and r.headers["retry-after"] == "30"
    )
    assert sorted(_refresh(db)) == ["done", "done"]
    assert 'data-report="queued"' in slow_client.get("/console/analytics/cohorts?periods=6").text
