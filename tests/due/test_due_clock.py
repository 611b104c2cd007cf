"""The controllable clock of a real server's jobs (only in environment=test) and the recurring sweep job that
every runner queues when it starts."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import func, select

from offerloop.checkout import due
from offerloop.checkout import tasks as _tasks  # noqa: F401  (registers the due-work kinds)
from offerloop.config import Settings
from offerloop.core.clock import utcnow
from offerloop.jobs import runner
from offerloop.models import Job

T0 = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
HOUR = timedelta(hours=1)


def test_the_job_clock_is_moved_by_its_file_only_in_the_test_environment(tmp_path) -> None:
    path = tmp_path / "clock"
    path.write_text("3600\n")
    moved = Settings(environment="test", test_clock_file=str(path)).job_clock()
    plain = Settings(environment="development", test_clock_file=str(path)).job_clock()
    before = utcnow()
    assert moved() >= before + HOUR
    assert plain() < before + HOUR  # a stray setting outside tests moves nothing
    path.unlink()
    assert moved() < before + HOUR  # no file: no offset
    assert Settings(environment="test").job_clock() is plain


def _sweeps(db) -> list[tuple[str, datetime]]:
    with db.read() as session:
        rows = session.execute(select(Job.state, Job.run_at).where(Job.kind == due.SWEEP))
        return [tuple(r) for r in rows]


def test_every_runner_start_queues_the_one_sweep_job_to_run_now(db) -> None:
    runner.ensure_recurring(db, now=T0, only=(due.SWEEP,))
    runner.ensure_recurring(
        db, now=T0 + HOUR, only=(due.SWEEP,)
    )  # a second start: the same job, kept earlier
    assert _sweeps(db) == [("queued", T0)]
    ran = runner.run_due(db, owner="w1", now=T0, only=(due.SWEEP,))
    assert [(r.key, r.status) for r in ran] == [(runner.RECURRING_KEY, "again")]
    assert _sweeps(db) == [("queued", T0 + timedelta(seconds=due.SWEEP_EVERY_S))]
    runner.ensure_recurring(db, now=T0 + timedelta(seconds=60), only=(due.SWEEP,))  # a restart sweeps at once
    assert _sweeps(db) == [("queued", T0 + timedelta(seconds=60))]
    with db.read() as session:
        assert session.scalar(select(func.count()).select_from(Job).where(Job.kind == due.SWEEP)) == 1
