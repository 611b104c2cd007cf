"""The log's side of the pipeline: reading a partition after a checkpoint, the head, buyer partitions, and
waking consumers after an append (this process's runners, other machines' through NOTIFY, or inline)."""

from __future__ import annotations

import hashlib
import weakref
from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import func, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from offerloop.core.cache import LruCache
from offerloop.core.clock import utcnow
from offerloop.db import driver
from offerloop.db.base import table_of
from offerloop.db.uow import after_commit
from offerloop.jobs import queue
from offerloop.models import Event, Job, PipelineOrigin
from offerloop.pipeline.registry import LogEvent, consumers

if TYPE_CHECKING:
    from offerloop.db.uow import Database

CHANNEL = "offerloop_pipeline"
IDENTITY_PART = 0

_events = table_of(Event)

# Databases whose appends are processed inline right after commit (no runner threads: the test harness).
_inline: weakref.WeakKeyDictionary[object, weakref.ref[Database]] = weakref.WeakKeyDictionary()


def set_inline(db: Database, inline: bool = True) -> None:
    """Process appends on ``db`` inline, after each appending transaction commits (or stop doing so)."""
    if inline:
        _inline[db.bind] = weakref.ref(db)
    else:
        _inline.pop(db.bind, None)


def inline_db_of(db: Database) -> bool:
    """Whether appends on ``db`` are processed inline (by a Database still alive)."""
    ref = _inline.get(db.bind)
    return ref is not None and ref() is not None


def inline_db(session: Session) -> Database | None:
    ref = _inline.get(session.get_bind())
    return ref() if ref is not None else None


# What feeds each stage, as a transaction lock per workspace on PostgreSQL: appends feed the identity stage
# (events/repository.py takes this lock before drawing ids), identity steps feed the buyer stage.
_FEEDS = {"identity": "offerloop.log:", "buyer": "offerloop.parts:"}


def lock_feed(session: Session, workspace_id: str, stage: str) -> None:
    """On PostgreSQL, wait for the transactions now feeding ``stage`` of the workspace to commit, and hold
    the lock to the end of this one. A feeder's wake-up of a checkpoint row skips rows a worker holds (SKIP
    LOCKED); that worker's recheck, after it commits, takes this lock first, so it sees what the feeder
    added instead of reading before the feeder commits and going idle with events pending."""
    if session.get_bind().dialect.name == "postgresql":
        session.connection().exec_driver_sql(
            "SELECT pg_advisory_xact_lock(hashtext(%s))", (_FEEDS[stage] + workspace_id,)
        )


def kind_of(name: str) -> str:
    return f"consumer:{name}"


def key_of(workspace_id: str, part: int) -> str:
    return f"{workspace_id}:{part}"


def partition_of(buyer_id: str, partitions: int) -> int:
    """A buyer's partition: a stable hash, the same in every process and every release."""
    return int.from_bytes(hashlib.blake2b(buyer_id.encode(), digest_size=4).digest(), "big") % partitions


def head(session: Session, workspace_id: str) -> int:
    """The last sequence number appended (and committed) in the workspace; 0 when none."""
    return int(session.scalar(select(func.max(Event.id)).where(Event.workspace_id == workspace_id)) or 0)


# (database, workspace) -> its buyer partitions, once committed (the count never changes afterwards); the
# least recently used of more workspaces than the bound are read again.
_layouts: LruCache[tuple[int, str], int] = LruCache(max_size=1 << 16)


def layout(session: Session, workspace_id: str, default: int) -> int:
    """The workspace's buyer partitions: as stored, or ``default`` stored now (at its first event)."""
    key = (id(session.get_bind().engine), workspace_id)
    known = _layouts.get(key)
    if known is not None:
        return known
    stored = session.scalar(
        select(PipelineOrigin.partitions).where(PipelineOrigin.workspace_id == workspace_id)
    )
    if stored is None:
        insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
        statement = insert(PipelineOrigin).values(workspace_id=workspace_id, seq=0, partitions=default)
        session.execute(
            statement.on_conflict_do_update(
                index_elements=["workspace_id"],
                set_={"partitions": func.coalesce(PipelineOrigin.partitions, statement.excluded.partitions)},
            )
        )
        stored = session.scalar(
            select(PipelineOrigin.partitions).where(PipelineOrigin.workspace_id == workspace_id)
        )
        assert stored is not None
        after_commit(session, lambda: _layouts.put(key, int(stored)))
    else:
        _layouts.put(key, int(stored))
    return int(stored)


