"""Handlers by kind, one pass over due work (`run_due`), and the worker threads that keep passing."""

from __future__ import annotations

import dataclasses
import os
import socket
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import Engine
from sqlalchemy.orm import Session

from offerloop.core.clock import utcnow
from offerloop.db.uow import Database, after_commit_mark, drop_after_commit_since
from offerloop.jobs import lease, queue
from offerloop.models.jobs import Job
from offerloop.telemetry import log


@dataclass(frozen=True)
class Context:
    """What a handler gets: the held job, the time of this pass, and either the open write session
    (transactional handlers: their effects and the job's finish commit together) or the database;
    ``deps`` are what the process running it provides (e.g. the configured voice rewriter)."""

    job: Job
    now: datetime
    owner: str
    db: Database
    session: Session | None = None
    deps: Mapping[str, Any] = field(default_factory=dict)
    # What the kind's ``read_ahead`` found before the write transaction began (None: nothing, or it failed).
    ahead: Any = None


@dataclass(frozen=True)
class BatchContext:
    """What a batch handler gets: the held jobs (detached), the time of this pass, the database (it runs its
    own transactions) and the process's ``deps``."""

    jobs: tuple[Job, ...]
    now: datetime
    owner: str
    db: Database
    deps: Mapping[str, Any] = field(default_factory=dict)


Handler = Callable[[Context], datetime | None]
# Per job id: None (done), a time (run again then) or the exception that job failed with (retried with
# backoff, parked after ``max_attempts``). A job left out of the answer is done.
BatchResult = Mapping[int, datetime | BaseException | None]
BatchHandler = Callable[[BatchContext], BatchResult]
# Called in the transaction that records a failure (after ``lease.fail``): (session, job, parked). Lets a
# domain row that mirrors the job (a fulfilment task) show the attempts, the error and giving up.
FailHook = Callable[[Session, Job, bool], None]
PrepareHook = Callable[[Session, tuple[Job, ...], Mapping[str, Any]], None]
# Called with the database, the held job's id and the time of the pass, BEFORE the handler's write transaction:
# reading and computing there keeps SQLite's one writer lock free meanwhile. The handler gets the result as
# ``Context.ahead`` and must check, in its transaction, that what it was computed from still holds.
AheadHook = Callable[[Database, int, datetime], Any]


@dataclass(frozen=True)
class Kind:
    name: str
    fn: Handler
    transactional: bool = True
    lease_s: float = 60.0
    max_attempts: int = 8
    backoff_base_s: float = 5.0
    backoff_cap_s: float = 3600.0
    on_fail: FailHook | None = None
    every_s: float | None = None
    batch: int = 1
    batch_fn: BatchHandler | None = None
    prepare: PrepareHook | None = None
    read_ahead: AheadHook | None = None


RECURRING_KEY = "every"
_kinds: dict[str, Kind] = {}


def register(
    name: str,
    *,
    transactional: bool = True,
    lease_s: float = 60.0,
    max_attempts: int = 8,
    backoff_base_s: float = 5.0,
    backoff_cap_s: float = 3600.0,
    on_fail: FailHook | None = None,
    every_s: float | None = None,
    batch: int = 1,
    prepare: PrepareHook | None = None,
    read_ahead: AheadHook | None = None,
) -> Callable[[Handler], Handler]:
    """Register the handler of a job kind. It returns None when the job is done, or the time to run it
    again. A transactional handler runs inside one write transaction that also finishes the job, so its
    effects happen exactly once; the others run their own transactions and must be idempotent.
    ``every_s``: a recurring kind, whose one job (key ``RECURRING_KEY``) every runner queues when it starts
    (its handler returns its next time). ``batch``: a claim that finds one due job of this (transactional)
    kind takes up to ``batch`` of them, run one after the other in ONE write transaction, each in its own
    savepoint (a failing job rolls back alone and backs off; the others commit); ``prepare``, if given, is
    called first with the transaction and all the held jobs (to read what they need in one statement).
    ``read_ahead`` (a transactional kind run one job at a time): see ``AheadHook``."""
    if batch < 1 or (batch > 1 and not transactional):
        raise ValueError("batch needs a transactional kind (else use register_batch) and at least 1")

    def wrap(fn: Handler) -> Handler:
        _kinds[name] = Kind(
            name,
            fn,
            transactional,
            lease_s,
            max_attempts,
            backoff_base_s,
            backoff_cap_s,
            on_fail,
            every_s,
            batch,
            prepare=prepare,
            read_ahead=read_ahead,
        )
        return fn

    return wrap


