"""The console's Personas, Decisions, Journeys and Settings pages over HTTP (TestClient, real database): what
each role sees, the template editor's lint and save, pausing a journey, rotating a key, webhooks; forbidden
actions (403), CSRF-less posts (403), bad parameters (4xx, never 500), another workspace's objects (404)."""

from __future__ import annotations

import re
from datetime import timedelta
from html import unescape

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from tests.analytics.helpers import add_buyers, set_persona
from tests.conftest import bearer
from tests.console.helpers import sign_in_as
from tests.delivery.test_journeys import ONBOARDING, identify, run_jobs, track

from offerloop import __version__
from offerloop.core.clock import utcnow
from offerloop.db.uow import Database
from offerloop.decisions import service as decisions_service
from offerloop.delivery.webhooks import service as webhooks_service
from offerloop.delivery.webhooks.schemas import EndpointCreate
from offerloop.models import AuditEntry, PersonaChange
from offerloop.workspaces.schemas import WorkspaceCreated

PAGES = ("/console/personas", "/console/decisions", "/console/journeys", "/console/settings")
TEMPLATES = """threshold: 0.5
personas:
  - name: superfan
    signals:
      - {feature: orders, gte: 2, weight: 2}
  - name: lurker
    signals:
      - {feature: orders, lte: 0, weight: 1}
"""
JOURNEY = """name: welcome
trigger: {event: Signed Up}
steps:
  - send: {channel: email, subject: "Welcome", text: "Hello"}
  - wait: 2d
  - send: {channel: email, subject: "Next step", text: "Here it is"}
"""


@pytest.fixture
def owner(client: TestClient, db: Database, workspace: WorkspaceCreated) -> str:
    return sign_in_as(client, db, workspace.id, "owner")


@pytest.fixture
def personas(db: Database, workspace: WorkspaceCreated) -> None:
    """b1 and b2 superfans, b3 a lurker now; b2 became a superfan 3 days ago (a lurker 10 days ago), b1 and b3
    entered their persona 10 days ago."""
    add_buyers(db, workspace.id, "b1", "b2", "b3")
    for buyer, persona in (("b1", "superfan"), ("b2", "superfan"), ("b3", "lurker")):
        set_persona(db, workspace.id, buyer, persona)
    now = utcnow()
    with db.write() as session:
        for buyer, before, after, days in (("b1", None, "superfan", 10), ("b3", None, "lurker", 10),
                                           ("b2", None, "lurker", 10), ("b2", "lurker", "superfan", 3)):  # fmt: skip
            session.add(PersonaChange(workspace_id=workspace.id, buyer_id=buyer, from_persona=before,
                                      to_persona=after, confidence=0.9, at=now - timedelta(days=days)))  # fmt: skip


def _held(html: str, persona: str) -> list[int]:
    row = re.search(rf'<tr data-persona="{persona}">(.*?)</tr>', html, re.S)
    assert row is not None, persona
    return [int(v) for v in re.findall(r'data-held="(\d+)"', row.group(1))]


def test_personas_page_draws_the_distribution_per_day(client, personas, owner) -> None:
    page = client.get("/console/personas", params={"bucket": "day", "periods": 12})
    assert page.status_code == 200
    # 12 days, today last: 11 days ago nobody; 10 days ago b1 a superfan, b2 and b3 lurkers; 3 days ago b2 moves
    assert _held(page.text, "superfan") == [0, 1, 1, 1, 1, 1, 1, 1, 2, 2, 2, 2]
    assert _held(page.text, "lurker") == [0, 2, 2, 2, 2, 2, 2, 2, 1, 1, 1, 1]
    svg = re.search(r'<svg class="chart" id="persona-chart".*?</svg>', page.text, re.S)
    assert svg is not None
    lines = re.findall(
        r'<polyline data-persona="(\w+)" stroke="(#[0-9a-f]{6})" points="([^"]+)"', svg.group(0)
    )
    assert [(p, c) for p, c, _ in lines] == [("superfan", "#1f5fa8"), ("lurker", "#b3470f")]
    assert all(len(points.split()) == 12 for _, _, points in lines)
    # the peak (2) is drawn at the top of the plot area (y = 12), nothing (0) on the axis (y = 232)
    assert lines[0][2].split()[-1].endswith(",12.0") and lines[0][2].split()[0].endswith(",232.0")
    assert 'hx-get="/console/personas/velocity"' in page.text
    weekly = client.get("/console/personas", params={"bucket": "week", "periods": 2})
    assert _held(weekly.text, "superfan")[-1] == 2


