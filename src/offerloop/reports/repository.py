"""Every SQL statement of the reports domain: one snapshot per (workspace, kind, key)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, or_, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from offerloop.db.base import table_of
from offerloop.db.scoped import scoped_select, scoped_update
from offerloop.models.reports import ReportSnapshot


def get(session: Session, workspace_id: str, kind: str, key: str) -> ReportSnapshot | None:
    return session.scalar(
        scoped_select(ReportSnapshot, workspace_id).where(
            ReportSnapshot.kind == kind, ReportSnapshot.key == key
        )
    )


def slowest(session: Session, workspace_id: str, kind: str) -> float | None:
    """The longest computation of any snapshot of this kind in the workspace (None: never computed)."""
    found = session.scalar(
        scoped_select(ReportSnapshot, workspace_id, func.max(ReportSnapshot.compute_s)).where(
            ReportSnapshot.kind == kind
        )
    )
    return float(found) if found is not None else None


def put(
    session: Session,
    *,
    workspace_id: str,
    kind: str,
    key: str,
    params: dict[str, Any],
    body: dict[str, Any] | None,
    error: dict[str, Any] | None,
    compute_s: float,
    computed_at: datetime,
) -> None:
    """Insert or replace the snapshot (a concurrent computation of the same report: the later write wins;
    both saw the store as it was when they ran)."""
    values = {
        "workspace_id": workspace_id, "kind": kind, "key": key, "params": params, "body": body, "error": error,
        "compute_s": compute_s, "computed_at": computed_at,
    }  # fmt: skip
    insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    stmt = insert(table_of(ReportSnapshot)).values(values)
    stmt = stmt.on_conflict_do_update(
        index_elements=["workspace_id", "kind", "key"],
        set_={name: stmt.excluded[name] for name in ("params", "body", "error", "compute_s", "computed_at")},
    )
    session.execute(stmt)


def mark_viewed(session: Session, workspace_id: str, kind: str, key: str, at: datetime) -> None:
    session.execute(
        scoped_update(ReportSnapshot, workspace_id)
        .where(ReportSnapshot.kind == kind, ReportSnapshot.key == key)
        .values(viewed_at=at)
    )


def prune(session: Session, before: datetime, limit: int) -> int:
    """Delete up to ``limit`` snapshots (any workspace) neither computed nor viewed since ``before``; how many."""
    unused = (
        select(ReportSnapshot.id)
        .where(
            ReportSnapshot.computed_at < before,
            or_(ReportSnapshot.viewed_at.is_(None), ReportSnapshot.viewed_at < before),
        )
        .order_by(ReportSnapshot.computed_at)
        .limit(limit)
    )
    ids = list(session.scalars(unused))
    if not ids:
        return 0
    # the same condition again: a snapshot computed or viewed since the select is kept
    result = session.execute(
        delete(ReportSnapshot).where(
            ReportSnapshot.id.in_(ids),
            ReportSnapshot.computed_at < before,
            or_(ReportSnapshot.viewed_at.is_(None), ReportSnapshot.viewed_at < before),
        )
    )
    return int(getattr(result, "rowcount", 0) or 0)
