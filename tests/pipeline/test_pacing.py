"""How much a consumer step takes on: on SQLite about ``step_s`` seconds of events by its stage's recent
pace (the step holds the one writer lock that acknowledgements need), on PostgreSQL always the batch — and
either way every event is applied exactly once, in order."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

import pytest
from sqlalchemy import select

from offerloop.core.clock import utcnow
from offerloop.db.uow import Database
from offerloop.events import service as event_service
from offerloop.jobs import runner as jobs_runner
from offerloop.models import BuyerFeatures, Event, Job
from offerloop.pipeline import log as pipeline_log
from offerloop.pipeline import pacing, runner


@pytest.fixture(autouse=True)
def _pace(monkeypatch: pytest.MonkeyPatch) -> dict[str, float]:
    pace: dict[str, float] = {}
    monkeypatch.setattr(pacing, "_pace", pace)
    return pace


def test_the_step_size_follows_the_stage_pace_on_sqlite_only(db: Database, _pace: dict[str, float]) -> None:
    with db.read() as session:
        sqlite = session.get_bind().dialect.name == "sqlite"
        assert pacing.step_size(session, "identity", batch=2000, step_s=0.05) == 2000  # no pace yet
        pacing.paced("identity", 19, 19.0)  # too few events to tell the pace: ignored
        assert _pace == {}
        pacing.paced("identity", 100, 0.1)  # 1 ms an event: 50 events' worth, raised to the floor
        assert _pace == {"identity": 0.001}
        assert pacing.step_size(session, "identity", batch=2000, step_s=0.05) == (200 if sqlite else 2000)
        assert pacing.step_size(session, "identity", batch=50, step_s=0.05) == 50  # never above the batch
        assert pacing.step_size(session, "identity", batch=2000, step_s=0) == 2000  # 0: pacing off
        pacing.paced("identity", 1000, 0.0)  # a moving average: 0.7 of the last pace, 0.3 of this step's
        assert _pace["identity"] == pytest.approx(0.0007)
        assert pacing.step_size(session, "identity", batch=2000, step_s=0.5) == (714 if sqlite else 2000)
        assert pacing.step_size(session, "buyer", batch=2000, step_s=0.05) == 2000  # each stage its own


def _track(i: int) -> dict[str, Any]:
    return {
        "type": "track",
        "userId": f"u{i % 7}",
        "event": "Clicked",
        "messageId": f"pace-{i}",
        "timestamp": "2026-11-01T10:00:00Z",
    }


def test_a_slow_stage_takes_smaller_steps_and_applies_everything_once(
    db: Database, workspace: Any, _pace: dict[str, float], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(runner.config, "step_s", 0.05)  # off by default
    pipeline_log.set_inline(db, False)
    batch = event_service.prepare_batch(
        [_track(i) for i in range(500)], received_at=utcnow(), max_event_bytes=32 * 1024
    )
    with db.write() as session:
        event_service.ingest(session=session, workspace_id=workspace.id, batch=batch)
        sqlite = session.get_bind().dialect.name == "sqlite"
        seqs = list(
            session.scalars(select(Event.id).where(Event.workspace_id == workspace.id).order_by(Event.id))
        )
    _pace["identity"] = 0.01  # 10 ms an event: a 50 ms step is the floor's 200 events
    now = utcnow() + timedelta(seconds=1)
    identity = pipeline_log.kind_of("identity")
    # One pass over every due identity step (one step each): other tests' committed workspaces on the shared
    # test database may have a due identity job too, and a pass of one took theirs.
    jobs_runner.run_due(db, owner="test", now=now, only=(identity,), limit=100)
    with db.read() as session:
        cursor = session.scalar(
            select(Job.cursor).where(Job.kind == identity, Job.workspace_id == workspace.id)
        )
    assert cursor == (seqs[199] if sqlite else seqs[-1])

    runner.drain(db, workspace_id=workspace.id)
    with db.read() as session:
        counts = dict(
            session.execute(
                select(BuyerFeatures.buyer_id, BuyerFeatures.state).where(
                    BuyerFeatures.workspace_id == workspace.id
                )
            ).all()
        )
        per_buyer = sorted(state["n"] for state in counts.values())
    assert per_buyer == [71, 71, 71, 71, 72, 72, 72]  # 500 events of 7 users, each applied once
