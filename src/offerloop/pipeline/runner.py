"""Running consumers over the log: one durable checkpoint row per consumer and partition (a `jobs` row,
kind ``consumer:<name>``, key ``<workspace>:<partition>``, ``cursor`` = last seq done), claimed with leases.

A step applies up to ``batch`` events of one partition in the transaction that advances its checkpoint
(exactly once). An event a consumer raises on is found by bisection (savepoints), retried with backoff and,
after ``max_attempts``, parked; only that consumer's partition waits for it meanwhile.
"""

from __future__ import annotations

import math
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, fields
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from offerloop.core.clock import utcnow
from offerloop.db.uow import Database, after_commit, after_commit_mark, drop_after_commit_since
from offerloop.jobs import lease, queue
from offerloop.jobs import runner as jobs_runner
from offerloop.models import Job, ParkedEvent
from offerloop.pipeline import checkpoints, log, metrics, pacing
from offerloop.pipeline.registry import Consumer, LogEvent, consumers
from offerloop.telemetry import log as logger


@dataclass
class Config:
    """Pipeline settings (``partitions`` is for new workspaces: each keeps the count of its first event)."""

    partitions: int | None = None  # None: 1 on SQLite, 8 on PostgreSQL (see ``partitions_for``)
    batch: int = 2000
    step_s: float = 0.0  # SQLite: a step takes ~this many seconds of events (pacing.step_size); 0: batch
    max_attempts: int = 5
    backoff_base_s: float = 1.0
    backoff_cap_s: float = 30.0
    stuck_s: float = 60.0
    fresh_wait_s: float = 2.0
    read_ahead: bool | None = None  # None: in processes that do not answer requests (see PipelineWorkers)


config = Config()
# Whether this process's consumer steps read ahead (set when its PipelineWorkers start).
_reading_ahead = False


def partitions_for(session: Session, workspace_id: str) -> int:
    """The workspace's buyer partitions, fixed at its first event: a buyer's events must all land in one
    partition (its newer events applied before older ones waiting elsewhere would be skipped by the
    features watermark). New workspaces take the ``pipeline_partitions`` setting, by default 1 on SQLite
    (one writer applies everything, so more partitions only add steps) and 8 on PostgreSQL (what workers
    share). Called in the identity stage's write transaction."""
    return log.layout(
        session, workspace_id, config.partitions or (1 if session.get_bind().dialect.name == "sqlite" else 8)
    )


def configure(settings: Any) -> None:
    """Take ``pipeline_<field>`` values from the settings object."""
    for f in fields(Config):
        value = getattr(settings, f"pipeline_{f.name}", None)
        if value is not None:
            setattr(config, f.name, value)


# Consumers keep short leases: a step holds its row locked while it runs, so the lease only matters
# when a worker dies, and then the partition is taken over quickly.
LEASE_S = 10.0


def register_kind(name: str) -> None:
    """The jobs kind that runs consumer ``name`` (called by ``registry.consumer``)."""
    # A failure of the step itself (not of the consumer: that is handled inside) is retried forever with
    # capped backoff; a parked checkpoint row would silently stop a partition.
    jobs_runner.register(
        log.kind_of(name), lease_s=LEASE_S, max_attempts=1_000_000_000, backoff_base_s=1.0, backoff_cap_s=30.0,
        read_ahead=_read_ahead_of,
    )(_handler)  # fmt: skip


def kinds() -> tuple[str, ...]:
    return tuple(log.kind_of(c.name) for c in consumers())


def other_kinds() -> tuple[str, ...]:
    """Every registered job kind the consumer threads do not run (renders, fulfilment, due work…)."""
    from offerloop.pipeline import partitions

    mine = {*kinds(), partitions.KIND}
    return tuple(k for k in jobs_runner.kinds() if k not in mine)


def _by_name(name: str) -> Consumer | None:
    return next((c for c in consumers() if c.name == name), None)