def test_velocity_fragment_and_a_fresh_workspace(client, owner) -> None:
    page = client.get("/console/personas")
    assert page.status_code == 200 and 'id="no-personas"' in page.text
    fragment = client.get("/console/personas/velocity", headers={"HX-Request": "true"})
    assert (
        fragment.status_code == 200 and "<html" not in fragment.text and 'id="no-velocity"' in fragment.text
    )


def test_template_editor_lints_then_saves(client, db, workspace, owner, secret_headers) -> None:
    broken = TEMPLATES.replace("weight: 2", "weight: -2").replace("lte: 0", "lte: zero")
    r = client.post(
        "/console/personas/templates", data={"csrf_token": owner, "action": "save", "source": broken}
    )
    assert r.status_code == 422
    problems = re.findall(r"<li>([^<]+)</li>", re.search(r'<ul class="problems" id="templates-problems">(.*?)</ul>',
                                                        r.text, re.S).group(1))  # fmt: skip
    assert problems == [
        "&lt;personas&gt;:5: personas[0].signals[0].weight: must be more than 0, got -2",
        "&lt;personas&gt;:8: personas[1].signals[0].lte: must be a number, got &#39;zero&#39;",
    ]
    assert 'aria-describedby="templates-problems" aria-invalid="true"' in r.text
    assert "weight: -2" in r.text  # the text is kept in the editor
    assert (
        client.get("/v1/personas/templates", headers=secret_headers).json()["version"] == 0
    )  # nothing saved
    checked = client.post("/console/personas/templates",
                          data={"csrf_token": owner, "action": "lint", "source": TEMPLATES})  # fmt: skip
    assert checked.status_code == 200 and "No problems found: save to use them." in checked.text
    saved = client.post("/console/personas/templates", data={"csrf_token": owner, "action": "save",
                                                             "source": TEMPLATES}, follow_redirects=False)  # fmt: skip
    assert (saved.status_code, saved.headers["location"]) == (
        303,
        "/console/personas?done=saved-v1#templates",
    )
    stored = client.get("/v1/personas/templates", headers=secret_headers).json()
    assert stored["version"] == 1 and [p["name"] for p in stored["templates"]["personas"]] == [
        "superfan",
        "lurker",
    ]
    page = client.get("/console/personas?done=saved-v1")
    assert "(version 1)" in page.text and "persona templates version 1" in page.text
    assert f"offerloop {__version__}</footer>" in page.text  # the templates' version is not offerloop's
    with db.read() as session:
        actions = session.scalars(
            select(AuditEntry.action).where(AuditEntry.workspace_id == workspace.id)
        ).all()
    assert "personas.update" in actions


def test_template_editor_input_is_checked(client, owner) -> None:
    url = "/console/personas/templates"
    assert client.post(url, data={"action": "save", "source": TEMPLATES}).status_code == 403  # no CSRF token
    assert (
        client.post(url, data={"csrf_token": owner, "action": "publish", "source": TEMPLATES}).status_code
        == 422
    )
    assert client.post(url, data={"csrf_token": owner, "action": "lint", "source": ""}).status_code == 422
    assert (
        client.post(url, data={"csrf_token": owner, "action": "lint", "source": "x" * 60_001}).status_code
        == 422
    )
    assert (
        client.post(url, data={"csrf_token": owner, "action": "lint", "source": "[1, 2"}).status_code == 422
    )
    assert client.post(url, data={"csrf_token": owner, "action": "lint", "source": "!!python/object:os.system x"}
                       ).status_code == 422  # fmt: skip
    for bad in ({"bucket": "month"}, {"periods": "1"}, {"periods": "999"}, {"periods": "x"}):
        assert client.get("/console/personas", params=bad).status_code == 422, bad


@pytest.mark.parametrize("role", ["reviewer", "analyst"])
def test_only_an_owner_saves_templates_but_everyone_checks(
    client, db, workspace, role, secret_headers
) -> None:
    token = sign_in_as(client, db, workspace.id, role)
    page = client.get("/console/personas")
    assert page.status_code == 200 and "Only an owner can save." in page.text
    assert 'value="save"' not in page.text
    r = client.post(
        "/console/personas/templates", data={"csrf_token": token, "action": "save", "source": TEMPLATES}
    )
    assert r.status_code == 403 and 'data-code="role_refused"' in r.text
    r = client.post(
        "/console/personas/templates", data={"csrf_token": token, "action": "lint", "source": TEMPLATES}
    )
    assert r.status_code == 200 and "No problems found." in r.text
    assert client.get("/v1/personas/templates", headers=secret_headers).json()["version"] == 0


