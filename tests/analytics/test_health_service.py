"""Model and data health (issue 13, item 6): exact figures on hand-built decisions, features and personas."""

from __future__ import annotations

import itertools
import math
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from offerloop.analytics import health
from offerloop.analytics.health_schemas import Thresholds
from offerloop.features import service as features_service
from offerloop.features.state import new_state
from offerloop.ml.drift import EPSILON
from offerloop.models import Buyer, BuyerFeatures, BuyerPersona, Decision

NOW = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)
SPEC = {
    "features": [
        {"name": "orders", "kind": "count", "match": {"event": "Order Completed"}},
        {"name": "visits", "kind": "count", "match": {"type": "page"}},
    ]
}
LOOSE = health.DEFAULTS.model_copy(update={"min_decisions": 1, "min_buyers": 10})
_ids = itertools.count()


def _id(prefix: str) -> str:
    # "h" keeps these apart from the seeded decision ids of tests/decisions (committed by some of its tests on a
    # shared PostgreSQL database, they collided with these in one session)
    return f"{prefix}_h{next(_ids):025d}"


def buyer(session: Any, workspace_id: str, at: datetime, orders: float, persona: str | None) -> str:
    """A buyer whose features (``orders``) and persona were last updated at ``at``."""
    buyer_id = _id("byr")
    session.add(
        Buyer(id=buyer_id, workspace_id=workspace_id, created_at=at, first_seen_at=at, last_seen_at=at)
    )
    state = new_state()
    state["f"]["orders:count"] = orders
    session.add(BuyerFeatures(buyer_id=buyer_id, workspace_id=workspace_id, state=state, spec_version=1,
                              updated_at=at, event_at=at))  # fmt: skip
    if persona is not None:
        session.add(BuyerPersona(buyer_id=buyer_id, workspace_id=workspace_id, persona=persona, confidence=0.9,
                                 posterior={persona: 0.9}, reasons=[], templates_version=1, updated_at=at))  # fmt: skip
    return buyer_id


def population(session: Any, workspace_id: str, now: datetime) -> None:
    """Reference window (8-35 days ago at the defaults): orders 1..10, personas 5 a / 5 b; current (last 7
    days): orders 1 x 8, 6, 7, personas 8 a / 2 b; one buyer older than both windows."""
    features_service.set_spec(session=session, workspace_id=workspace_id, source=SPEC, actor="test")
    for i in range(10):
        buyer(session, workspace_id, now - timedelta(days=10, minutes=i), i + 1, "a" if i < 5 else "b")
        buyer(session, workspace_id, now - timedelta(days=1, minutes=i), [1, 1, 1, 1, 1, 1, 1, 1, 6, 7][i],
              "a" if i < 8 else "b")  # fmt: skip
    buyer(session, workspace_id, now - timedelta(days=40), 1000, "c")
    session.flush()


def decision(
    session: Any, workspace_id: str, at: datetime, *, placement: str = "home", policy: str = "model",
    holdout: bool = False, version: int = 1, reward: float | None = None, chosen: int | None = None,
    propensity: float | None = None,
) -> None:  # fmt: skip
    candidates = [{"id": "a0", "features": {}}, {"id": "a1", "features": {}}] if chosen is not None else []
    session.add(Decision(
        id=_id("dec"), workspace_id=workspace_id, buyer_id=None, placement=placement, created_at=at,
        policy=policy, holdout=holdout, model_version=version, persona=None, context={}, candidates=candidates,
        items=[], excluded=[], chosen_key=None if chosen is None else f"a{chosen}", chosen_index=chosen,
        propensity=propensity, reward=reward, reward_at=None if reward is None else at,
    ))  # fmt: skip


def home_log(session: Any, workspace_id: str, day: datetime) -> None:
    """Placement "home" over three UTC days from midnight ``day``, and one "email" decision."""
    d = lambda hours, **kw: decision(session, workspace_id, day + timedelta(hours=hours), **kw)  # noqa: E731
    d(10, reward=1.0)
    d(11, reward=0.0)
    d(12, reward=1.0, holdout=True, policy="rules", version=0)
    d(24 + 10)  # still open
    d(24 + 11, reward=0.0)
    d(48 + 9, reward=2.5)
    d(48 + 9, reward=1.0, version=0)  # cold start: not the model's
    d(48 + 9, reward=1.0, policy="rules_no_consent", version=0)  # neither group
    d(-0.02, reward=1.0)  # 23:58 the day before: before the period
    d(24, reward=1.0, placement="email")
    session.flush()


