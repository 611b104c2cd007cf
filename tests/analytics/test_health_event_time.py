"""Drift windows on event time (issue 13, item 6): a buyer belongs to the window of their latest event's own
time, bounded by its receipt; events sent through the tracking API, read back over HTTP."""

from __future__ import annotations

import math
from datetime import UTC, datetime, timedelta
from typing import Any

import orjson
import pytest
from sqlalchemy import select
from tests.analytics.test_health_service import SPEC, decision

from offerloop.analytics import health
from offerloop.core.clock import utcnow
from offerloop.features import service as features_service
from offerloop.models import Buyer, BuyerFeatures, Decision


def _order(user: str, at: datetime, n: int, **extra: Any) -> dict[str, Any]:
    return {"type": "track", "userId": user, "event": "Order Completed", "properties": {"total_minor": 100},
            "timestamp": at.isoformat(), "messageId": f"{user}-{n}", **extra}  # fmt: skip


def _send(client, headers, messages: list[dict[str, Any]]) -> None:
    r = client.post("/v1/batch", headers=headers, content=orjson.dumps({"batch": messages}))
    assert r.status_code == 200, r.text


def _event_at(db, workspace_id: str, user: str) -> datetime | None:
    with db.read() as session:
        return session.execute(
            select(BuyerFeatures.event_at)
            .join(Buyer, Buyer.id == BuyerFeatures.buyer_id)
            .where(Buyer.workspace_id == workspace_id, Buyer.user_id == user)
        ).scalar_one()


def test_windows_follow_event_time_not_receipt(client, db, workspace, other_workspace, write_headers,
                                               secret_headers):  # fmt: skip
    with db.write() as session:
        features_service.set_spec(session=session, workspace_id=workspace.id, source=SPEC, actor="test")
    now = utcnow()
    # All received now. 10 buyers whose orders happened 10 days ago (a late offline flush: reference window),
    # 1 order each; 10 whose orders happened yesterday, 3 orders each (current window).
    old = [_order(f"old{i}", now - timedelta(days=10, minutes=i), 0) for i in range(10)]
    new = [
        _order(f"new{i}", now - timedelta(days=1, minutes=i, seconds=n), n)
        for i in range(10)
        for n in range(3)
    ]
    _send(client, write_headers, old + new)
    r = client.get("/v1/health/drift", params={"bins": 2, "min_buyers": 10}, headers=secret_headers)
    assert r.status_code == 200, r.text
    body = r.json()
    orders = next(f for f in body["features"] if f["feature"] == "orders")
    assert (orders["reference_n"], orders["current_n"]) == (10, 10)
    assert orders["reference_shares"] == [1.0, 0.0] and orders["current_shares"] == [0.0, 1.0]
    # two bins, each empty on one side: (1 - eps) ln(1 / eps) twice
    assert orders["psi"] == pytest.approx(2 * (1 - 1e-4) * math.log(1e4), rel=1e-12)
    assert orders["severity"] == "alert"
    # the window a buyer is in is their latest event's time, to the microsecond
    assert _event_at(db, workspace.id, "old3") == now - timedelta(days=10, minutes=3)
    # an older event arriving late does not move a buyer back
    _send(client, write_headers, [_order("new0", now - timedelta(days=20), 9)])
    assert _event_at(db, workspace.id, "new0") == now - timedelta(days=1)
    other = client.get("/v1/health/drift", headers={"Authorization": f"Bearer {other_workspace.secret_key}"})
    assert other.json()["features"] == [] or all(f["current_n"] == 0 for f in other.json()["features"])


def test_a_future_event_time_is_bounded_by_its_receipt(client, db, workspace, write_headers):
    with db.write() as session:
        features_service.set_spec(session=session, workspace_id=workspace.id, source=SPEC, actor="test")
    before = utcnow()
    # A client clock 50 years ahead, no sentAt to correct it: the event time is clamped to the receive time.
    _send(client, write_headers, [_order("skewed", datetime(2076, 1, 1, tzinfo=UTC), 0)])
    after = utcnow()
    at = _event_at(db, workspace.id, "skewed")
    assert at is not None and before <= at <= after
    with db.read() as session:
        # in the current window now; 8 days later, in the reference window: it does not stay "current" forever
        now_report = health.drift(session=session, workspace_id=workspace.id, bins=2, now=after)
        later = health.drift(
            session=session, workspace_id=workspace.id, bins=2, now=after + timedelta(days=8)
        )
    orders = next(f for f in now_report.features if f.feature == "orders")
    assert (orders.reference_n, orders.current_n) == (0, 1)
    orders = next(f for f in later.features if f.feature == "orders")
    assert (orders.reference_n, orders.current_n) == (1, 0)
    # a future event time never lands a buyer after the receipt: a window ending before receipt excludes it
    with db.read() as session:
        earlier = health.drift(session=session, workspace_id=workspace.id, bins=2, now=before)
    assert all(f.current_n == 0 and f.reference_n == 0 for f in earlier.features)


def test_event_time_is_min_of_timestamp_and_receipt():
    received = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)
    assert features_service.event_time(datetime(2026, 12, 1, tzinfo=UTC), received) == datetime(
        2026, 12, 1, tzinfo=UTC
    )
    assert features_service.event_time(datetime(2099, 1, 1, tzinfo=UTC), received) == received
    assert features_service.event_time(datetime(2026, 12, 6, 11, 0), received) == datetime(2026, 12, 6, 11, 0,
                                                                                          tzinfo=UTC)  # fmt: skip


def test_a_reward_after_the_reports_now_is_not_counted_yet(db, workspace):
    day = datetime(2026, 12, 4, tzinfo=UTC)
    with db.write() as session:
        decision(session, workspace.id, day + timedelta(hours=10), reward=1.0)
        decision(session, workspace.id, day + timedelta(hours=11), reward=0.0)
        session.flush()
        # the second decision's outcome happened at 20:00: a report as of 18:00 still sees it open
        rows = session.scalars(select(Decision).where(Decision.workspace_id == workspace.id)).all()
        late = next(d for d in rows if d.reward == 0.0)
        late.reward_at = day + timedelta(hours=20)
        session.flush()
        at_18 = health.models_health(session=session, workspace_id=workspace.id, placement="home", days=1,
                                     now=day + timedelta(hours=18))  # fmt: skip
        at_21 = health.models_health(session=session, workspace_id=workspace.id, placement="home", days=1,
                                     now=day + timedelta(hours=21))  # fmt: skip
    assert at_18.model.model_dump() == {
        "decisions": 2,
        "closed": 1,
        "rewarded": 1,
        "reward_sum": 1.0,
        "rate": 1.0,
    }
    assert at_21.model.model_dump() == {
        "decisions": 2,
        "closed": 2,
        "rewarded": 1,
        "reward_sum": 1.0,
        "rate": 0.5,
    }