@pytest.mark.parametrize("role", ["owner", "reviewer", "analyst"])
def test_every_page_renders_for_every_role(client, db, workspace, role) -> None:
    sign_in_as(client, db, workspace.id, role)
    titles = []
    for path in PAGES:
        r = client.get(path)
        assert r.status_code == 200, (path, r.text[:300])
        titles.append(re.search(r"<h1>([^<]+)</h1>", r.text).group(1))
        assert re.search(r'aria-current="page">([^<]+)<', r.text).group(1) == titles[-1]
        assert '<link rel="stylesheet" href="/console/static/sections_a.css' in r.text
    assert titles == ["Personas", "Decisions", "Journeys", "Settings"]
    assert client.get("/console/static/sections_a.css").status_code == 200


# -- decisions -------------------------------------------------------------------------------------------------

ACTIONS = [
    {"key": "pricing-101", "kind": "lesson", "title": "Pricing 101", "outcome": {"event": "Lesson Completed"},
     "priority": 5, "placements": ["home"], "persona_fit": ["lurker"]},
    {"key": "drop-jan", "kind": "offer", "title": "January drop", "outcome": {"event": "Order Completed"},
     "price_minor": 4900},
]  # fmt: skip


def test_decisions_page_shows_the_catalog_and_the_model_versions(
    client, db, workspace, owner, secret_headers
) -> None:
    r = client.put("/v1/actions", headers=secret_headers, json=ACTIONS)
    assert r.status_code == 200, r.text
    with db.write() as session:
        for note in ("first", "second"):
            decisions_service.publish(session=session, workspace_id=workspace.id, placement="home",
                                      policy=decisions_service.new_policy(), rewards_learned=40, note=note)  # fmt: skip
    page = client.get("/console/decisions")
    assert page.status_code == 200
    assert re.findall(r'data-action="([^"]+)"', page.text) == ["pricing-101", "drop-jan"]  # rules order
    assert re.findall(r'data-version="([^"]+)"', page.text) == ["home:2", "home:1"]  # newest first
    assert '<option value="home">home</option>' in page.text
    evaluation = client.get("/console/decisions/evaluation", params={"placement": "home", "days": 7},
                            headers={"HX-Request": "true"})  # fmt: skip
    assert evaluation.status_code == 200 and "<html" not in evaluation.text
    assert (
        'id="no-evaluation"' in evaluation.text
        and "0 rewarded decisions of the last 7 days" in evaluation.text
    )
    for bad in ({"days": "0"}, {"days": "366"}, {"placement": "a b"}, {"placement": "x" * 65}):
        assert client.get("/console/decisions/evaluation", params=bad).status_code == 422, bad
    assert client.get("/console/decisions", params={"cursor": "garbage!"}).status_code == 422


# -- journeys --------------------------------------------------------------------------------------------------


@pytest.fixture
def journey(client, secret_headers) -> str:
    r = client.put("/v1/journeys/welcome", headers=secret_headers, json={"yaml": JOURNEY})
    assert r.status_code == 200, r.text
    return "welcome"