def ope_log(session: Any, workspace_id: str, now: datetime) -> None:
    """Placement "ope": a rules log whose rules-only SNIPS falls from 1.0 (3-6 days before ``now``) to 0.5
    (the last 3 days)."""
    for window, start in ((0, now - timedelta(days=5)), (1, now - timedelta(days=2))):
        for i in range(80):
            chosen = 0 if i < 40 else 1
            reward = 1.0 if chosen == 0 and (window == 0 or i < 20) else 0.0
            decision(session, workspace_id, start + timedelta(seconds=i), placement="ope", policy="rules",
                     version=0, reward=reward, chosen=chosen, propensity=0.5)  # fmt: skip
    session.flush()


def decision_log(session: Any, workspace_id: str, now: datetime) -> None:
    home_log(session, workspace_id, datetime(2026, 12, 4, tzinfo=UTC))  # days=3 from NOW: Dec 4, 5, 6
    ope_log(session, workspace_id, now)


def test_reward_rate_by_day_model_vs_holdout(db, workspace, other_workspace):
    with db.write() as session:
        decision_log(session, workspace.id, NOW)
        report = health.models_health(session=session, workspace_id=workspace.id, placement="home", days=3,
                                      thresholds=LOOSE, now=NOW)  # fmt: skip
        strict = health.models_health(session=session, workspace_id=workspace.id, placement="home", days=3,
                                      now=NOW)  # fmt: skip
        other = health.models_health(session=session, workspace_id=other_workspace.id, placement="home", days=3,
                                     now=NOW)  # fmt: skip
    assert report.start == datetime(2026, 12, 4, tzinfo=UTC) and report.end == NOW
    rows = [(r.day.isoformat(), r.model.model_dump(), r.holdout.model_dump()) for r in report.daily]
    empty = {"decisions": 0, "closed": 0, "rewarded": 0, "reward_sum": 0.0, "rate": None}
    assert rows == [
        ("2026-12-04", {"decisions": 2, "closed": 2, "rewarded": 1, "reward_sum": 1.0, "rate": 0.5},
         {"decisions": 1, "closed": 1, "rewarded": 1, "reward_sum": 1.0, "rate": 1.0}),
        ("2026-12-05", {"decisions": 2, "closed": 1, "rewarded": 0, "reward_sum": 0.0, "rate": 0.0}, empty),
        ("2026-12-06", {"decisions": 1, "closed": 1, "rewarded": 1, "reward_sum": 2.5, "rate": 2.5}, empty),
    ]  # fmt: skip
    assert report.model.model_dump() == {"decisions": 5, "closed": 4, "rewarded": 2, "reward_sum": 3.5,
                                         "rate": 0.875}  # fmt: skip
    assert report.holdout.rate == 1.0 and report.relative_lift == -0.125
    assert [a.model_dump() for a in report.alerts] == [
        {"kind": "reward_drop", "subject": "home", "value": -0.125, "threshold": -0.1, "severity": "alert"}
    ]
    assert strict.alerts == []  # 4 and 1 closed decisions: below the default minimum of 30
    assert other.model.decisions == 0 and other.daily[0].model.rate is None and other.relative_lift is None


def test_ope_over_a_moving_window(db, workspace):
    with db.write() as session:
        decision_log(session, workspace.id, NOW)
        report = health.ope(session=session, workspace_id=workspace.id, placement="ope", days=3, now=NOW,
                            policy="rules_only", estimator="snips")  # fmt: skip
        model = health.ope(session=session, workspace_id=workspace.id, placement="ope", days=3, now=NOW)
        alerts = health.check(session=session, workspace_id=workspace.id, days=3, thresholds=LOOSE, now=NOW,
                              policy="rules_only", estimator="ips").alerts.alerts  # fmt: skip
    assert (report.current.start, report.current.end) == (NOW - timedelta(days=3), NOW)
    assert (report.previous.start, report.previous.end) == (NOW - timedelta(days=6), NOW - timedelta(days=3))
    cur, prev = report.current.policies["rules_only"], report.previous.policies["rules_only"]
    # rules-only shows a0: weight 1 / 0.5 = 2 on the 40 a0 rows, 0 on the a1 rows
    assert (prev.ips, prev.snips, prev.matched, prev.scored, prev.enough_data) == (1.0, 1.0, 40, 80, True)
    assert (cur.ips, cur.snips, cur.matched, cur.enough_data) == (0.5, 0.5, 40, True)
    assert report.change == -0.5 and (report.current.decisions, report.previous.decisions) == (80, 80)
    assert model.change is None and "model" not in model.current.policies  # no snapshot: no model estimate
    ope = [a.model_dump() for a in alerts if a.kind == "ope_drop"]
    assert ope == [
        {"kind": "ope_drop", "subject": "ope", "value": -0.5, "threshold": -0.2, "severity": "alert"}
    ]


