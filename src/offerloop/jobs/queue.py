"""Enqueue work in the caller's transaction; wake this process's workers after it commits."""

from __future__ import annotations

import threading
from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy import case, event, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from offerloop.core.clock import utcnow
from offerloop.models.jobs import Job

_AFTER_COMMIT = "offerloop.after_commit"
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


def after_commit(session: Session, fn: Callable[[], None]) -> None:
    """Run ``fn`` once the session's transaction commits; dropped if it rolls back."""
    pending: list[Callable[[], None]] | None = session.info.get(_AFTER_COMMIT)
    if pending is None:
        pending = session.info[_AFTER_COMMIT] = []
    pending.append(fn)


@event.listens_for(Session, "after_commit")
def _run_after_commit(session: Session) -> None:
    pending = session.info.pop(_AFTER_COMMIT, None)
    for fn in pending or ():
        fn()


@event.listens_for(Session, "after_soft_rollback")
def _drop_after_rollback(session: Session, previous_transaction: Any) -> None:
    if previous_transaction.parent is None:  # the outermost transaction rolled back
        session.info.pop(_AFTER_COMMIT, None)


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
    dialect = session.get_bind().dialect.name
    insert = pg_insert if dialect == "postgresql" else sqlite_insert
    stmt = (
        insert(Job).values(**values).on_conflict_do_nothing(index_elements=["kind", "key"]).returning(Job.id)
    )
    if session.execute(stmt).scalar_one_or_none() is None:  # already there: queue it again
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


def _earlier(state: Any, run_at: Any, when: datetime) -> Any:
    return case((state != "queued", when), (run_at > when, when), else_=run_at)


def _reset_attempts(state: Any, attempts: Any) -> Any:
    return case((state != "queued", 0), else_=attempts)