def origin(session: Session, workspace_id: str) -> int:
    return int(
        session.scalar(select(PipelineOrigin.seq).where(PipelineOrigin.workspace_id == workspace_id)) or 0
    )


_READ_SQL = (
    "SELECT id, workspace_id, message_id, type, name, buyer_id, user_id, anonymous_id, group_id, previous_id, "
    "timestamp, original_timestamp, sent_at, received_at, properties, traits, context, weight, confidence, "
    "high_signal, suppressed FROM events WHERE workspace_id = ? AND id > ?"
)


def read(
    session: Session, workspace_id: str, *, after: int, up_to: int | None, part: int | None, limit: int
) -> list[LogEvent]:
    """Events of a workspace (one buyer partition of it, if ``part``) after ``after``, in log order.

    Read at the driver level and converted here (orjson, one C call per datetime): the consumers read every
    event once per stage, and SQLAlchemy's per-column result processing was most of that read's cost."""
    sql, params = _READ_SQL, [workspace_id, after]
    if up_to is not None:
        sql, params = f"{sql} AND id <= ?", [*params, up_to]
    if part is not None:
        sql, params = f"{sql} AND part = ?", [*params, part]
    rows = driver.fetch_all(session.connection(), f"{sql} ORDER BY id LIMIT ?", [*params, limit])
    return [_event(r) for r in rows]


def _event(r: Any) -> LogEvent:
    when, doc = driver.read_datetime, driver.read_json
    return LogEvent(
        r[0], r[1], r[2], r[3], r[4], r[5], r[6], r[7], r[8], r[9],
        when(r[10]), when(r[11]), when(r[12]), when(r[13]),  # type: ignore[arg-type]  # NOT NULL: never None
        doc(r[14]), doc(r[15]), doc(r[16]), r[17], r[18], bool(r[19]), bool(r[20]),
    )  # fmt: skip


# What of a stored event can change after it is appended (a merge repoints it, an erasure blanks it).
_DIGEST_SQL = (
    "SELECT id, buyer_id, user_id IS NULL, anonymous_id IS NULL, traits IS NULL, context IS NULL, "
    "previous_id IS NULL FROM events WHERE workspace_id = ? AND id >= ? AND id <= ?"
)


def digest(
    session: Session, workspace_id: str, events: Sequence[LogEvent], part: int | None
) -> list[tuple[Any, ...]]:
    """What can change of ``events`` (consecutive events of the log, or of partition ``part``) as stored now: a
    read made earlier is still right when its digest, taken then, equals this one."""
    sql, params = _DIGEST_SQL, [workspace_id, events[0].seq, events[-1].seq]
    if part is not None:
        sql, params = f"{sql} AND part = ?", [*params, part]
    rows = driver.fetch_all(session.connection(), f"{sql} ORDER BY id", params)
    return [(r[0], r[1], bool(r[2]), bool(r[3]), bool(r[4]), bool(r[5]), bool(r[6])) for r in rows]


def last_in_parts(session: Session, workspace_id: str, after: dict[int, int], up_to: int) -> dict[int, int]:
    """The last seq of each partition ``p`` in ``(after[p], up_to]``, for the partitions that have one: one
    statement of one index probe per partition (``workspace_id, part, id``), however old a checkpoint is."""
    if not after:
        return {}
    probes = [
        select(func.max(_events.c.id))
        .where(
            _events.c.workspace_id == workspace_id,
            _events.c.part == part,
            _events.c.id > cursor,
            _events.c.id <= up_to,
        )
        .scalar_subquery()
        .label(f"p{part}")
        for part, cursor in after.items()
    ]
    row = session.execute(select(*probes)).one()
    return {part: int(seq) for part, seq in zip(after, row, strict=True) if seq is not None}


def pending(session: Session, workspace_id: str, *, after: int, up_to: int | None, part: int | None) -> bool:
    return bool(read(session, workspace_id, after=after, up_to=up_to, part=part, limit=1))


