"""Every SQL statement of the events domain."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

from sqlalchemy import func, insert
from sqlalchemy.orm import Session

from offerloop.db import driver
from offerloop.db.base import table_of
from offerloop.db.scoped import scoped_select
from offerloop.models import Event, Merge, QuarantinedEvent, Touchpoint
from offerloop.pipeline import log as pipeline_log


def claim_message_ids(session: Session, workspace_id: str, message_ids: list[str]) -> set[str]:
    """Record ``message_ids`` (distinct) in the exactly-once index; returns those that were new.

    Inserted in sorted order, so two batches that share ids wait for each other instead of deadlocking.
    A concurrent transaction holding the same id makes this wait for its outcome (committed: duplicate).
    """
    if not message_ids:
        return set()
    ordered = sorted(message_ids)
    conn = session.connection()
    if conn.dialect.name == "postgresql":
        rows = conn.exec_driver_sql(
            "INSERT INTO event_dedup (workspace_id, message_id) SELECT %s, m FROM unnest(%s::text[]) AS m "
            "ON CONFLICT DO NOTHING RETURNING message_id",
            (workspace_id, ordered),
        ).fetchall()
        return {r[0] for r in rows}
    fresh: set[str] = set()
    for start in range(0, len(ordered), 2000):
        chunk = ordered[start : start + 2000]
        values = ", ".join(["(?, ?)"] * len(chunk))
        params = [v for m in chunk for v in (workspace_id, m)]
        sql = f"INSERT INTO event_dedup (workspace_id, message_id) VALUES {values} ON CONFLICT DO NOTHING RETURNING message_id"
        fresh.update(r[0] for r in conn.exec_driver_sql(sql, tuple(params)).fetchall())
    return fresh


def existing_message_ids(session: Session, workspace_id: str, message_ids: Iterable[str]) -> set[str]:
    rows = driver.select_in(
        session.connection(), "SELECT message_id FROM event_dedup WHERE workspace_id = ?", [workspace_id],
        "message_id", list(message_ids),
    )  # fmt: skip
    return {r[0] for r in rows}


EVENT_COLUMNS = (
    "workspace_id", "message_id", "type", "name", "buyer_id", "user_id", "anonymous_id", "group_id",
    "previous_id", "timestamp", "original_timestamp", "sent_at", "received_at", "properties", "traits",
    "context", "weight", "confidence", "high_signal", "suppressed",
)  # fmt: skip


def append_events(session: Session, workspace_id: str, rows: list[tuple[Any, ...]]) -> None:
    """Append rows (tuples in EVENT_COLUMNS order) to the log; the caller has claimed their messageIds.

    On PostgreSQL sequence values can commit out of order (A takes 1-100, B 101-200, B commits first: a
    consumer that checkpointed 200 would skip A). A transaction lock per workspace, taken right before the
    ids are drawn and held to commit, makes a workspace's ids commit in order. SQLite has one writer.
    """
    pipeline_log.lock_feed(session, workspace_id, "identity")
    driver.insert_many(session.connection(), "events", EVENT_COLUMNS, rows)


def insert_touchpoints(session: Session, rows: list[dict[str, Any]]) -> None:
    if rows:
        columns = tuple(rows[0])
        driver.insert_many(
            session.connection(), "touchpoints", columns, [[r[c] for c in columns] for r in rows]
        )


def insert_quarantine(session: Session, rows: list[dict[str, Any]]) -> None:
    if rows:
        session.execute(insert(table_of(QuarantinedEvent)), rows)


def list_quarantine(
    session: Session,
    workspace_id: str,
    *,
    status: str | None,
    reason: str | None,
    limit: int,
    before: str | None,
) -> list[QuarantinedEvent]:
    stmt = scoped_select(QuarantinedEvent, workspace_id)
    if status:
        stmt = stmt.where(QuarantinedEvent.status == status)
    if reason:
        stmt = stmt.where(QuarantinedEvent.reason_code == reason)
    if before:
        stmt = stmt.where(QuarantinedEvent.id < before)
    return list(session.scalars(stmt.order_by(QuarantinedEvent.id.desc()).limit(limit)))


def get_quarantined(session: Session, workspace_id: str, quarantine_id: str) -> QuarantinedEvent | None:
    stmt = scoped_select(QuarantinedEvent, workspace_id).where(QuarantinedEvent.id == quarantine_id)
    return session.scalars(stmt).one_or_none()


def quarantine_reasons(session: Session, workspace_id: str) -> list[tuple[str, int]]:
    stmt = (
        scoped_select(QuarantinedEvent, workspace_id, QuarantinedEvent.reason_code, func.count())
        .where(QuarantinedEvent.status == "open")
        .group_by(QuarantinedEvent.reason_code)
        .order_by(func.count().desc())
    )
    return [(code, int(n)) for code, n in session.execute(stmt)]


def channel_counts(session: Session, workspace_id: str, *, first_touch: bool) -> list[tuple[str, int]]:
    """Buyers by the channel of their first (or last) touchpoint."""
    agg = func.min(Touchpoint.occurred_at) if first_touch else func.max(Touchpoint.occurred_at)
    edge = (
        scoped_select(Touchpoint, workspace_id, Touchpoint.buyer_id, agg.label("at"))
        .where(Touchpoint.buyer_id.is_not(None))
        .group_by(Touchpoint.buyer_id)
        .subquery()
    )
    stmt = (
        scoped_select(
            Touchpoint, workspace_id, Touchpoint.channel, func.count(func.distinct(Touchpoint.buyer_id))
        )
        .join(edge, (edge.c.buyer_id == Touchpoint.buyer_id) & (edge.c.at == Touchpoint.occurred_at))
        .group_by(Touchpoint.channel)
        .order_by(func.count(func.distinct(Touchpoint.buyer_id)).desc())
    )
    return [(c, int(n)) for c, n in session.execute(stmt)]


def source_counts(session: Session, workspace_id: str, limit: int = 10) -> list[tuple[str, int]]:
    stmt = (
        scoped_select(Touchpoint, workspace_id, Touchpoint.source, func.count())
        .where(Touchpoint.source.is_not(None))
        .group_by(Touchpoint.source)
        .order_by(func.count().desc())
        .limit(limit)
    )
    return [(str(s), int(n)) for s, n in session.execute(stmt)]


def event_counts(session: Session, workspace_id: str) -> dict[str, int]:
    total = session.scalar(scoped_select(Event, workspace_id, func.count())) or 0
    suppressed = (
        session.scalar(scoped_select(Event, workspace_id, func.count()).where(Event.suppressed.is_(True)))
        or 0
    )
    high = (
        session.scalar(scoped_select(Event, workspace_id, func.count()).where(Event.high_signal.is_(True)))
        or 0
    )
    return {"events": int(total), "suppressed": int(suppressed), "high_signal": int(high)}


def iter_table(session: Session, model: Any, workspace_id: str) -> Iterator[Any]:
    stmt = scoped_select(model, workspace_id).order_by(model.id)
    yield from session.scalars(stmt.execution_options(yield_per=2000))


EXPORT_TABLES = {"event": Event, "touchpoint": Touchpoint, "quarantine": QuarantinedEvent, "merge": Merge}


def activity_since(session: Session, workspace_id: str, since: Any) -> tuple[int, int]:
    """Events received since ``since`` and the distinct buyers they belong to (the covering index
    ``(workspace_id, received_at, buyer_id)`` answers it without reading the events)."""
    row = session.execute(
        scoped_select(Event, workspace_id, func.count(), func.count(func.distinct(Event.buyer_id))).where(
            Event.received_at >= since
        )
    ).one()
    return int(row[0]), int(row[1])


def open_quarantine_count(session: Session, workspace_id: str) -> int:
    stmt = scoped_select(QuarantinedEvent, workspace_id, func.count()).where(
        QuarantinedEvent.status == "open"
    )
    return int(session.scalar(stmt) or 0)
