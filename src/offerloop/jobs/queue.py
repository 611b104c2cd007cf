"""Enqueue work in the caller's transaction; wake this process's workers after it commits."""

from __future__ import annotations

import threading
from datetime import datetime
from typing import Any

from sqlalchemy import case, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from offerloop.core.clock import utcnow
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
