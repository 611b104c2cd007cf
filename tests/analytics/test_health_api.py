"""GET /v1/health/{models,drift,alerts} and the health gauges of /metrics: exact figures over HTTP, bounded and
validated parameters (422, never 500), secret key only, and another workspace sees nothing."""

from __future__ import annotations

import math
import re
from datetime import UTC, timedelta
from types import SimpleNamespace

import pytest
from prometheus_client import generate_latest
from sqlalchemy import delete
from tests.analytics.test_health_service import buyer, home_log, ope_log, population
from tests.conftest import basic, bearer

from offerloop.analytics import health
from offerloop.core.clock import utcnow
from offerloop.db.uow import Database
from offerloop.models import BuyerFeatures, Workspace
from offerloop.workspaces import service as workspace_service


def _midnight(days_ago: int):
    now = utcnow()
    return now.replace(hour=0, minute=0, second=0, microsecond=0, tzinfo=UTC) - timedelta(days=days_ago)


def test_models_over_http(client, db, workspace, other_workspace, secret_headers):
    with db.write() as session:
        home_log(session, workspace.id, _midnight(3))  # three full days ending yesterday
        ope_log(session, workspace.id, utcnow())
    r = client.get("/v1/health/models", params={"placement": "home", "days": 4, "min_decisions": 1},
                   headers=secret_headers)  # fmt: skip
    assert r.status_code == 200, r.text
    body = r.json()
    assert [d["model"]["decisions"] for d in body["daily"]] == [2, 2, 1, 0]
    assert [d["holdout"]["rate"] for d in body["daily"]] == [1.0, None, None, None]
    assert body["model"] == {"decisions": 5, "closed": 4, "rewarded": 2, "reward_sum": 3.5, "rate": 0.875}
    assert body["relative_lift"] == -0.125
    assert body["alerts"] == [
        {"kind": "reward_drop", "subject": "home", "value": -0.125, "threshold": -0.1, "severity": "alert"}
    ]
    assert body["ope"]["policy"] == "model" and body["ope"]["change"] is None
    ope = client.get("/v1/health/models", params={"placement": "ope", "days": 3, "policy": "rules_only",
                                                  "estimator": "snips"}, headers=secret_headers).json()  # fmt: skip
    assert ope["ope"]["change"] == -0.5
    assert ope["ope"]["previous"]["policies"]["rules_only"]["snips"] == 1.0
    assert [a["kind"] for a in ope["alerts"]] == ["ope_drop"]
    # every placement together: "email" adds one model decision on the second day
    pooled = client.get("/v1/health/models", params={"days": 4}, headers=secret_headers).json()
    assert pooled["placement"] is None and pooled["model"]["decisions"] == 6
    other = client.get("/v1/health/models", headers=bearer(other_workspace.secret_key)).json()
    assert other["model"]["decisions"] == 0 and other["holdout"]["decisions"] == 0
    assert other["ope"]["current"]["decisions"] == 0 and other["alerts"] == []


def test_drift_and_alerts_over_http(client, db, workspace, other_workspace, secret_headers):
    with db.write() as session:
        population(session, workspace.id, utcnow())
        home_log(session, workspace.id, _midnight(3))
        buyer(session, other_workspace.id, utcnow() - timedelta(days=1), 5, "z")
    r = client.get("/v1/health/drift", params={"bins": 2, "min_buyers": 10}, headers=secret_headers)
    assert r.status_code == 200, r.text
    body = r.json()
    orders = next(f for f in body["features"] if f["feature"] == "orders")
    assert orders["psi"] == pytest.approx(0.3 * math.log(4), abs=1e-15)
    assert body["persona_mix"]["psi"] == pytest.approx(0.3 * math.log(4), abs=1e-15)
    assert [(a["kind"], a["subject"]) for a in body["alerts"]] == [
        ("feature_drift", "orders"), ("persona_mix", "persona_mix"),
    ]  # fmt: skip
    # narrower windows: the reference buyers (10 days ago) fall outside a 2-day reference window
    narrow = client.get("/v1/health/drift", params={"reference_days": 2, "current_days": 7},
                        headers=secret_headers).json()  # fmt: skip
    assert narrow["persona_mix"]["reference_n"] == 0 and narrow["persona_mix"]["psi"] is None

    alerts = client.get("/v1/health/alerts", params={"days": 4, "min_buyers": 10, "min_decisions": 1},
                        headers=secret_headers)  # fmt: skip
    assert alerts.status_code == 200, alerts.text
    assert [(a["kind"], a["subject"], a["severity"]) for a in alerts.json()["alerts"]] == [
        ("feature_drift", "orders", "alert"), ("persona_mix", "persona_mix", "alert"),
        ("reward_drop", "home", "alert"),
    ]  # fmt: skip
    assert alerts.json()["thresholds"]["min_buyers"] == 10
    assert client.get("/v1/health/alerts", headers=secret_headers).json()["alerts"] == []  # the defaults: 30
    other = bearer(other_workspace.secret_key)
    assert client.get("/v1/health/alerts", params={"min_buyers": 1, "min_decisions": 1},
                      headers=other).json()["alerts"] == []  # fmt: skip
    seen = client.get("/v1/health/drift", headers=other).json()
    assert [p["persona"] for p in seen["persona_mix"]["personas"]] == ["z"]
    assert all(f["reference_n"] == 0 for f in seen["features"])


