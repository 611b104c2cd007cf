"""The upgrade gives work the old loops would have found by scanning their rows its job, so nothing waiting
is dropped: queued and half-rendered versions, pending fulfilment tasks, open windows, unlearned rewards."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

from alembic import command
from sqlalchemy import create_engine, insert, select
from sqlalchemy.orm import Session

from offerloop.db.migrate import alembic_config
from offerloop.models import ArtifactVersion, Decision, FulfilmentTask
from offerloop.models.jobs import Job

T = datetime(2026, 12, 1, tzinfo=UTC)


def _version(number: int, status: str) -> ArtifactVersion:
    return ArtifactVersion(workspace_id="ws1", artifact_id="art1", version=number, status=status, document={},
                           provenance={}, preview_html="", changelog="", created_at=T)  # fmt: skip


def _decision(i: int, placement: str, reward: float | None, ends: datetime | None) -> dict[str, object]:
    # A Core insert of these columns only: the ORM would name columns later migrations add (experiment_key…).
    return dict(id=f"dec{i}", workspace_id="ws1", placement=placement, created_at=T, policy="rules",
                holdout=False, model_version=0, context={}, candidates=[], items=[], excluded=[],
                reward=reward, propensity=1.0, window_ends_at=ends)  # fmt: skip


def test_the_upgrade_queues_a_job_for_everything_waiting(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'old.db'}")  # foreign keys not enforced: rows alone
    with engine.begin() as conn:
        command.upgrade(alembic_config(connection=conn), "jobs_20261205")
    with Session(engine) as session, session.begin():
        session.add_all([_version(1, "ready"), _version(2, "rendering"), _version(3, "queued")])
        session.add_all([
            FulfilmentTask(workspace_id="ws1", order_id="ord1", buyer_id="b1", component=c, ref="r", spec={},
                           status=s, attempts=0, next_attempt_at=T + timedelta(minutes=i))
            for i, (c, s) in enumerate((("download", "pending"), ("module", "done"), ("assessment", "failed")))
        ])  # fmt: skip
        session.execute(insert(Decision.__table__), [
            _decision(1, "home", 1.0, None),  # rewarded, not learned yet
            _decision(2, "cart", None, T + timedelta(days=2)),  # open windows: the earliest end counts
            _decision(3, "cart", None, T + timedelta(days=1)),
        ])  # fmt: skip
    with engine.begin() as conn:
        command.upgrade(alembic_config(connection=conn), "jobsport_20261205")
    with Session(engine) as session:
        task_id = session.scalar(select(FulfilmentTask.id).where(FulfilmentTask.component == "download"))
        jobs = sorted((j.kind, j.key, j.workspace_id, j.state) for j in session.scalars(select(Job)))
        close = session.scalars(select(Job).where(Job.kind == "decisions.close_windows")).one()
        fulfil = session.scalars(select(Job).where(Job.kind == "checkout.fulfil")).one()
        assert (close.run_at, fulfil.run_at) == (T + timedelta(days=1), T)
    assert jobs == [
        ("assembly.render", "art1:2", "ws1", "queued"),
        ("assembly.render", "art1:3", "ws1", "queued"),
        ("checkout.fulfil", str(task_id), "ws1", "queued"),
        ("decisions.close_windows", "ws1", "ws1", "queued"),
        ("decisions.learn", "ws1:home", "ws1", "queued"),
    ]
    with engine.begin() as conn:
        command.downgrade(alembic_config(connection=conn), "jobs_20261205")
    with Session(engine) as session:
        assert session.scalars(select(Job)).all() == []
    engine.dispose()