def test_journeys_list_steps_and_pause_resume(client, db, workspace, journey, owner, secret_headers) -> None:
    page = client.get("/console/journeys")
    assert page.status_code == 200
    assert re.findall(r'data-journey="(\w+)" data-paused="(\w+)"', page.text) == [("welcome", "no")]
    assert re.findall(r'<tr data-step="(\w+)"><td>\w*</td><td><strong>([a-z ]+)</strong> ([^<]*)</td>', page.text) == [
        ("0", "send", "email: Welcome"), ("1", "wait", "2d"), ("2", "send", "email: Next step"),
    ]  # fmt: skip
    assert 'href="/console/journeys/welcome"' in page.text and 'id="messages"' in page.text
    r = client.post("/console/journeys/welcome/pause", data={"csrf_token": owner}, follow_redirects=False)
    assert (r.status_code, r.headers["location"]) == (303, "/console/journeys?done=paused#journey-welcome")
    assert client.get("/v1/journeys/welcome", headers=secret_headers).json()["paused"] is True
    after = client.get(r.headers["location"])
    assert re.findall(r'data-journey="(\w+)" data-paused="(\w+)"', after.text) == [("welcome", "yes")]
    assert ">Resume welcome</button>" in after.text
    r = client.post("/console/journeys/welcome/resume", data={"csrf_token": owner}, follow_redirects=False)
    assert (
        r.status_code == 303
        and client.get("/v1/journeys/welcome", headers=secret_headers).json()["paused"] is False
    )
    one = client.get("/console/journeys/welcome")
    assert one.status_code == 200 and "No runs." in one.text and 'data-paused="no"' in one.text
    assert client.post("/console/journeys/welcome/pause").status_code == 403  # no CSRF token
    assert client.post("/console/journeys/nope/pause", data={"csrf_token": owner}).status_code == 404
    assert client.post("/console/journeys/Bad%20Name/pause", data={"csrf_token": owner}).status_code == 422
    assert client.get("/console/journeys/nope").status_code == 404
    assert client.get("/console/journeys/welcome", params={"state": "asleep"}).status_code == 422
    assert client.get("/console/journeys/welcome", params={"cursor": "!!"}).status_code == 422


@pytest.mark.parametrize("role", ["reviewer", "analyst"])
def test_only_an_owner_pauses_and_an_analyst_sees_no_buyers(
    client, db, workspace, journey, role, secret_headers
) -> None:
    token = sign_in_as(client, db, workspace.id, role)
    page = client.get("/console/journeys")
    assert page.status_code == 200 and ">Pause welcome</button>" not in page.text
    r = client.post("/console/journeys/welcome/pause", data={"csrf_token": token})
    assert r.status_code == 403 and 'data-code="role_refused"' in r.text
    assert client.get("/v1/journeys/welcome", headers=secret_headers).json()["paused"] is False
    if role == "analyst":
        assert 'id="messages"' not in page.text and "owners and reviewers see them" in page.text
        assert client.get("/console/journeys/welcome").status_code == 403
    else:
        assert 'id="messages"' in page.text and client.get("/console/journeys/welcome").status_code == 200


def test_runs_are_counted_at_their_step_and_listed_with_their_messages(client, db, write_headers, secret_headers,
                                                                       owner) -> None:  # fmt: skip
    r = client.put("/v1/delivery/settings", headers=secret_headers,
                   json={"send_window": {"start": "00:00", "end": "00:00"}, "caps": {}, "overall_cap": None})  # fmt: skip
    assert r.status_code == 200, r.text
    assert (
        client.put("/v1/journeys/onboarding", headers=secret_headers, json={"yaml": ONBOARDING}).status_code
        == 200
    )
    for user in ("ann", "bob"):
        identify(client, write_headers, user, first_name=user.title())
        track(
            client,
            write_headers,
            user,
            "Order Completed",
            {"total_minor": 500, "offer": "Course"},
            f"o-{user}",
        )
    run_jobs(db, utcnow())  # both sent the welcome, now waiting at step 1 (wait: 2d)
    page = client.get("/console/journeys")
    steps = re.findall(
        r'<tr data-step="(\w+)">.*?<td class="num" data-state="active">(\d+)</td>', page.text, re.S
    )
    assert steps == [("0", "0"), ("1", "2"), ("2", "0"), ("total", "2")]
    branch = re.search(r'<tr data-step="2"><td>2</td><td><strong>branch</strong> ([^<]+)</td>', page.text)
    assert branch is not None and unescape(branch.group(1)) == 'when {"gte":2,"path":"features.orders"}'
    assert re.findall(r'<td data-status="(\w+)">', page.text) == ["sent", "sent"]  # the recent messages
    one = client.get("/console/journeys/onboarding")
    assert len(re.findall(r'<tr data-run="\d+">', one.text)) == 2
    assert re.findall(r'<td data-state="(\w+)">', one.text) == ["active", "active"]
    assert (
        client.get("/console/journeys/onboarding", params={"state": "completed"}).text.count("data-run=") == 0
    )
    assert "Welcome Bob" in one.text and "Welcome Ann" in one.text


def test_another_workspaces_journey_is_not_found(client, db, journey, other_workspace) -> None:
    token = sign_in_as(client, db, other_workspace.id, "owner")
    assert 'id="no-journeys"' in client.get("/console/journeys").text
    assert client.get("/console/journeys/welcome").status_code == 404
    r = client.post("/console/journeys/welcome/pause", data={"csrf_token": token})
    assert r.status_code == 404 and 'data-code="journey_not_found"' in r.text


