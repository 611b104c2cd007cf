"""Stand-in for the log runner (built elsewhere): append validated events to the log as ingestion will
(buyer_id NULL, signal scores set), read them back as LogEvents, and run the registered consumers —
identity stage first, then buyer stage — in batches, each batch in the caller's transaction."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from offerloop.db import driver
from offerloop.events import repository as events_repository
from offerloop.events import service as events_service
from offerloop.events.signals import score_event
from offerloop.pipeline.registry import Consumer, LogEvent, consumers
from offerloop.worker import registry

registry.load()

LOG_COLUMNS = (
    "id", "workspace_id", "message_id", "type", "name", "buyer_id", "user_id", "anonymous_id", "group_id",
    "previous_id", "timestamp", "original_timestamp", "sent_at", "received_at", "properties", "traits",
    "context", "weight", "confidence", "high_signal", "suppressed",
)  # fmt: skip
_TIMES = {"timestamp", "original_timestamp", "sent_at", "received_at"}
_JSON = {"properties", "traits", "context"}
_BOOLS = {"high_signal", "suppressed"}


def append(
    session: Session, workspace_id: str, messages: list[dict[str, Any]], received_at: datetime
) -> list[str]:
    """Append one batch as acknowledge-on-append ingestion will: validated, deduplicated, scored, with
    no buyer. Returns the appended messageIds."""
    batch = events_service.prepare_batch(messages, received_at=received_at, max_event_bytes=32 * 1024)
    seen = events_service.existing_message_ids(
        session=session, workspace_id=workspace_id, message_ids=[a.message_id for a in batch.accepted]
    )
    config = events_service.signal_config(session, workspace_id)
    rows: list[tuple[Any, ...]] = []
    for a in batch.accepted:
        if a.message_id in seen:
            continue
        seen.add(a.message_id)
        score = score_event(config, event_type=a.type, name=a.name, properties=a.properties)
        rows.append(
            (
                workspace_id, a.message_id, a.type, a.name, None, a.user_id, a.anonymous_id, a.group_id,
                a.previous_id, a.timestamp, a.original_timestamp, a.sent_at, received_at, a.properties, a.traits,
                a.context, score.weight, score.confidence, score.high_signal, score.suppressed,
            )
        )  # fmt: skip
    events_repository.insert_events(session, rows)
    return [r[1] for r in rows]


def _convert(name: str, value: Any) -> Any:
    if name in _TIMES:
        return driver.read_datetime(value)
    if name in _JSON:
        return driver.read_json(value)
    if name in _BOOLS:
        return bool(value)
    return value


def read_log(
    session: Session, workspace_id: str, *, after: int = 0, limit: int = 1_000_000, seqs: Sequence[int] = ()
) -> list[LogEvent]:
    """The workspace's events after ``after`` (or exactly ``seqs``) in seq order, with today's buyer."""
    cols = ", ".join(LOG_COLUMNS)
    if seqs:
        rows = driver.select_in(
            session.connection(), f"SELECT {cols} FROM events WHERE workspace_id = ?", [workspace_id], "id",
            sorted(seqs),
        )  # fmt: skip
        rows.sort(key=lambda r: r[0])
    else:
        rows = driver.fetch_all(
            session.connection(),
            f"SELECT {cols} FROM events WHERE workspace_id = ? AND id > ? ORDER BY id LIMIT ?",
            [workspace_id, after, limit],
        )
    return [
        LogEvent(seq=row[0], **{n: _convert(n, v) for n, v in zip(LOG_COLUMNS[1:], row[1:], strict=True)})
        for row in rows
    ]


def stage(name: str) -> list[Consumer]:
    return [c for c in consumers() if c.stage == name]


def process(
    session: Session,
    workspace_id: str,
    *,
    after: int = 0,
    batch: int = 2_000,
    only: Callable[[Consumer], bool] = lambda c: True,
) -> int:
    """Run every consumer over the log after ``after`` in batches of ``batch``, identity stage first (so
    the buyer stage reads the buyers it assigned); returns the last seq processed."""
    last = after
    for c in stage("identity"):
        if only(c):
            last = _run(session, workspace_id, c, after, batch)
    for c in stage("buyer"):
        if only(c):
            last = _run(session, workspace_id, c, after, batch)
    return last


def _run(session: Session, workspace_id: str, c: Consumer, after: int, batch: int) -> int:
    while True:
        events = read_log(session, workspace_id, after=after, limit=batch)
        if not events:
            return after
        c.fn(session, workspace_id, events)
        after = events[-1].seq