def register_batch(
    name: str,
    *,
    size: int,
    lease_s: float = 60.0,
    max_attempts: int = 8,
    backoff_base_s: float = 5.0,
    backoff_cap_s: float = 3600.0,
    on_fail: FailHook | None = None,
) -> Callable[[BatchHandler], BatchHandler]:
    """Register a kind whose jobs run ``size`` at a time through one call of a batch handler, which runs its
    own transactions (so its work must be idempotent, as a non-transactional handler's) and answers per job.
    The jobs of one call are finished in one transaction after it returns; if it raises, every job of the
    call fails with that error."""
    if size < 1:
        raise ValueError("a batch holds at least one job")

    def wrap(fn: BatchHandler) -> BatchHandler:
        _kinds[name] = Kind(name, _batch_only, False, lease_s, max_attempts, backoff_base_s, backoff_cap_s,
                            on_fail, None, size, fn)  # fmt: skip
        return fn

    return wrap


def _batch_only(ctx: Context) -> datetime | None:  # pragma: no cover - run_due calls batch kinds' batch_fn
    raise AssertionError(f"{ctx.job.kind} runs through its batch handler")


def ensure_recurring(
    db: Database, *, now: datetime | None = None, only: tuple[str, ...] | None = None
) -> None:
    """Queue the one job of each recurring kind (or of ``only`` these) to run now: a starting runner runs them
    at once (idempotent: a queued job keeps an earlier time)."""
    now = now or utcnow()
    with db.write() as session:
        for kind in _kinds.values():
            if kind.every_s is not None and (only is None or kind.name in only):
                queue.enqueue(session, kind=kind.name, key=RECURRING_KEY, run_at=now, now=now)


def kinds() -> dict[str, Kind]:
    return dict(_kinds)


def owner_id(suffix: str = "") -> str:
    return f"{socket.gethostname()[:40]}:{os.getpid()}:{threading.get_ident() % 100000}{suffix}"


@dataclass(frozen=True)
class Ran:
    kind: str
    key: str
    status: str  # done | again | retrying | parked | lost
    error: str | None = None
    workspace_id: str | None = None


def run_due(
    db: Database,
    *,
    owner: str,
    now: datetime | None = None,
    only: tuple[str, ...] | None = None,
    limit: int = 1,
    deps: Mapping[str, Any] | None = None,
) -> list[Ran]:
    """Claim up to ``limit`` due jobs of the registered kinds (or ``only`` these) and run each."""
    now = now or utcnow()
    names = tuple(k for k in (only or tuple(_kinds)) if k in _kinds)
    if not names:
        return []
    with db.read() as session:
        if not lease.any_due(session, now=now, kinds=names):
            return []
    lease_s = max(_kinds[k].lease_s for k in names)
    with db.write() as session:
        jobs = lease.claim(session, owner=owner, now=now, lease_s=lease_s, kinds=names, limit=limit)
        jobs += _fill_batches(session, jobs, owner=owner, now=now)
        for j in jobs:  # each kind's own lease: a killed worker's short job comes back as soon as it should
            j.lease_until = now + timedelta(seconds=_kinds[j.kind].lease_s)
        claimed = [(j.id, j.kind, j.key, j.workspace_id) for j in jobs]
    out: list[Ran] = []
    for kind, group in _groups(claimed):
        if len(group) == 1 and kind.batch_fn is None:
            job_id, key, _ = group[0]
            ran = [_run_one(db, kind, job_id, key, owner=owner, now=now, deps=deps or {})]
        elif kind.batch_fn is not None:
            ran = _run_batch_fn(db, kind, group, owner=owner, now=now, deps=deps or {})
        else:
            ran = _run_in_one_transaction(db, kind, group, owner=owner, now=now, deps=deps or {})
        out += [dataclasses.replace(r, workspace_id=ws) for r, (_, _, ws) in zip(ran, group, strict=True)]
    return out


def _fill_batches(session: Session, jobs: list[Job], *, owner: str, now: datetime) -> list[Job]:
    """For each batch kind among the claimed jobs, more of its due jobs, up to its batch size."""
    more: list[Job] = []
    for name in dict.fromkeys(j.kind for j in jobs):
        kind = _kinds[name]
        room = kind.batch - sum(j.kind == name for j in jobs)
        if room > 0:
            more += lease.claim(
                session, owner=owner, now=now, lease_s=kind.lease_s, kinds=(name,), limit=room
            )
    return more