# -- settings --------------------------------------------------------------------------------------------------


def test_settings_show_prefixes_and_rotate_a_key(client, db, workspace, owner) -> None:
    page = client.get("/console/settings")
    assert page.status_code == 200
    assert workspace.secret_key not in page.text and workspace.write_key not in page.text
    keys = re.findall(r'<tr data-key="(key_\w+)" data-status="live">', page.text)
    assert len(keys) == 2 and f"<code>{workspace.secret_key[:10]}…</code>" in page.text
    with db.read() as session:
        from offerloop.workspaces import service as workspace_service

        secret_id = next(k.id for k in workspace_service.list_keys(session=session, workspace_id=workspace.id)
                         if k.kind == "secret")  # fmt: skip
    url = f"/console/settings/keys/{secret_id}/rotate"
    refused = client.post(url, data={"csrf_token": owner})
    assert refused.status_code == 422 and "tick the box" in refused.text
    assert client.post(url, data={"confirm": "yes"}).status_code == 403  # no CSRF token
    rotated = client.post(url, data={"csrf_token": owner, "confirm": "yes"})
    assert rotated.status_code == 200 and rotated.headers["cache-control"] == "no-store"
    new = re.search(r'<code class="new-key" data-key="(key_\w+)">(sk_[^<]+)</code>', rotated.text)
    assert new is not None
    assert client.get("/v1/personas/templates", headers=bearer(workspace.secret_key)).status_code == 401
    assert client.get("/v1/personas/templates", headers=bearer(new.group(2))).status_code == 200
    again = client.get("/console/settings")
    assert new.group(2) not in again.text  # shown once
    assert f'<tr data-key="{secret_id}" data-status="revoked">' in again.text
    assert (
        client.post(url, data={"csrf_token": owner, "confirm": "yes"}).status_code == 409
    )  # already revoked
    assert client.post("/console/settings/keys/key_nope/rotate",
                       data={"csrf_token": owner, "confirm": "yes"}).status_code == 404  # fmt: skip
    with db.read() as session:
        actions = session.scalars(
            select(AuditEntry.action).where(AuditEntry.workspace_id == workspace.id)
        ).all()
    assert actions.count("key.rotate") == 1 and actions.count("key.revoke") == 1


def test_settings_webhooks_signals_mail_and_theme(client, db, workspace, owner) -> None:
    with db.write() as session:
        hook = webhooks_service.create_endpoint(session=session, workspace_id=workspace.id, allow_private=False,
                                                body=EndpointCreate(url="https://hooks.example.com/in"))  # fmt: skip
    page = client.get("/console/settings")
    assert f'<tr data-webhook="{hook.id}" data-enabled="yes">' in page.text and hook.secret not in page.text
    assert (
        re.search(r'data-figure="smtp">([^<]+)<', page.text).group(1).startswith("none: e-mails are captured")
    )
    assert re.findall(r'data-rule="\d+"', page.text) != [] or "No rules" in page.text
    assert "<dt>Name</dt><dd>default</dd>" in page.text
    url = f"/console/settings/webhooks/{hook.id}"
    r = client.post(url, data={"csrf_token": owner, "enabled": "no"}, follow_redirects=False)
    assert (r.status_code, r.headers["location"]) == (303, "/console/settings?done=webhook_disabled#webhooks")
    assert f'<tr data-webhook="{hook.id}" data-enabled="no">' in client.get(r.headers["location"]).text
    assert client.post(url, data={"csrf_token": owner, "enabled": "maybe"}).status_code == 422
    assert client.post(url, data={"enabled": "yes"}).status_code == 403
    assert client.post("/console/settings/webhooks/whe_nope", data={"csrf_token": owner, "enabled": "yes"}
                       ).status_code == 404  # fmt: skip
    assert client.get("/console/settings", params={"done": "x" * 41}).status_code == 422


def _editor_text(html: str, editor_id: str) -> str:
    found = re.search(rf'<textarea class="code" id="{editor_id}-source"[^>]*>(.*?)</textarea>', html, re.S)
    assert found is not None, editor_id
    return unescape(found.group(1))