@pytest.mark.parametrize("route", ["/v1/health/models", "/v1/health/drift", "/v1/health/alerts"])
def test_bad_parameters_and_keys(client, workspace, secret_headers, route):
    common = [
        {"psi_watch": 0.5, "psi_alert": 0.2}, {"psi_watch": "nan"}, {"psi_alert": 0}, {"psi_alert": "inf"},
        {"reward_drop": 2}, {"ope_drop": -1}, {"min_decisions": 0}, {"min_buyers": 10**12}, {"min_buyers": "x"},
    ]  # fmt: skip
    specific = {
        "/v1/health/models": [{"days": 0}, {"days": 91}, {"days": "abc"}, {"placement": ""},
                              {"placement": "x" * 65}, {"policy": "best"}, {"estimator": "mean"}],
        "/v1/health/drift": [{"reference_days": 0}, {"reference_days": 366}, {"current_days": 91}, {"bins": 1},
                             {"bins": 51}, {"max_buyers": 0}, {"max_buyers": 10**9}],
        "/v1/health/alerts": [{"days": -1}, {"reference_days": "1e400"}, {"current_days": 0}, {"policy": ""}],
    }  # fmt: skip
    for params in common + specific[route]:
        r = client.get(route, params=params, headers=secret_headers)
        assert r.status_code == 422, (params, r.text)
        assert r.json()["error"]["code"]
    r = client.get(route, params={"psi_watch": 0.5, "psi_alert": 0.2}, headers=secret_headers)
    assert r.json()["error"]["code"] == "invalid_thresholds"
    assert (
        client.get(route, params={"psi_watch": 0.3, "psi_alert": 0.3}, headers=secret_headers).status_code
        == 200
    )
    assert client.get(route).status_code == 401
    assert client.get(route, headers=basic(workspace.write_key)).status_code == 403


def _gauge(text: str, name: str, **labels: str) -> float | None:
    for line in text.splitlines():
        if line.startswith(name + "{"):
            found = dict(re.findall(r'(\w+)="([^"]*)"', line[: line.index("}")]))
            if found == labels:
                return float(line.rsplit(" ", 1)[1])
    return None


def test_metrics_gauges(client, db, workspace, other_workspace, monkeypatch):
    health.forget_cache()
    # Only this test's two workspaces: a scrape computes the stalest first within its time budget, and other
    # tests' committed workspaces (race tests, live servers) would come first on a busy machine.
    mine = [SimpleNamespace(id=workspace.id), SimpleNamespace(id=other_workspace.id)]
    monkeypatch.setattr(health.workspace_service, "list_workspaces", lambda *, session: mine)
    monkeypatch.setattr(health, "SCRAPE_BUDGET_S", 3600.0)  # both computed in this one scrape, however slow
    with db.write() as session:
        for _ in range(3):  # 30 buyers a window: the default minimum for an alert
            population(session, workspace.id, utcnow())
    text = client.get("/metrics").text
    psi = 0.3 * math.log(4)
    assert _gauge(text, "offerloop_persona_mix_psi", workspace=workspace.id) == pytest.approx(psi)
    assert _gauge(text, "offerloop_feature_psi", workspace=workspace.id, feature="visits") == 0.0
    orders = _gauge(text, "offerloop_feature_psi", workspace=workspace.id, feature="orders")
    assert orders is not None and orders > 0.25  # deciles: see test_health_service
    assert _gauge(text, "offerloop_health_alerts", workspace=workspace.id, kind="persona_mix") == 1.0
    assert _gauge(text, "offerloop_health_alerts", workspace=workspace.id, kind="feature_drift") == 1.0
    assert _gauge(text, "offerloop_health_alerts", workspace=workspace.id, kind="reward_drop") == 0.0
    assert _gauge(text, "offerloop_health_alerts", workspace=other_workspace.id, kind="persona_mix") == 0.0
    assert _gauge(text, "offerloop_persona_mix_psi", workspace=other_workspace.id) is None  # no personas
    health.forget_cache()


