"""The one background-work mechanism: enqueue after commit, claim with leases, retry with backoff, park."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from offerloop.db.uow import Database
from offerloop.jobs import lease, queue, runner
from offerloop.models.jobs import Job

T0 = datetime(2026, 12, 5, 12, 0, tzinfo=UTC)
calls: list[tuple[str, str]] = []


@runner.register("test.count")
def _count(ctx: runner.Context) -> datetime | None:
    assert ctx.session is not None
    calls.append(("count", ctx.job.key))
    return None


@runner.register("test.boom", max_attempts=3, backoff_base_s=10, backoff_cap_s=100)
def _boom(ctx: runner.Context) -> datetime | None:
    calls.append(("boom", ctx.job.key))
    raise RuntimeError("no good")


@runner.register("test.again")
def _again(ctx: runner.Context) -> datetime | None:
    calls.append(("again", ctx.job.key))
    return ctx.now + timedelta(hours=1)


@pytest.fixture(autouse=True)
def _reset() -> None:
    calls.clear()


def _job(db: Database, kind: str, key: str) -> Job:
    with db.read() as s:
        job = s.scalars(select(Job).where(Job.kind == kind, Job.key == key)).one()
        s.expunge(job)
        return job


def test_enqueue_twice_is_one_job_and_runs_once(db: Database) -> None:
    with db.write() as s:
        queue.enqueue(s, kind="test.count", key="a", now=T0)
        queue.enqueue(s, kind="test.count", key="a", now=T0)
    ran = runner.run_due(db, owner="w1", now=T0, only=("test.count",), limit=10)
    assert [(r.key, r.status) for r in ran] == [("a", "done")]
    assert runner.run_due(db, owner="w1", now=T0, only=("test.count",), limit=10) == []
    assert calls == [("count", "a")]
    assert _job(db, "test.count", "a").state == "done"


def test_work_enqueued_in_a_rolled_back_transaction_does_not_wake(db: Database) -> None:
    seen = queue.generation()
    with pytest.raises(RuntimeError), db.write() as s:
        queue.enqueue(s, kind="test.count", key="gone", now=T0)
        raise RuntimeError("roll back")
    assert queue.generation() == seen
    with db.write() as s:
        queue.enqueue(s, kind="test.count", key="kept", now=T0)
    assert queue.generation() == seen + 1


def test_future_work_waits_for_its_time(db: Database) -> None:
    with db.write() as s:
        queue.enqueue(s, kind="test.count", key="later", run_at=T0 + timedelta(days=1), now=T0)
    assert runner.run_due(db, owner="w1", now=T0, only=("test.count",)) == []
    ran = runner.run_due(db, owner="w1", now=T0 + timedelta(days=1), only=("test.count",))
    assert [r.status for r in ran] == ["done"]


def test_a_failing_job_backs_off_then_parks_with_its_reason(db: Database) -> None:
    with db.write() as s:
        queue.enqueue(s, kind="test.boom", key="x", now=T0)
    now = T0
    statuses = []
    for _ in range(3):
        ran = runner.run_due(db, owner="w1", now=now, only=("test.boom",))
        statuses.append(ran[0].status)
        job = _job(db, "test.boom", "x")
        if job.state == "queued":
            assert job.run_at > now  # not again at once
            assert runner.run_due(db, owner="w1", now=now, only=("test.boom",)) == []
            now = job.run_at
    assert statuses == ["retrying", "retrying", "parked"]
    job = _job(db, "test.boom", "x")
    assert (job.state, job.attempts, job.last_error) == ("parked", 3, "RuntimeError: no good")
    # Replay: enqueue again puts a parked job back with fresh attempts.
    with db.write() as s:
        queue.enqueue(s, kind="test.boom", key="x", now=now)
    assert _job(db, "test.boom", "x").state == "queued"


def test_backoff_grows_and_is_capped() -> None:
    delays = [lease.backoff_s(n, base_s=10, cap_s=100, key="k") for n in range(1, 7)]
    assert all(
        0.8 * min(100, 10 * 2 ** (n - 1)) <= d <= 1.2 * min(100, 10 * 2 ** (n - 1))
        for n, d in enumerate(delays, 1)
    )
    assert lease.backoff_s(3, base_s=10, cap_s=100, key="k") == lease.backoff_s(
        3, base_s=10, cap_s=100, key="k"
    )


def test_a_lease_held_by_a_dead_worker_runs_out_and_another_takes_over(db: Database) -> None:
    with db.write() as s:
        queue.enqueue(s, kind="test.count", key="k", now=T0)
        claimed = lease.claim(s, owner="dead", now=T0, lease_s=60, kinds=("test.count",))
    assert [j.key for j in claimed] == ["k"]
    assert runner.run_due(db, owner="w2", now=T0 + timedelta(seconds=30), only=("test.count",)) == []
    ran = runner.run_due(db, owner="w2", now=T0 + timedelta(seconds=61), only=("test.count",))
    assert [r.status for r in ran] == ["done"]
    # The dead worker coming back finds its lease gone and cannot finish the job.
    with db.write() as s:
        assert lease.hold(s, claimed[0].id, owner="dead") is None


def test_recurring_work_is_queued_again_at_the_time_it_returns(db: Database) -> None:
    with db.write() as s:
        queue.enqueue(s, kind="test.again", key="tick", now=T0)
    assert [r.status for r in runner.run_due(db, owner="w", now=T0, only=("test.again",))] == ["again"]
    job = _job(db, "test.again", "tick")
    assert (job.state, job.run_at) == ("queued", T0 + timedelta(hours=1))