def test_signal_rules_are_checked_then_saved(client, db, workspace, owner, secret_headers) -> None:
    text = _editor_text(client.get("/console/settings").text, "signal-rules")
    assert text.startswith("threshold: 0.5\n") and "weight: 10.0" in text
    url = "/console/settings/signals"
    bad = client.post(
        url,
        data={
            "csrf_token": owner,
            "action": "save",
            "source": text.replace("weight: 10.0", "weight: heavy", 1),
        },
    )
    assert bad.status_code == 422
    problems = re.findall(
        r"<li>([^<]+)</li>", re.search(r'id="signal-rules-problems">(.*?)</ul>', bad.text, re.S).group(1)
    )
    assert (
        len(problems) == 1
        and problems[0].startswith("&lt;signals&gt;:")
        and ": rules[0].weight: " in problems[0]
    )
    assert "weight: heavy" in _editor_text(bad.text, "signal-rules")
    assert client.get("/v1/signals", headers=secret_headers).json()["rules"][0]["weight"] == 10.0
    ok = client.post(url, data={"csrf_token": owner, "action": "save", "source": text.replace("weight: 10.0", "weight: 12.0", 1)},
                     follow_redirects=False)  # fmt: skip
    assert (ok.status_code, ok.headers["location"]) == (303, "/console/settings?done=signals-v1#signals")
    assert client.get("/v1/signals", headers=secret_headers).json()["rules"][0]["weight"] == 12.0
    page = client.get(ok.headers["location"])
    assert "Saved: signal rules version 1" in page.text and "weight: 12.0" in _editor_text(
        page.text, "signal-rules"
    )
    assert client.post(url, data={"action": "save", "source": text}).status_code == 403  # no CSRF token
    assert client.post(url, data={"csrf_token": owner, "action": "save", "source": "  "}).status_code == 422
    with db.read() as session:
        actions = session.scalars(
            select(AuditEntry.action).where(AuditEntry.workspace_id == workspace.id)
        ).all()
    assert actions.count("signals.update") == 1


@pytest.mark.parametrize("role", ["reviewer", "analyst"])
def test_settings_are_read_only_below_owner(client, db, workspace, role) -> None:
    token = sign_in_as(client, db, workspace.id, role)
    page = client.get("/console/settings")
    assert page.status_code == 200 and "/rotate" not in page.text
    with db.write() as session:
        hook = webhooks_service.create_endpoint(session=session, workspace_id=workspace.id, allow_private=False,
                                                body=EndpointCreate(url="https://hooks.example.com/in"))  # fmt: skip
    from offerloop.workspaces import service as workspace_service

    with db.read() as session:
        key_id = workspace_service.list_keys(session=session, workspace_id=workspace.id)[0].id
    r = client.post(f"/console/settings/keys/{key_id}/rotate", data={"csrf_token": token, "confirm": "yes"})
    assert r.status_code == 403 and 'data-code="role_refused"' in r.text
    r = client.post(f"/console/settings/webhooks/{hook.id}", data={"csrf_token": token, "enabled": "no"})
    assert r.status_code == 403
    text = _editor_text(page.text, "signal-rules")
    r = client.post("/console/settings/signals", data={"csrf_token": token, "action": "save", "source": text})
    assert r.status_code == 403 and 'data-code="role_refused"' in r.text
    checked = client.post(
        "/console/settings/signals", data={"csrf_token": token, "action": "lint", "source": text}
    )
    assert checked.status_code == 200 and 'id="signal-rules-result">No problems found.</p>' in checked.text
    with db.read() as session:
        assert all(
            k.revoked_at is None
            for k in workspace_service.list_keys(session=session, workspace_id=workspace.id)
        )


def test_another_workspaces_key_and_webhook_are_not_found(client, db, workspace, other_workspace) -> None:
    from offerloop.workspaces import service as workspace_service

    with db.write() as session:
        hook = webhooks_service.create_endpoint(session=session, workspace_id=workspace.id, allow_private=False,
                                                body=EndpointCreate(url="https://hooks.example.com/in"))  # fmt: skip
        key_id = workspace_service.list_keys(session=session, workspace_id=workspace.id)[0].id
    token = sign_in_as(client, db, other_workspace.id, "owner")
    page = client.get("/console/settings")
    assert key_id not in page.text and hook.id not in page.text
    r = client.post(f"/console/settings/keys/{key_id}/rotate", data={"csrf_token": token, "confirm": "yes"})
    assert r.status_code == 404 and 'data-code="key_not_found"' in r.text
    assert client.post(f"/console/settings/webhooks/{hook.id}", data={"csrf_token": token, "enabled": "no"}
                       ).status_code == 404  # fmt: skip
