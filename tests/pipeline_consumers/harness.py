"""Drive the registered consumers by hand: append through the real ingestion without draining, read the
log back as LogEvents, and run the consumers — identity stage first, then buyer stage — over the whole log
(not partitioned) in batches cut as the test chooses, each in the caller's transaction. The real runner
(``pipeline.runner``) is what the tests compare this with."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from offerloop.db import driver
from offerloop.events import service as events_service
from offerloop.pipeline import log as pipeline_log
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
    """Append one batch through the real ``events.service.ingest`` (validated, deduplicated, scored, no
    buyer) without processing it: the caller's test decides which consumers run, and when. Returns the
    appended messageIds."""
    batch = events_service.prepare_batch(messages, received_at=received_at, max_event_bytes=32 * 1024)
    db = pipeline_log.inline_db(session)
    if db is not None:
        pipeline_log.set_inline(db, False)  # the drain is queued at append time: off just for this call
    try:
        result = events_service.ingest(session=session, workspace_id=workspace_id, batch=batch)
    finally:
        if db is not None:
            pipeline_log.set_inline(db, True)
    return [it.message_id for it in result.items if it.status == "accepted"]


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
