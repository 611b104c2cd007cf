"""Every SQL statement the runner makes on checkpoint rows (``jobs`` rows of kind ``consumer:<name>``, key
``<workspace>:<partition>``); the log's own statements are in :mod:`offerloop.pipeline.log`."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

from sqlalchemy import ColumnElement, Select, func, or_, select
from sqlalchemy.orm import Session

from offerloop.db import driver
from offerloop.models import Job, Workspace


def _skip_locked(session: Session, query: Select[Job]) -> Select[Job]:
    """On PostgreSQL, lock the rows read, skipping those another worker holds locked."""
    if session.get_bind().dialect.name == "postgresql":
        return query.with_for_update(skip_locked=True)
    return query


def _free(now: datetime) -> ColumnElement[bool]:
    return or_(Job.lease_until.is_(None), Job.lease_until < now)


def lowest_cursor(session: Session, workspace_id: str, kinds: Sequence[str], key: str) -> tuple[int, int]:
    """(the lowest cursor, 0 when none is set; how many rows exist) of these kinds' rows at ``key``."""
    low, found = session.execute(
        select(func.min(Job.cursor), func.count()).where(
            Job.workspace_id == workspace_id, Job.kind.in_(list(kinds)), Job.key == key
        )
    ).one()
    return int(low or 0), int(found)


def free_at_cursor(
    session: Session,
    workspace_id: str | None,
    kinds: Sequence[str],
    key: str,
    cursor: int | None,
    now: datetime,
) -> list[Job]:
    """These kinds' rows at ``key`` and at ``cursor`` that are free (no live lease; on PostgreSQL not locked
    by another worker, and locked now) and not parked."""
    query = select(Job).where(
        Job.workspace_id == workspace_id,
        Job.kind.in_(list(kinds)),
        Job.key == key,
        Job.cursor == cursor,
        Job.state != "parked",
        _free(now),
    )
    return list(session.scalars(_skip_locked(session, query)))


def locked_if_free(session: Session, workspace_id: str, kind: str, key: str, now: datetime) -> Job | None:
    """The row, locked for this transaction, unless a worker holds it (its lease, its lock)."""
    query = select(Job).where(
        Job.workspace_id == workspace_id,
        Job.kind == kind,
        Job.key == key,
        _free(now),
    )
    return session.scalars(_skip_locked(session, query)).one_or_none()


def row(session: Session, workspace_id: str, kind: str, key: str) -> Job | None:
    return session.scalars(
        select(Job).where(Job.workspace_id == workspace_id, Job.kind == kind, Job.key == key)
    ).one_or_none()


def cursor_of(session: Session, workspace_id: str, kind: str, key: str) -> int | None:
    return session.scalar(
        select(Job.cursor).where(Job.workspace_id == workspace_id, Job.kind == kind, Job.key == key)
    )


def cursors(session: Session, workspace_id: str, kinds: Sequence[str]) -> list[tuple[str, str, int | None]]:
    """(kind, key, cursor) of every row of these kinds in the workspace."""
    rows = session.execute(
        select(Job.kind, Job.key, Job.cursor).where(
            Job.workspace_id == workspace_id, Job.kind.in_(list(kinds))
        )
    ).all()
    return [(kind, key, cursor) for kind, key, cursor in rows]


def states_at(
    session: Session, workspace_id: str, kinds: Sequence[str], key: str
) -> dict[str, tuple[str, int | None]]:
    """kind -> (state, cursor) of these kinds' rows at ``key`` (a kind without a row is absent)."""
    rows = session.execute(
        select(Job.kind, Job.state, Job.cursor).where(
            Job.workspace_id == workspace_id, Job.kind.in_(list(kinds)), Job.key == key
        )
    ).all()
    return {kind: (state, cursor) for kind, state, cursor in rows}


def cursors_at(session: Session, workspace_id: str, kinds: Sequence[str], key: str) -> dict[str, int | None]:
    """kind -> cursor of these kinds' rows at ``key`` (a kind without a row is absent)."""
    return {kind: cursor for kind, (_, cursor) in states_at(session, workspace_id, kinds, key).items()}


def workspace_ids(session: Session) -> list[str]:
    return list(session.scalars(select(Workspace.id).order_by(Workspace.id)))


def applied_through(
    session: Session, workspace_id: str, identity: Sequence[str], identity_key: str, others: Sequence[str]
) -> tuple[int, int | None, int]:
    """(the log's head, the lowest cursor of every ``identity`` and ``others`` row of the workspace, how many
    ``identity`` rows exist at ``identity_key``) in one statement of three index probes: the freshness check of
    the read endpoints, which finds nothing pending far more often than not."""
    kinds = [*identity, *others]
    marks = ", ".join("?" * len(kinds))
    sql = (
        "SELECT (SELECT max(id) FROM events WHERE workspace_id = ?), "
        f"(SELECT min(coalesce(cursor, 0)) FROM jobs WHERE workspace_id = ? AND kind IN ({marks})), "
        f"(SELECT count(*) FROM jobs WHERE workspace_id = ? AND kind IN ({', '.join('?' * len(identity))}) "
        "AND key = ?)"
    )
    params = [workspace_id, workspace_id, *kinds, workspace_id, *identity, identity_key]
    head, low, found = driver.fetch_all(session.connection(), sql, params)[0]
    return int(head or 0), None if low is None else int(low), int(found)