def test_metrics_work_is_bounded_and_cached(db, workspace, other_workspace, monkeypatch):
    """A scrape recomputes stale workspaces only within its time budget (at least one), the stalest first, and
    a workspace's figures are kept for CACHE_TTL_S."""
    health.forget_cache()
    # Only this test's two workspaces (the shared PostgreSQL test database holds other tests' committed ones).
    mine = [SimpleNamespace(id=workspace.id), SimpleNamespace(id=other_workspace.id)]
    monkeypatch.setattr(health.workspace_service, "list_workspaces", lambda *, session: mine)
    ticks = iter(range(0, 10_000))
    clock = lambda: float(next(ticks))  # noqa: E731  every reading one second later: the budget is spent at once
    with db.write() as session:
        population(session, workspace.id, utcnow())
        population(session, other_workspace.id, utcnow())
    health.refresh_metrics(db, clock=clock)
    assert len(health._cache) == 1  # one workspace per scrape when each takes longer than the budget
    first = next(iter(health._cache))
    health.refresh_metrics(db, clock=clock)
    assert set(health._cache) == {workspace.id, other_workspace.id}  # the never-computed one next
    stamp = dict(health._cache)
    health.refresh_metrics(db, clock=clock)  # both were computed seconds ago: nothing recomputed
    assert health._cache == stamp
    later = iter(range(1_000, 10_000))
    health.refresh_metrics(db, clock=lambda: float(next(later)))  # past the TTL: the stalest again
    assert health._cache[first] != stamp[first] and health._cache[first][0] >= 1_000
    health.forget_cache()


def test_metrics_sweep_runs_in_a_background_thread(engine):
    """Over an engine (a server), the scrape starts the sweep in a thread and publishes what is cached; the
    next scrape publishes the sweep's figures. Committed for real: the workspace is deleted afterwards."""
    db = Database(engine)
    health.forget_cache()
    with db.write() as session:
        ws = workspace_service.create_workspace(session=session, name="Swept in the background").id
        for _ in range(3):
            population(session, ws, utcnow())
    try:
        health.refresh_metrics(db)
        health.wait_for_sweep()
        assert ws in health._cache
        health.refresh_metrics(db)  # fresh: no new sweep needed, the figures are published
        text = generate_latest().decode()
        assert _gauge(text, "offerloop_persona_mix_psi", workspace=ws) == pytest.approx(0.3 * math.log(4))
        assert _gauge(text, "offerloop_health_alerts", workspace=ws, kind="persona_mix") == 1.0
    finally:
        health.forget_cache()  # and its gauges
        with db.write() as session:
            session.execute(delete(Workspace).where(Workspace.id == ws))


def test_one_workspace_failing_does_not_stop_the_others(client, db, workspace, other_workspace):
    health.forget_cache()
    with db.write() as session:
        population(session, workspace.id, utcnow())
        population(session, other_workspace.id, utcnow())
        broken = buyer(session, other_workspace.id, utcnow() - timedelta(hours=1), 1, None)
        session.flush()
        session.get(BuyerFeatures, broken).state = ["not", "a", "state"]  # type: ignore[union-attr]
    r = client.get("/metrics")
    assert r.status_code == 200
    assert _gauge(r.text, "offerloop_persona_mix_psi", workspace=workspace.id) == pytest.approx(
        0.3 * math.log(4)
    )
    assert _gauge(r.text, "offerloop_persona_mix_psi", workspace=other_workspace.id) is None
    assert health._cache[other_workspace.id][1] is None  # retried once its entry is CACHE_TTL_S old
    health.forget_cache()


def test_the_gauges_can_be_turned_off(db: Database, workspace) -> None:
    health._cache.clear()
    health.FEATURE_PSI.clear()
    health.refresh_metrics(db, every_s=0)
    assert health._cache == {}  # nothing computed, nothing published
    assert "offerloop_feature_psi{" not in generate_latest().decode()