def test_feature_and_persona_mix_drift(db, workspace, other_workspace):
    with db.write() as session:
        population(session, workspace.id, NOW)
        buyer(session, other_workspace.id, NOW - timedelta(days=1), 500, "z")
        session.flush()
        two = health.drift(session=session, workspace_id=workspace.id, bins=2, thresholds=LOOSE, now=NOW)
        deciles = health.drift(session=session, workspace_id=workspace.id, now=NOW)
        other = health.drift(session=session, workspace_id=other_workspace.id, now=NOW)
    assert two.reference.start == NOW - timedelta(days=35) and two.current.start == NOW - timedelta(days=7)
    by_name = {f.feature: f for f in two.features}
    assert sorted(by_name) == ["orders", "signal_confidence", "suppressed_share", "visits"]
    orders = by_name["orders"]
    assert (orders.reference_n, orders.current_n, orders.bins) == (10, 10, ["5.5", "+inf"])
    assert (orders.reference_shares, orders.current_shares) == ([0.5, 0.5], [0.8, 0.2])
    assert orders.psi == pytest.approx(0.3 * math.log(4), abs=1e-15) and orders.severity == "alert"
    assert by_name["visits"].psi == 0.0 and by_name["visits"].severity is None
    mix = two.persona_mix
    assert (mix.reference_n, mix.current_n, mix.severity) == (10, 10, "alert")
    assert mix.psi == pytest.approx(0.3 * math.log(4), abs=1e-15)
    assert [(p.persona, p.reference, p.current, p.reference_share, p.current_share) for p in mix.personas] == [
        ("a", 5, 8, 0.5, 0.8), ("b", 5, 2, 0.5, 0.2),
    ]  # fmt: skip
    assert [(a.kind, a.subject, a.severity, a.threshold) for a in two.alerts] == [
        ("feature_drift", "orders", "alert", 0.25), ("persona_mix", "persona_mix", "alert", 0.25),
    ]  # fmt: skip
    # deciles: 8 of 10 current values in the first bin, one each in the 6th and 7th, seven bins empty
    d = {f.feature: f for f in deciles.features}["orders"]
    assert d.current_shares == [0.8, 0, 0, 0, 0, 0.1, 0.1, 0, 0, 0]
    expected = 0.7 * math.log(8) + 7 * (EPSILON - 0.1) * math.log(EPSILON / 0.1)
    assert d.psi == pytest.approx(expected, rel=1e-12)
    assert d.severity is None and deciles.alerts == []  # 10 buyers a window: below the default 30
    assert other.features[0].reference_n == 0 and all(f.psi is None for f in other.features)
    assert other.persona_mix.psi is None and [p.persona for p in other.persona_mix.personas] == ["z"]


def test_max_buyers_keeps_the_latest_of_each_window(db, workspace):
    with db.write() as session:
        population(session, workspace.id, NOW)
        report = health.drift(session=session, workspace_id=workspace.id, bins=2, max_buyers=2, now=NOW)
    orders = {f.feature: f for f in report.features}["orders"]
    # the two latest of each window: reference orders 1 and 2 (cut 1.5), current 1 and 1
    assert (orders.reference_n, orders.current_n, orders.bins) == (2, 2, ["1.5", "+inf"])
    assert orders.current_shares == [1.0, 0.0]


def test_thresholds_change_the_severity(db, workspace):
    with db.write() as session:
        population(session, workspace.id, NOW)
        high = Thresholds(**{**LOOSE.model_dump(), "psi_watch": 0.3, "psi_alert": 0.5})
        report = health.drift(session=session, workspace_id=workspace.id, bins=2, thresholds=high, now=NOW)
    # 0.3 ln 4 = 0.416: at or above 0.3, below 0.5
    assert [(a.subject, a.severity, a.threshold) for a in report.alerts] == [
        ("orders", "watch", 0.3), ("persona_mix", "watch", 0.3),
    ]  # fmt: skip
