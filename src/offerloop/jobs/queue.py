"""Enqueue work in the caller's transaction; wake this process's workers after it commits."""

from __future__ import annotations

import threading
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, case, func, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from offerloop.core.clock import utcnow
from offerloop.db.base import table_of
from offerloop.db.uow import after_commit
from offerloop.models.jobs import Job

_wake = threading.Condition()
_generation = 0


def wake() -> None:
    """Tell every runner thread in this process that work may be due."""
    global _generation
    with _wake:
        _generation += 1
        _wake.notify_all()


def wait(seen: int, timeout_s: float) -> int:
    """Block until woken after generation ``seen`` (or the timeout); returns the current generation."""
    with _wake:
        if _generation == seen:
            _wake.wait(timeout_s)
        return _generation


def generation() -> int:
    return _generation


def enqueue(
    session: Session,
    *,
    kind: str,
    key: str,
    workspace_id: str | None = None,
    run_at: datetime | None = None,
    payload: dict[str, Any] | None = None,
    now: datetime | None = None,
) -> None:
    """Queue ``(kind, key)`` to run at ``run_at`` (now by default). Idempotent: a queued job keeps the
    earlier of the two times; a finished or parked one is queued again with fresh attempts."""
    now = now or utcnow()
    when = run_at or now
    values = {
        "kind": kind, "key": key, "workspace_id": workspace_id, "state": "queued", "run_at": when,
        "attempts": 0, "payload": payload, "created_at": now, "updated_at": now,
    }  # fmt: skip
    if (
        session.execute(_insert_job(session), values).scalar_one_or_none() is None
    ):  # already there: queue it again
        table = Job.__table__
        session.execute(
            update(Job)
            .where(Job.kind == kind, Job.key == key)
            .values(
                state="queued",
                run_at=_earlier(table.c.state, table.c.run_at, when),
                attempts=_reset_attempts(table.c.state, table.c.attempts),
                payload=payload if payload is not None else table.c.payload,
                updated_at=now,
                done_at=None,
            )
        )
    if when <= now:
        after_commit(session, wake)


_INSERT_JOB: dict[str, Any] = {}


def _insert_job(session: Session) -> Any:
    """INSERT … ON CONFLICT DO NOTHING RETURNING id, built once per dialect and run through Core with the row as
    parameters: enqueue runs once per message on the send path, where building it with ``.values()`` each time
    (and the ORM's bulk-insert bookkeeping) cost several times the statement itself."""
    dialect = session.get_bind().dialect.name
    stmt = _INSERT_JOB.get(dialect)
    if stmt is None:
        table = table_of(Job)
        insert = pg_insert if dialect == "postgresql" else sqlite_insert
        stmt = insert(table).on_conflict_do_nothing(index_elements=["kind", "key"]).returning(table.c.id)
        _INSERT_JOB[dialect] = stmt
    return stmt


_STATE = select(Job.state, Job.run_at).where(Job.kind == bindparam("kind"), Job.key == bindparam("key"))


def ensure(
    session: Session,
    *,
    kind: str,
    key: str,
    run_at: datetime,
    workspace_id: str | None = None,
    now: datetime | None = None,
) -> bool:
    """Make sure ``(kind, key)`` runs at ``run_at`` or earlier, writing only when needed: a job already
    queued for a time between now and ``run_at`` will run after this transaction commits and see its work,
    so a hot path (a decision logged per request) pays one read. True when it enqueued."""
    now = now or utcnow()
    found = session.connection().execute(_STATE, {"kind": kind, "key": key}).one_or_none()
    # A queued job not due yet cannot be running now; one that is due may be running without our work.
    if found is not None and found.state == "queued" and now < found.run_at <= run_at:
        return False
    enqueue(session, kind=kind, key=key, workspace_id=workspace_id, run_at=run_at, now=now)
    return True


def _earlier(state: Any, run_at: Any, when: datetime) -> Any:
    return case((state != "queued", when), (run_at > when, when), else_=run_at)


def _reset_attempts(state: Any, attempts: Any) -> Any:
    return case((state != "queued", 0), else_=attempts)


def listing(
    session: Session, *, state: str | None = None, kind: str | None = None, limit: int = 100
) -> list[Job]:
    """Jobs for an operator (newest change first), by state and kind."""
    query = select(Job).order_by(Job.updated_at.desc(), Job.id.desc()).limit(limit)
    if state is not None:
        query = query.where(Job.state == state)
    if kind is not None:
        query = query.where(Job.kind == kind)
    return list(session.scalars(query))


def replay(session: Session, job_id: int, *, now: datetime | None = None) -> Job | None:
    """Queue a parked (or finished) job again now, with fresh attempts; None if there is no such job."""
    job = session.get(Job, job_id)
    if job is None:
        return None
    enqueue(session, kind=job.kind, key=job.key, workspace_id=job.workspace_id, now=now)
    session.refresh(job)
    return job


def pending(session: Session, *, kind: str, key: str) -> bool:
    """Whether ``(kind, key)`` is queued or running (a held job stays queued until it finishes)."""
    found = session.connection().execute(_STATE, {"kind": kind, "key": key}).one_or_none()
    return found is not None and found.state == "queued"


def pending_count(session: Session, *, kind: str, workspace_id: str) -> int:
    """How many jobs of ``kind`` the workspace has queued or running (the (workspace_id, kind) index)."""
    stmt = select(func.count()).where(
        Job.workspace_id == workspace_id, Job.kind == kind, Job.state == "queued"
    )
    return int(session.execute(stmt).scalar_one())