def _handler(ctx: jobs_runner.Context) -> datetime | None:
    consumer = _by_name(ctx.job.kind.removeprefix("consumer:"))
    if consumer is None or ctx.session is None:  # unregistered since the row was made: nothing to do
        return None
    ahead = ctx.ahead if isinstance(ctx.ahead, Ahead) else None
    return step(ctx.session, ctx.db, consumer, ctx.job, now=ctx.now, ahead=ahead)


def _part(job: Job) -> int:
    return int(job.key.rsplit(":", 1)[1])


def gate(session: Session, consumer: Consumer, workspace_id: str) -> int | None:
    """The last seq this consumer may read: everything the identity consumers before it have done
    (None: no limit, the first identity consumer reads up to the head)."""
    before = [
        log.kind_of(c.name)
        for c in consumers()
        if c.stage == "identity"
        and (consumer.stage == "buyer" or (c.order, c.name) < (consumer.order, consumer.name))
    ]
    if not before:
        return None
    key = log.key_of(workspace_id, log.IDENTITY_PART)
    low, found = checkpoints.lowest_cursor(session, workspace_id, before, key)
    if found < len(before):
        return log.origin(session, workspace_id)
    return low


def _try(
    session: Session,
    db: Database,
    consumer: Consumer,
    workspace_id: str,
    chunk: Sequence[LogEvent],
    plan: Any = None,
) -> tuple[str | None, set[int]]:
    """Apply ``chunk`` (with the consumer's plan for it, if one was prepared) in a savepoint; the error
    (rolled back) or the buyer partitions it touched."""
    mark = after_commit_mark(session)
    savepoint = session.begin_nested()
    try:
        if plan is not None and consumer.apply is not None:
            consumer.apply(session, workspace_id, chunk, plan)
        else:
            consumer.fn(session, workspace_id, chunk)
        parts: set[int] = set()
        if consumer.stage == "identity":
            parts = log.assign_parts(
                session, workspace_id, chunk[0].seq, chunk[-1].seq, partitions_for(session, workspace_id)
            )
        session.flush()
        savepoint.commit()
        return None, parts
    except Exception as exc:  # the consumer's failure is the event's, handled by retry and parking
        savepoint.rollback()
        drop_after_commit_since(session, mark)
        return f"{type(exc).__name__}: {exc}"[:4000], set()


@dataclass
class _Outcome:
    """What applying one read of the log did to one consumer's checkpoint row."""

    cursor: int
    failing: dict[str, Any]
    done: int = 0
    parked: int = 0
    touched: set[int] = field(default_factory=set)
    retry_at: datetime | None = None