def _groups(
    claimed: list[tuple[int, str, str, str | None]],
) -> list[tuple[Kind, list[tuple[int, str, str | None]]]]:
    """The claimed jobs in claim order, those of one batch kind together in chunks of its batch size."""
    out: list[tuple[Kind, list[tuple[int, str, str | None]]]] = []
    open_: dict[str, list[tuple[int, str, str | None]]] = {}
    for job_id, name, key, ws in claimed:
        kind = _kinds[name]
        group = open_.get(name)
        if kind.batch == 1 or group is None or len(group) >= kind.batch:
            group = []
            out.append((kind, group))
            if kind.batch > 1:
                open_[name] = group
        group.append((job_id, key, ws))
    return out


def _run_one(
    db: Database, kind: Kind, job_id: int, key: str, *, owner: str, now: datetime, deps: Mapping[str, Any]
) -> Ran:
    try:
        if kind.transactional:
            ahead = _read_ahead(db, kind, job_id, now)
            with db.write() as session:
                job = lease.hold(session, job_id, owner=owner)
                if job is None:
                    return Ran(kind.name, key, "lost")
                context = Context(
                    job=job, now=now, owner=owner, db=db, session=session, deps=deps, ahead=ahead
                )
                again = kind.fn(context)
                lease.finish(job, now=now, again_at=again)
        else:
            with db.read() as session:
                job = session.get(Job, job_id)
                if job is None:
                    return Ran(kind.name, key, "lost")
                session.expunge(job)
            again = kind.fn(Context(job=job, now=now, owner=owner, db=db, deps=deps))
            with db.write() as session:
                held = lease.hold(session, job_id, owner=owner)
                if held is None:
                    return Ran(kind.name, key, "lost")
                lease.finish(held, now=now, again_at=again, cursor=job.cursor)
        return _ran(kind, key, again)
    except Exception as exc:  # the job records its failure; the worker goes on with the next one
        error = f"{type(exc).__name__}: {exc}"
        with db.write() as session:
            held = lease.hold(session, job_id, owner=owner)
            if held is None:
                return Ran(kind.name, key, "lost", error)
            return _failed(session, kind, held, error, now)


def _read_ahead(db: Database, kind: Kind, job_id: int, now: datetime) -> Any:
    """The kind's read-ahead for one held job; only an optimisation, so a failure is logged and ignored."""
    if kind.read_ahead is None:
        return None
    try:
        return kind.read_ahead(db, job_id, now)
    except Exception as exc:
        log.warning("job read-ahead failed", kind=kind.name, error=f"{type(exc).__name__}: {exc}")
        return None


def _failed(session: Session, kind: Kind, job: Job, error: str, now: datetime) -> Ran:
    log.warning("job failed", kind=kind.name, key=job.key, error=error)
    parked = lease.fail(
        job, now=now, error=error, max_attempts=kind.max_attempts,
        base_s=kind.backoff_base_s, cap_s=kind.backoff_cap_s,
    )  # fmt: skip
    if kind.on_fail is not None:
        kind.on_fail(session, job, parked)
    return Ran(kind.name, job.key, "parked" if parked else "retrying", error)


def _ran(kind: Kind, key: str, again: datetime | None) -> Ran:
    return Ran(kind.name, key, "done" if again is None else "again")


def _run_in_one_transaction(
    db: Database, kind: Kind, group: list[tuple[int, str, str | None]], *, owner: str, now: datetime,
    deps: Mapping[str, Any],
) -> list[Ran]:  # fmt: skip
    """A transactional batch kind's jobs in one write transaction, each in a savepoint."""
    ids = [job_id for job_id, _, _ in group]
    out: dict[int, Ran] = {}
    with db.write() as session:
        held = {j.id: j for j in lease.hold_many(session, ids, owner=owner)}
        if kind.prepare is not None and held:
            _prepare(session, kind, tuple(held[job_id] for job_id in ids if job_id in held), deps)
        for job_id, key, _ in group:
            job = held.get(job_id)
            if job is None:
                out[job_id] = Ran(kind.name, key, "lost")
                continue
            mark = after_commit_mark(session)
            savepoint = session.begin_nested()
            try:
                again = kind.fn(Context(job=job, now=now, owner=owner, db=db, session=session, deps=deps))
                session.flush()
                savepoint.commit()
            except Exception as exc:  # this job's work rolls back alone; it backs off, the others go on
                savepoint.rollback()
                drop_after_commit_since(session, mark)
                out[job_id] = _failed(session, kind, job, f"{type(exc).__name__}: {exc}", now)
                continue
            lease.finish(job, now=now, again_at=again)
            out[job_id] = _ran(kind, key, again)
    return [out[job_id] for job_id in ids]


