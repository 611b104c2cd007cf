"""/metrics and /readyz report the pipeline; the monthly partition job on PostgreSQL."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select, text, update

from offerloop.core.clock import utcnow
from offerloop.events import service as event_service
from offerloop.jobs import runner as jobs_runner
from offerloop.models import Job
from offerloop.pipeline import log as pipeline_log
from offerloop.pipeline import partitions, runner, status


def _ingest(db, workspace_id: str, n: int, received_at: datetime | None = None) -> None:
    messages = [
        {"type": "track", "userId": f"u{i % 3}", "event": "Clicked", "messageId": f"m-{i}"} for i in range(n)
    ]
    batch = event_service.prepare_batch(
        messages, received_at=received_at or utcnow(), max_event_bytes=32 * 1024
    )
    with db.write() as session:
        event_service.ingest(session=session, workspace_id=workspace_id, batch=batch)


def _metric(body: str, name: str) -> float:
    return sum(float(line.rsplit(" ", 1)[1]) for line in body.splitlines() if line.startswith(name))


def test_metrics_show_lag_throughput_and_head(client, db, workspace, test_consumers) -> None:
    runner.drain(db)  # other tests' committed workspaces (rolled back after this test): lag 0 everywhere
    pipeline_log.set_inline(db, False)
    _ingest(db, workspace.id, 6)
    body = client.get("/metrics").text
    assert _metric(body, 'offerloop_consumer_lag_events{consumer="identity"}') == 6
    processed = _metric(body, 'offerloop_consumer_processed_total{consumer="test_recorder"}')
    runner.drain(db, workspace_id=workspace.id)
    body = client.get("/metrics").text
    assert _metric(body, 'offerloop_consumer_lag_events{consumer="identity"}') == 0
    assert _metric(body, 'offerloop_consumer_lag_events{consumer="test_recorder"}') == 0
    assert _metric(body, 'offerloop_consumer_processed_total{consumer="test_recorder"}') == processed + 6
    assert _metric(body, "offerloop_pipeline_head_seq") >= 6
    assert 'offerloop_consumer_step_seconds_count{consumer="test_recorder"}' in body


def test_readyz_names_a_stuck_consumer(client, db, workspace, test_consumers) -> None:
    with db.write() as session:
        # Other tests' committed workspaces (a killed server's lag on a shared PostgreSQL database) are set
        # aside for this test — rolled back after it — instead of being processed, which can take minutes.
        session.execute(
            update(Job)
            .where(Job.workspace_id != workspace.id, Job.kind.in_(runner.kinds()))
            .values(state="parked")
        )
    pipeline_log.set_inline(db, False)
    _ingest(db, workspace.id, 2)
    assert client.get("/readyz").status_code == 200  # lag, but the rows moved recently
    later = utcnow() + timedelta(seconds=runner.config.stuck_s + 5)
    assert status.stuck(db, now=later) == ["identity"]  # nobody has taken the work since
    with db.write() as session:  # a worker took it and died: its lease ran out long ago
        session.execute(
            update(Job)
            .where(Job.workspace_id == workspace.id)
            .values(
                lease_owner="dead",
                lease_until=utcnow() - timedelta(hours=1),
                updated_at=utcnow() - timedelta(hours=1),
            )
        )
    r = client.get("/readyz")
    assert (r.status_code, r.json()["consumers"]) == (503, ["identity"])
    jobs_runner.run_due(db, owner="alive", only=runner.kinds(), limit=10)  # taken over
    runner.drain(db, workspace_id=workspace.id)
    assert client.get("/readyz").status_code == 200


def test_the_partition_job_creates_next_month_and_moves_rows_out_of_the_default(
    db, engine, workspace
) -> None:
    if engine.dialect.name != "postgresql":
        pytest.skip("SQLite keeps one events table")
    far = datetime(2031, 5, 17, tzinfo=UTC)  # no partition: lands in the default one
    _ingest(db, workspace.id, 3, received_at=far)
    with db.write() as session:
        assert (
            session.execute(
                text("SELECT count(*) FROM events_default WHERE workspace_id = :w"), {"w": workspace.id}
            ).scalar()
            == 3
        )
        assert partitions.ensure_month(session, 2031, 5) is True
        assert partitions.ensure_month(session, 2031, 5) is False
        assert (
            session.execute(
                text("SELECT count(*) FROM events_default WHERE workspace_id = :w"), {"w": workspace.id}
            ).scalar()
            == 0
        )
        assert (
            session.execute(
                text("SELECT count(*) FROM events_y2031m05 WHERE workspace_id = :w"), {"w": workspace.id}
            ).scalar()
            == 3
        )
    # The due job keeps this month's and next month's partitions (idempotent) and comes back tomorrow.
    now = utcnow()
    with db.write() as session:
        from offerloop.jobs.queue import enqueue

        enqueue(session, kind=partitions.KIND, key="events", now=now)
    ran = jobs_runner.run_due(db, owner="t", now=now + timedelta(seconds=1), only=(partitions.KIND,))
    assert [(r.kind, r.status) for r in ran] == [(partitions.KIND, "again")]
    nxt = datetime(now.year + now.month // 12, now.month % 12 + 1, 1, tzinfo=UTC)
    with db.read() as session:
        assert (
            session.execute(text("SELECT to_regclass(:n)"), {"n": partitions.partition_name(nxt)}).scalar()
            is not None
        )
        job = session.scalars(select(Job).where(Job.kind == partitions.KIND)).one()
        assert job.run_at == now + timedelta(seconds=1) + timedelta(days=1)