def _apply(
    session: Session,
    db: Database,
    consumer: Consumer,
    job: Job,
    events: Sequence[LogEvent],
    now: datetime,
    plan: Any = None,
) -> _Outcome:
    """Apply ``events`` (those after ``job``'s checkpoint) for one consumer: the whole batch at once (with
    ``plan``, what the consumer prepared for exactly these events), a failing event found by bisection and
    retried with backoff, then parked after ``max_attempts``."""
    assert job.workspace_id is not None
    workspace_id = job.workspace_id
    out = _Outcome(cursor=int(job.cursor or 0), failing=dict(job.payload or {}))
    i = 0
    # A known poisoned event at the head is tried alone first; otherwise the whole batch at once.
    size = 1 if events and out.failing.get("seq") == events[0].seq else len(events)
    while i < len(events):
        chunk = events[i : i + size]
        whole = i == 0 and len(chunk) == len(events)
        error, parts = _try(session, db, consumer, workspace_id, chunk, plan if whole else None)
        if error is None:
            i += len(chunk)
            out.cursor, out.done = chunk[-1].seq, out.done + len(chunk)
            out.touched |= parts
            out.failing = {} if out.failing.get("seq", 0) <= out.cursor else out.failing
            size = len(events) - i
            continue
        if len(chunk) > 1:  # bisect: the good prefix commits, the failing event ends up alone
            size = max(1, len(chunk) // 2)
            continue
        event = chunk[0]
        failing = out.failing
        attempts = int(failing.get("attempts", 0)) + 1 if failing.get("seq") == event.seq else 1
        if attempts < config.max_attempts:
            out.failing = {"seq": event.seq, "attempts": attempts, "error": error}
            delay = lease.backoff_s(
                attempts,
                base_s=config.backoff_base_s,
                cap_s=config.backoff_cap_s,
                key=f"{job.kind}:{job.key}",
            )
            out.retry_at = now + timedelta(seconds=delay)
            logger.warning("consumer failed on an event", consumer=consumer.name, seq=event.seq, error=error)
            break
        _park(session, consumer, event, error, attempts, now)
        logger.error("event parked", consumer=consumer.name, seq=event.seq, error=error)
        out.failing, out.cursor, i, out.parked = {}, event.seq, i + 1, out.parked + 1
        size = len(events) - i
    job.cursor = out.cursor
    job.payload = out.failing or None
    return out


def _riders(session: Session, consumer: Consumer, job: Job, now: datetime) -> list[tuple[Consumer, Job]]:
    """The other buyer-stage consumers of ``job``'s partition that can apply the same read of the log in this
    step: their row is free (no live lease; on PostgreSQL not locked by another worker), at the same
    checkpoint, with no poisoned event waiting. One step then runs the whole stage of a partition, instead
    of one claim, read and commit per consumer."""
    others = {log.kind_of(c.name): c for c in consumers() if c.stage == "buyer" and c.name != consumer.name}
    if consumer.stage != "buyer" or not others:
        return []
    free = checkpoints.free_at_cursor(session, job.workspace_id, list(others), job.key, job.cursor, now)
    # (A cleared payload may be SQL NULL or JSON null, so the poisoned-event check is made here.)
    rows = sorted((j for j in free if not j.payload), key=lambda j: (others[j.kind].order, j.kind))
    return [(others[j.kind], j) for j in rows]


def step(
    session: Session,
    db: Database,
    consumer: Consumer,
    job: Job,
    *,
    now: datetime,
    up_to: int | None = None,
    ahead: Ahead | None = None,
) -> datetime | None:
    """Apply the next events of ``job``'s partition (and, riding along, of the other buyer-stage consumers
    at the same checkpoint); returns when to run ``job`` again (None: caught up). ``ahead``: what
    :func:`_read_ahead` read and prepared before this transaction, used if it still holds."""
    assert job.workspace_id is not None
    workspace_id, part = job.workspace_id, _part(job)
    limit = gate(session, consumer, workspace_id)
    if up_to is not None:
        limit = up_to if limit is None else min(limit, up_to)
    began = time.perf_counter()
    read_part = None if consumer.stage == "identity" else part
    plans: dict[str, Any] = {}
    if ahead is not None and _still_holds(session, job, ahead, limit, read_part):
        events, plans = ahead.events, ahead.plans
        more = ahead.more or log.pending(
            session, workspace_id, after=events[-1].seq, up_to=limit, part=read_part
        )
        metrics.read_ahead("used")
    else:
        if ahead is not None:
            metrics.read_ahead("stale")
        batch = pacing.step_size(session, consumer.stage, batch=config.batch, step_s=config.step_s)
        events = log.read(
            session, workspace_id, after=int(job.cursor or 0), up_to=limit, part=read_part, limit=batch + 1
        )
        more = len(events) > batch
        events = events[:batch]
    riders = _riders(session, consumer, job, now) if events else []
    started = time.perf_counter()
    out = _apply(session, db, consumer, job, events, now, plans.get(consumer.name))
    after_commit(session, _stepped(consumer.name, out, time.perf_counter() - started))
    for rider, row in riders:
        started = time.perf_counter()
        ridden = _apply(session, db, rider, row, events, now, plans.get(rider.name))
        after_commit(session, _stepped(rider.name, ridden, time.perf_counter() - started))
        lease.finish(row, now=now, again_at=ridden.retry_at or (now if more else None))
    pacing.paced(consumer.stage, len(events), time.perf_counter() - began)
    if out.touched:
        buyer = [log.kind_of(c.name) for c in consumers() if c.stage == "buyer"]
        log.lock_feed(session, workspace_id, "buyer")
        log.ensure_jobs(session, workspace_id, buyer, sorted(out.touched))
        log.bump(session, workspace_id, buyer, sorted(out.touched), now)
        after_commit(session, queue.wake)
    if out.retry_at is not None:
        return out.retry_at
    if more:
        return now
    # Caught up: on PostgreSQL an append that committed while this step held the rows skipped them (SKIP
    # LOCKED), and a step bounded by ``up_to`` left later events; look again once this commits. On SQLite an
    # unbounded step needs no second look: appends and identity steps (which bump the partitions they
    # touch) commit strictly before or after this transaction, under the one writer lock.
    if up_to is not None or session.get_bind().dialect.name != "sqlite":
        after_commit(session, _rechecker(db, [consumer, *(r for r, _ in riders)], workspace_id, part))
    return None


@dataclass
class Ahead:
    """One step's read of the log made before its write transaction (SQLite: outside the writer lock), and
    the plans of the consumers that prepare, computed from it."""

    cursor: int
    limit: int | None
    events: list[LogEvent]
    digest: list[tuple[Any, ...]]
    more: bool
    plans: dict[str, Any]


def _read_ahead_of(db: Database, job_id: int, now: datetime) -> Ahead | None:
    """The jobs runner's read-ahead hook: :func:`_read_ahead` of the held row, where this process reads ahead."""
    if not _reading_ahead or db.dialect != "sqlite":
        return None
    with db.read() as session:
        job = session.get(Job, job_id)
        if job is None:
            return None
        session.expunge(job)
    return _read_ahead(db, job, now)


def _read_ahead(db: Database, job: Job, now: datetime) -> Ahead | None:
    """On SQLite, read the step's events and prepare the plans of its consumers that can, in a read
    transaction: the step's write transaction (which holds the one writer lock every ingest batch needs)
    then only checks that they still hold and writes. Elsewhere None (no writer lock to spare), and in a process
    that also answers requests: there the read-ahead's computing competes with the request threads for the
    GIL, and measured over HTTP it made acknowledgement → applied 2-4x slower for ~10 % more acknowledged."""
    consumer = _by_name(job.kind.removeprefix("consumer:"))
    if (
        not _reading_ahead
        or db.dialect != "sqlite"
        or consumer is None
        or job.workspace_id is None
        or job.payload
    ):
        return None  # (a poisoned event at the head is tried alone, in the transaction)
    workspace_id, cursor = job.workspace_id, int(job.cursor or 0)
    read_part = None if consumer.stage == "identity" else _part(job)
    with db.read() as session:
        limit = gate(session, consumer, workspace_id)
        batch = pacing.step_size(session, consumer.stage, batch=config.batch, step_s=config.step_s)
        events = log.read(session, workspace_id, after=cursor, up_to=limit, part=read_part, limit=batch + 1)
        more = len(events) > batch
        events = events[:batch]
        if not events:
            return None
        digest = log.digest(session, workspace_id, events, read_part)
        stage = [consumer]
        if consumer.stage == "buyer":
            others = {
                log.kind_of(c.name): c for c in consumers() if c.stage == "buyer" and c.prepare is not None
            }
            others.pop(job.kind, None)
            free = checkpoints.free_at_cursor(session, workspace_id, list(others), job.key, cursor, now)
            stage += [others[j.kind] for j in free if not j.payload]
        plans: dict[str, Any] = {}
        for c in stage:
            if c.prepare is None:
                continue
            try:
                plan = c.prepare(session, workspace_id, events)
            except Exception as exc:  # only an optimisation: the step applies these events in its transaction
                logger.warning(
                    "consumer prepare failed", consumer=c.name, error=f"{type(exc).__name__}: {exc}"
                )
                continue
            if plan is not None:
                plans[c.name] = plan
    return Ahead(cursor, limit, events, digest, more, plans)


def _still_holds(session: Session, job: Job, ahead: Ahead, limit: int | None, part: int | None) -> bool:
    """Whether ``ahead`` is what this transaction would read: the checkpoint has not moved, the gate has not
    gone back, and its events are still stored as they were read (a merge repoints events to the winner, an
    erasure blanks their identifiers and traits; either committed since makes the read stale)."""
    if job.payload or ahead.cursor != int(job.cursor or 0) or not ahead.events:
        return False
    if limit is not None and (ahead.limit is None or ahead.limit > limit):
        return False
    assert job.workspace_id is not None
    return log.digest(session, job.workspace_id, ahead.events, part) == ahead.digest


def _rechecker(db: Database, stage: list[Consumer], workspace_id: str, part: int) -> Callable[[], None]:
    return lambda: recheck(db, stage, workspace_id, part)


def _stepped(name: str, out: _Outcome, elapsed: float) -> Callable[[], None]:
    return lambda: metrics.stepped(name, out.done, out.parked, elapsed)


def _park(
    session: Session, consumer: Consumer, event: LogEvent, error: str, attempts: int, now: datetime
) -> None:
    session.add(
        ParkedEvent(
            consumer=consumer.name,
            workspace_id=event.workspace_id,
            seq=event.seq,
            message_id=event.message_id,
            error=error,
            attempts=attempts,
            parked_at=now,
            status="parked",
        )
    )
    session.flush()


def recheck(db: Database, stage: Sequence[Consumer], workspace_id: str, part: int) -> None:
    """Queue the partition again for those of ``stage`` (consumers of one stage, a step and its riders) that went
    idle while events arrived: one read of their rows, and one look at the log per distinct checkpoint."""
    stage_name = stage[0].stage
    assert all(c.stage == stage_name for c in stage)
    kinds = {log.kind_of(c.name): c for c in stage}
    key = log.key_of(workspace_id, part)
    due: list[str] = []
    with db.read() as session:
        log.lock_feed(session, workspace_id, stage_name)  # a feeder still committing is waited for
        idle = {
            k: int(cursor or 0)
            for k, (state, cursor) in checkpoints.states_at(session, workspace_id, list(kinds), key).items()
            if state == "done"
        }
        looked: dict[tuple[int, int | None], bool] = {}
        limits: dict[str, int | None] = {}
        for kind, cursor in idle.items():
            # Every buyer-stage consumer reads up to the same gate (the identity stage's checkpoint).
            gate_of = "buyer" if stage_name == "buyer" else kind
            if gate_of not in limits:
                limits[gate_of] = gate(session, kinds[kind], workspace_id)
            limit = limits[gate_of]
            if (cursor, limit) not in looked:
                looked[cursor, limit] = log.pending(
                    session, workspace_id, after=cursor, up_to=limit,
                    part=None if stage_name == "identity" else part,
                )  # fmt: skip
            if looked[cursor, limit]:
                due.append(kind)
    if not due:
        return
    with db.write() as session:
        log.bump(session, workspace_id, sorted(due), [part], utcnow())
        after_commit(session, queue.wake)


# -- inline: drain and freshness -------------------------------------------------------------------------


def _locked_if_free(
    session: Session, consumer: Consumer, workspace_id: str, part: int, now: datetime
) -> Job | None:
    """The partition's row, locked for this transaction, unless a worker holds it (its lease, its lock)."""
    kind = log.kind_of(consumer.name)
    log.ensure_jobs(session, workspace_id, [kind], [part])
    return checkpoints.locked_if_free(session, workspace_id, kind, log.key_of(workspace_id, part), now)


def _advance(
    db: Database, consumer: Consumer, workspace_id: str, part: int, target: int, deadline: float
) -> bool:
    """Bring one partition to ``target`` by ``deadline``: one step per transaction while the row is free
    (each commits its progress, so a request never holds a partition, nor the SQLite writer, for long),
    else by waiting for the worker that holds it. False when it could not: a poisoned event in backoff, or
    the deadline passed (a large backlog is the workers' to apply; the request goes on with what is done)."""
    kind, key = log.kind_of(consumer.name), log.key_of(workspace_id, part)
    while True:
        now = utcnow()
        with db.write() as session:
            job = _locked_if_free(session, consumer, workspace_id, part, now)
            if job is not None:
                if int(job.cursor or 0) >= target:
                    if session.get_bind().dialect.name != "sqlite":
                        # An append committing while this transaction held the row skipped it (SKIP LOCKED) and
                        # no step runs here to look again: the row would stay idle with the event pending.
                        after_commit(session, _rechecker(db, [consumer], workspace_id, part))
                    return True
                if job.payload and job.run_at > now:
                    return False  # a poisoned event waits for its backoff: do not hammer it
                again = step(session, db, consumer, job, now=now, up_to=target)
                if again is None:
                    # Caught up: the row is idle now (no worker pass left to do); the step's recheck
                    # queues it again after commit if events arrived past ``target``.
                    lease.finish(job, now=now)
                    return True
                # More to do, or a failing event to retry later: the row stays queued for the workers.
                job.state, job.run_at, job.updated_at = "queued", again, now
                after_commit(session, queue.wake)
                if again > now:
                    return False
        if job is None:
            with db.read() as session:
                cursor = checkpoints.cursor_of(session, workspace_id, kind, key)
            if int(cursor or 0) >= target:
                return True
        if time.monotonic() > deadline:
            return False
        if job is None:
            time.sleep(0.005)  # a worker holds the partition: poll its checkpoint


def _pending(session: Session, workspace_id: str, target: int) -> dict[str, list[int]]:
    """Each buyer-stage consumer's partitions with events after its checkpoint, up to ``target``: one read
    of the checkpoint rows, then one statement that finds each partition's last event in that range."""
    stage = [c for c in consumers() if c.stage == "buyer"]
    if not stage:
        return {}
    kinds = {log.kind_of(c.name): c.name for c in stage}
    rows = checkpoints.cursors(session, workspace_id, list(kinds))
    origin = log.origin(session, workspace_id)
    cursors: dict[str, dict[int, int]] = {name: {} for name in kinds.values()}
    for kind, key, cursor in rows:
        cursors[kinds[kind]][int(key.rsplit(":", 1)[1])] = int(cursor or 0)
    # Every partition that holds events has checkpoint rows (the identity step makes them as it assigns it).
    parts = sorted({p for by_part in cursors.values() for p in by_part})
    low = {p: min(by_part.get(p, origin) for by_part in cursors.values()) for p in parts}
    last = log.last_in_parts(session, workspace_id, low, target)
    return {
        name: [p for p in parts if last.get(p) is not None and last[p] > by_part.get(p, origin)]
        for name, by_part in cursors.items()
    }


def _identity_behind(session: Session, workspace_id: str, target: int) -> list[Consumer]:
    """The identity consumers whose checkpoint of the workspace is below ``target`` (in order)."""
    names = [c for c in consumers() if c.stage == "identity"]
    if not names:
        return []
    key = log.key_of(workspace_id, log.IDENTITY_PART)
    cursors = checkpoints.cursors_at(session, workspace_id, [log.kind_of(c.name) for c in names], key)
    start = None
    behind = []
    for c in names:
        cursor = cursors.get(log.kind_of(c.name))
        if cursor is None:
            start = log.origin(session, workspace_id) if start is None else start
            cursor = start
        if int(cursor) < target:
            behind.append(c)
    return behind


def caught_up(session: Session, workspace_id: str) -> bool:
    """Whether every consumer has applied the workspace's whole log, by one statement (False may still mean
    nothing is pending: a partition's checkpoint stays below the head while other partitions take the events,
    which :func:`catch_up` then finds out event by event)."""
    stages = consumers()
    identity = [log.kind_of(c.name) for c in stages if c.stage == "identity"]
    others = [log.kind_of(c.name) for c in stages if c.stage != "identity"]
    key = log.key_of(workspace_id, log.IDENTITY_PART)
    head, low, found = checkpoints.applied_through(session, workspace_id, identity, key, others)
    # An identity consumer without a checkpoint row has applied nothing yet (it starts at the origin).
    return head == 0 or (found == len(identity) and low is not None and low >= head)


@contextmanager
def fresh_read(db: Database, *, workspace_id: str) -> Iterator[Session]:
    """A read transaction that sees every event of the workspace acknowledged before it began, applied: the
    freshness check is its first statement (no transaction of its own) and, when something is pending, the
    transaction is begun again after :func:`catch_up`."""
    with db.read() as session:
        if caught_up(session, workspace_id):
            yield session
            return
    catch_up(db, workspace_id=workspace_id)
    with db.read() as session:
        yield session


def catch_up(
    db: Database, *, workspace_id: str, wait_s: float | None = None, up_to: int | None = None
) -> bool:
    """Apply every event of the workspace acknowledged before now (or up to ``up_to``): the identity stage,
    then each buyer-stage consumer's pending partitions — itself where a partition is free, else waiting
    (bounded by ``wait_s``, default the ``fresh_wait_s`` setting) for the worker holding it. Call it before
    the read transaction. True when everything up to the head is applied."""
    deadline = time.monotonic() + (config.fresh_wait_s if wait_s is None else wait_s)
    # One read first: when nothing is pending (the common case), no write transaction is opened, so a read
    # endpoint never waits for the SQLite writer lock.
    with db.read() as session:
        if up_to is None and caught_up(session, workspace_id):
            return True
        target = log.head(session, workspace_id) if up_to is None else up_to
        if target == 0:
            return True
        behind = _identity_behind(session, workspace_id, target)
        todo = {} if behind else _pending(session, workspace_id, target)
    if not behind and not any(todo.values()):
        return True
    complete, started = True, False

    def advance(consumer: Consumer, part: int) -> bool:
        # Past the deadline no further partition is started (the first one always is): the request
        # overshoots its bound by one step at most, however many partitions are pending.
        nonlocal started
        if started and time.monotonic() > deadline:
            return False
        started = True
        return _advance(db, consumer, workspace_id, part, target, deadline)

    for consumer in behind:
        complete &= advance(consumer, log.IDENTITY_PART)
    fresh = not behind  # ``todo`` is still true: nothing has been applied since it was read
    for consumer in consumers():
        if consumer.stage != "buyer":
            continue
        if not complete and time.monotonic() > deadline:
            break
        if not fresh:  # an earlier step may have carried this consumer along (riders), or made new work
            with db.read() as session:
                todo = _pending(session, workspace_id, target)
        parts = todo.get(consumer.name, [])
        for part in parts:
            complete &= advance(consumer, part)
        fresh = not parts
    if not complete:
        logger.warning("freshness: pending events not all applied", workspace_id=workspace_id, up_to=target)
    return complete


@contextmanager
def bulk(db: Database, workspace_id: str) -> Iterator[None]:
    """Append many batches, then process them once: inline draining (tests, CLI) is suspended inside the
    block, and the workspace is drained in large steps at its end — not once per appended batch."""
    inline = log.inline_db_of(db)
    log.set_inline(db, False)
    try:
        yield
    finally:
        log.set_inline(db, inline)
    drain(db, workspace_id=workspace_id)


def drain(db: Database, workspace_id: str | None = None, up_to: int | None = None) -> None:
    """Run every consumer until caught up (one workspace, or all); for tests, the CLI and inline mode."""
    if workspace_id is None:
        with db.read() as session:
            workspaces = checkpoints.workspace_ids(session)
    else:
        workspaces = [workspace_id]
    for ws in workspaces:
        catch_up(db, workspace_id=ws, up_to=up_to, wait_s=math.inf)


# -- replay -------------------------------------------------------------------------------------------------


def replay(session: Session, parked: ParkedEvent) -> None:
    """Run the parked event's consumer on it again, in the caller's transaction (raises if it still fails)."""
    consumer = _by_name(parked.consumer)
    if consumer is None:
        raise LookupError(f"consumer {parked.consumer} is not registered")
    workspace_id, seq = parked.workspace_id, parked.seq
    events = log.read(session, workspace_id, after=seq - 1, up_to=seq, part=None, limit=1)
    if events:
        (consumer.replay or consumer.fn)(session, workspace_id, events)
        if consumer.stage == "identity":
            parts = sorted(
                log.assign_parts(session, workspace_id, seq, seq, partitions_for(session, workspace_id))
            )
            stage = [c for c in consumers() if c.stage == "buyer"]
            kinds = [log.kind_of(c.name) for c in stage]
            log.ensure_jobs(session, workspace_id, kinds, parts)
            log.bump(session, workspace_id, kinds, parts, utcnow())
            # The buyer stage went on past this event while it had no buyer (no partition: none of them read
            # it). Each consumer whose checkpoint is past it takes it now; one still behind it reads it itself.
            resolved = log.read(session, workspace_id, after=seq - 1, up_to=seq, part=None, limit=1)
            for part in parts:
                at = checkpoints.cursors_at(session, workspace_id, kinds, log.key_of(workspace_id, part))
                for c, kind in zip(stage, kinds, strict=True):
                    if resolved and (at.get(kind) or 0) >= seq:
                        (c.replay or c.fn)(session, workspace_id, resolved)
    parked.status, parked.resolved_at = "replayed", utcnow()


# -- the runner in a process ------------------------------------------------------------------------------


class Listener:
    """LISTENs for appends on PostgreSQL (any machine) and wakes this process's runners; reconnects on error."""

    def __init__(self, db: Database) -> None:
        self.db = db
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="pipeline-listen", daemon=True)

    def start(self) -> None:
        if self.db.dialect == "postgresql":
            self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(timeout=5)

    def _run(self) -> None:
        import psycopg

        url = self.db.bind.engine.url.set(drivername="postgresql").render_as_string(hide_password=False)
        while not self._stop.is_set():
            try:
                with psycopg.connect(url, autocommit=True) as conn:
                    conn.execute(f"LISTEN {log.CHANNEL}")
                    while not self._stop.is_set():
                        for _ in conn.notifies(timeout=1.0, stop_after=1):
                            queue.wake()
            except Exception:  # the poll fallback covers the gap; reconnect after a pause
                logger.warning("pipeline listener lost its connection")
                self._stop.wait(1.0)


class PipelineWorkers:
    """Runner threads over the consumer kinds (and the log's due maintenance), plus the NOTIFY listener.
    ``serving``: the process also answers requests (no read-ahead unless the ``read_ahead`` setting says so)."""

    def __init__(self, db: Database, *, threads: int = 2, poll_s: float = 0.5, serving: bool = True) -> None:
        from offerloop.pipeline import partitions

        self.db = db
        self.read_ahead = (not serving) if config.read_ahead is None else config.read_ahead
        self.runner = jobs_runner.Runner(
            db, threads=threads, poll_s=poll_s, only=(*kinds(), partitions.KIND), name="pipeline"
        )
        self.listener = Listener(db)

    def start(self) -> None:
        from offerloop.pipeline import partitions

        global _reading_ahead
        _reading_ahead = self.read_ahead
        pacing.settle_heap()
        partitions.schedule(self.db)
        self.listener.start()
        self.runner.start()

    def stop(self) -> None:
        global _reading_ahead
        self.listener.stop()
        self.runner.stop()
        _reading_ahead = False
