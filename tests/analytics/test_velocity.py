"""Persona conversion velocity: Kaplan-Meier by hand, time to first purchase, persona LTV, offer lift."""

from __future__ import annotations

import math
from datetime import UTC, datetime

import pytest
from fastapi.testclient import TestClient
from tests.analytics.helpers import decision, persona_change
from tests.analytics.test_customer_analytics import build
from tests.conftest import bearer

from offerloop.analytics import velocity
from offerloop.db.uow import Database
from offerloop.offers import service as offers_service
from offerloop.workspaces.schemas import WorkspaceCreated

CATALOG = """offers:
  - key: coaching
    kind: product
    title: "Coaching for pros"
    prices: {USD: 1000}
    persona_fit: [pro]
  - key: guide
    kind: product
    title: "A guide for everyone"
    prices: {USD: 500}
"""


def test_kaplan_meier_by_hand() -> None:
    # times 1 2 2 3 4 5; purchased at 1, 2, 3 and 5; censored at 2 and 4
    curve = velocity.kaplan_meier([1, 2, 2, 3, 4, 5], [True, True, False, True, False, True])
    assert [(p.days, p.at_risk, p.purchased, p.censored) for p in curve] == [
        (1, 6, 1, 0), (2, 5, 1, 1), (3, 3, 1, 0), (4, 2, 0, 1), (5, 1, 1, 0),
    ]  # fmt: skip
    # S = 5/6, 5/6 * 4/5 = 2/3, 2/3 * 2/3 = 4/9, 4/9 (only a censoring), 4/9 * 0
    assert [p.survival for p in curve] == pytest.approx(
        [5 / 6, 2 / 3, 4 / 9, 4 / 9, 0.0], rel=1e-12, abs=1e-15
    )
    assert velocity.quantile_day(curve, 0.5) == 3  # S(3) = 4/9
    assert velocity.quantile_day(curve, 0.25) == 5
    # S exactly 0.5 is the median; nobody purchased: no median
    half = velocity.kaplan_meier([2, 7], [True, False])
    assert half[0].survival == 0.5 and velocity.quantile_day(half, 0.5) == 2
    assert velocity.quantile_day(velocity.kaplan_meier([3, 3], [False, False]), 0.5) is None
    assert velocity.kaplan_meier([], []) == []


def test_velocity_per_persona(db: Database, client: TestClient, workspace: WorkspaceCreated) -> None:
    ws = workspace.id
    build(db, ws)  # the purchases of test_customer_analytics; the data's end is 2026-04-01
    persona_change(db, ws, "b1", "pro", "2026-01-01T00:00")  # first purchase after: 2026-01-05 -> 4 days
    persona_change(db, ws, "b1", "pro", "2026-03-01T00:00")  # not b1's first assignment to pro
    persona_change(db, ws, "b2", "pro", "2026-01-08T00:00")  # 2026-01-10 -> 2 days
    persona_change(db, ws, "b3", "pro", "2026-03-15T00:00")  # no purchase after: censored at 17 days
    persona_change(db, ws, "b7", "hobby", "2026-01-07T09:00")  # the same day, an hour later: day 0
    persona_change(db, ws, "nb1", "pro", "2026-03-22T05:00")  # never purchased: censored at 10 days
    body = client.get("/v1/analytics/velocity", headers=bearer(workspace.secret_key))
    assert body.status_code == 200, body.text
    out = body.json()
    assert out["as_of"] == "2026-04-01"
    hobby, pro = out["personas"]
    assert pro == {
        "persona": "pro", "buyers": 4, "purchased": 2, "median_days": 4, "p75_days": None,
        "survival": [
            {"days": 2, "at_risk": 4, "purchased": 1, "censored": 0, "survival": 3 / 4},
            {"days": 4, "at_risk": 3, "purchased": 1, "censored": 0, "survival": 1 / 2},
            {"days": 10, "at_risk": 2, "purchased": 0, "censored": 1, "survival": 1 / 2},
            {"days": 17, "at_risk": 1, "purchased": 0, "censored": 1, "survival": 1 / 2},
        ],
        # b1 3500 + b2 4000 after their first assignment, over 4 buyers
        "ltv_minor": {"USD": 1875}, "revenue_minor": {"USD": 7500},
    }  # fmt: skip
    assert hobby == {
        "persona": "hobby", "buyers": 1, "purchased": 1, "median_days": 0, "p75_days": 0,
        "survival": [{"days": 0, "at_risk": 1, "purchased": 1, "censored": 0, "survival": 0.0}],
        "ltv_minor": {"USD": 500}, "revenue_minor": {"USD": 500},
    }  # fmt: skip
    # an earlier end: b2's purchase is on it, b1's is after it (censored at 3 days), b3 was not assigned yet
    with db.read() as session:
        early = velocity.velocity(
            session=session, workspace_id=ws, as_of=datetime(2026, 1, 4, tzinfo=UTC).date()
        )
    pro_early = next(p for p in early.personas if p.persona == "pro")
    assert (pro_early.buyers, pro_early.purchased, pro_early.median_days) == (1, 0, None)  # nb1 is later too
    assert [(p.days, p.censored) for p in pro_early.survival] == [(3, 1)]


def test_offer_lift_of_persona_specific_offers(db: Database, workspace: WorkspaceCreated) -> None:
    ws = workspace.id
    with db.write() as session:
        offers_service.load_catalog(session=session, workspace_id=ws, text=CATALOG)
    for reward in (1.0, 1.0, 1.0, 0.0):
        decision(db, ws, "coaching", reward)
    for reward in (1.0, 0.0, 0.0, 0.0, None):  # None: its window ended without an order
        decision(db, ws, "guide", reward)
    decision(db, ws, "guide", None, window_ends="2030-01-01")  # still open: not counted
    decision(db, ws, "not-an-offer", 1.0)  # an action that is no offer: not counted
    with db.read() as session:
        lift = velocity.offer_lift(session=session, workspace_id=ws, now=datetime(2026, 6, 1, tzinfo=UTC))
    half = 1.959963984540054 * math.sqrt(0.75 * 0.25 / 4 + 0.2 * 0.8 / 5)
    assert lift.model_dump() == {
        "persona_specific_shown": 4, "persona_specific_converted": 3, "generic_shown": 5, "generic_converted": 1,
        "persona_specific_rate": 0.75, "generic_rate": 0.2, "lift": 0.75 - 0.2,
        "ci95": [0.75 - 0.2 - half, 0.75 - 0.2 + half],
    }  # fmt: skip
    assert abs(half - 0.5504499) < 1e-6


def test_velocity_without_data(db: Database, workspace: WorkspaceCreated) -> None:
    with db.read() as session:
        out = velocity.velocity(session=session, workspace_id=workspace.id)
    assert out.personas == [] and out.as_of is None
    assert out.offer_lift.lift is None and out.offer_lift.ci95 is None