def assign_parts(session: Session, workspace_id: str, first: int, last: int, partitions: int) -> set[int]:
    """Give the events ``first..last`` that have a buyer and no partition yet their buyer's partition
    (kept afterwards, when a merge repoints the row). Returns the partitions of every event in the range."""
    rows = session.execute(
        select(_events.c.id, _events.c.buyer_id, _events.c.part).where(
            _events.c.workspace_id == workspace_id, _events.c.id >= first, _events.c.id <= last
        )
    ).all()
    todo: dict[int, list[int]] = {}
    parts: set[int] = set()
    for seq, buyer_id, part in rows:
        if part is None and buyer_id is not None:
            part = partition_of(buyer_id, partitions)
            todo.setdefault(part, []).append(seq)
        if part is not None:
            parts.add(part)
    for part, seqs in todo.items():
        for start in range(0, len(seqs), 1000):
            session.execute(
                update(_events)
                .where(_events.c.workspace_id == workspace_id, _events.c.id.in_(seqs[start : start + 1000]))
                .values(part=part)
            )
    return parts


# (database, workspace) -> the (kind, partition) of its checkpoint rows known to exist, added after the creating
# commit; a workspace dropped from the bound, or an addition lost to a concurrent one, costs a redundant insert
# that does nothing (ON CONFLICT DO NOTHING).
_rows: LruCache[tuple[int, str], frozenset[tuple[str, int]]] = LruCache(max_size=1 << 14)


def ensure_jobs(session: Session, workspace_id: str, kinds: Iterable[str], parts: Iterable[int]) -> None:
    """Create the checkpoint rows that do not exist yet, starting at the workspace's origin."""
    key = (id(session.get_bind().engine), workspace_id)
    known = _rows.get(key, frozenset())
    todo = [(k, p) for k in kinds for p in parts if (k, p) not in known]
    if not todo:
        return
    _create_jobs(session, workspace_id, todo)
    after_commit(session, lambda: _rows.put(key, _rows.get(key, frozenset()).union(todo)))


def _create_jobs(session: Session, workspace_id: str, todo: list[tuple[str, int]]) -> None:
    now = utcnow()
    insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    start = select(func.coalesce(select(PipelineOrigin.seq).where(
        PipelineOrigin.workspace_id == workspace_id
    ).scalar_subquery(), 0)).scalar_subquery()  # fmt: skip
    for kind, part in todo:
        session.execute(
            insert(Job)
            .values(
                kind=kind,
                key=key_of(workspace_id, part),
                workspace_id=workspace_id,
                state="done",
                run_at=now,
                attempts=0,
                cursor=start,
                created_at=now,
                updated_at=now,
            )
            .on_conflict_do_nothing(index_elements=["kind", "key"])
        )


def bump(session: Session, workspace_id: str, kinds: list[str], parts: Iterable[int], now: datetime) -> None:
    """Queue the idle checkpoint rows of these partitions now. Rows a worker holds are skipped, never waited
    for (SKIP LOCKED): an append must not wait for a consumer's transaction; a busy partition re-checks
    for more before it goes idle."""
    keys = [key_of(workspace_id, p) for p in parts]
    if not kinds or not keys:
        return
    idle = select(Job.id).where(
        Job.workspace_id == workspace_id, Job.kind.in_(kinds), Job.key.in_(keys), Job.state == "done"
    )
    if session.get_bind().dialect.name == "postgresql":
        idle = idle.with_for_update(skip_locked=True)
    session.execute(
        update(Job)
        .where(Job.workspace_id == workspace_id, Job.id.in_(idle.scalar_subquery()))
        .values(state="queued", run_at=now, updated_at=now, done_at=None)
        .execution_options(synchronize_session=False)
    )


_known: set[str] = set()  # workspaces whose identity checkpoint rows exist (filled after commit)


def appended(session: Session, workspace_id: str) -> None:
    """Called in the appending transaction: wake the identity stage of the workspace once it commits."""
    kinds = [kind_of(c.name) for c in consumers() if c.stage == "identity"]
    if kinds:
        if workspace_id not in _known:
            ensure_jobs(session, workspace_id, kinds, [IDENTITY_PART])
            after_commit(session, lambda: _known.add(workspace_id))
        bump(session, workspace_id, kinds, [IDENTITY_PART], utcnow())
    if session.get_bind().dialect.name == "postgresql":
        # Delivered at commit to every `LISTEN`ing worker process, on any machine.
        session.connection().exec_driver_sql("SELECT pg_notify(%s, %s)", (CHANNEL, workspace_id))
    db = inline_db(session)
    if db is not None:
        from offerloop.pipeline.runner import drain  # the runner imports this module

        after_commit(session, lambda: drain(db, workspace_id=workspace_id))
    else:
        after_commit(session, queue.wake)