def _prepare(session: Session, kind: Kind, jobs: tuple[Job, ...], deps: Mapping[str, Any]) -> None:
    """The kind's read-ahead, in a savepoint whose release keeps its row locks; only an optimisation, so a
    failure rolls it back and each job reads for itself."""
    assert kind.prepare is not None
    savepoint = session.begin_nested()
    try:
        kind.prepare(session, jobs, deps)
        savepoint.commit()
    except Exception as exc:
        savepoint.rollback()
        log.warning("job batch read-ahead failed", kind=kind.name, error=f"{type(exc).__name__}: {exc}")


def _run_batch_fn(
    db: Database, kind: Kind, group: list[tuple[int, str, str | None]], *, owner: str, now: datetime,
    deps: Mapping[str, Any],
) -> list[Ran]:  # fmt: skip
    """A batch handler's one call over the group, then every job finished in one transaction."""
    assert kind.batch_fn is not None
    ids = [job_id for job_id, _, _ in group]
    with db.read() as session:
        jobs = lease.by_ids(session, ids)
        for job in jobs:
            session.expunge(job)
    results: BatchResult
    try:
        results = kind.batch_fn(BatchContext(jobs=tuple(jobs), now=now, owner=owner, db=db, deps=deps))
    except Exception as exc:  # the call as a whole failed: each of its jobs records the failure
        results = {job.id: exc for job in jobs}
    out: dict[int, Ran] = {}
    with db.write() as session:
        held = {j.id: j for j in lease.hold_many(session, ids, owner=owner)}
        for job_id, key, _ in group:
            mine = held.get(job_id)
            result = results.get(job_id)
            if mine is None:
                error = f"{type(result).__name__}: {result}" if isinstance(result, BaseException) else None
                out[job_id] = Ran(kind.name, key, "lost", error)
            elif isinstance(result, BaseException):
                out[job_id] = _failed(session, kind, mine, f"{type(result).__name__}: {result}", now)
            else:
                lease.finish(mine, now=now, again_at=result)
                out[job_id] = _ran(kind, key, result)
    return [out[job_id] for job_id in ids]


@contextmanager
def keep_lease(ctx: Context, lease_s: float) -> Iterator[None]:
    """Renew the job's lease every third of ``lease_s`` while the block runs: long non-transactional work
    keeps its job, and a killed worker's job is claimable again ``lease_s`` after its last renewal."""
    if not isinstance(ctx.db.bind, Engine):  # one shared connection (a test's): no second thread may use it
        yield
        return
    stop = threading.Event()
    started = time.monotonic()

    def beat() -> None:
        while not stop.wait(lease_s / 3):
            at = ctx.now + timedelta(seconds=time.monotonic() - started)  # the pass's clock, moved on
            try:
                with ctx.db.write() as session:
                    if not lease.renew(session, ctx.job.id, owner=ctx.owner, now=at, lease_s=lease_s):
                        return  # taken over: the work stays idempotent, the finish will be refused
            except Exception:  # a missed renewal only shortens the lease
                log.exception("lease renewal failed", kind=ctx.job.kind, key=ctx.job.key)

    thread = threading.Thread(target=beat, name=f"lease-{ctx.job.id}", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join()


class Runner:
    """Worker threads that run due jobs until stopped; woken at once by work enqueued in this process,
    and polling every ``poll_s`` for work enqueued by other processes or falling due."""

    def __init__(
        self,
        db: Database,
        *,
        threads: int = 1,
        poll_s: float = 0.5,
        only: tuple[str, ...] | None = None,
        clock: Callable[[], datetime] = utcnow,
        name: str = "jobs",
        deps: Mapping[str, Any] | None = None,
    ) -> None:
        self.db = db
        self.deps = dict(deps or {})
        self.poll_s = poll_s
        self.only = only
        self.clock = clock
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(target=self._loop, name=f"{name}-{i}", daemon=True) for i in range(threads)
        ]

    def start(self) -> None:
        # If this fails, the recurring jobs are there already or the next runner to start queues them.
        try:
            ensure_recurring(self.db, now=self.clock(), only=self.only)
        except Exception:
            log.exception("queueing recurring jobs failed")
        for t in self._threads:
            t.start()

    def stop(self, timeout_s: float = 60.0) -> None:
        self._stop.set()
        queue.wake()
        for t in self._threads:
            t.join(timeout=timeout_s)

    def _loop(self) -> None:
        owner = owner_id()
        while not self._stop.is_set():
            seen = queue.generation()
            try:
                ran: list[Any] = run_due(
                    self.db, owner=owner, now=self.clock(), only=self.only, deps=self.deps
                )
            except Exception:  # a database hiccup: log, wait, try again
                log.exception("job pass failed")
                ran = []
            if not ran:
                queue.wait(seen, self.poll_s)
