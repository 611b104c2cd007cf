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
from offerloop.db.uow import Database
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


Handler = Callable[[Context], datetime | None]
# Called in the transaction that records a failure (after ``lease.fail``): (session, job, parked). Lets a
# domain row that mirrors the job (a fulfilment task) show the attempts, the error and giving up.
FailHook = Callable[[Session, Job, bool], None]


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
) -> Callable[[Handler], Handler]:
    """Register the handler of a job kind. It returns None when the job is done, or the time to run it
    again. A transactional handler runs inside one write transaction that also finishes the job, so its
    effects happen exactly once; the others run their own transactions and must be idempotent.
    ``every_s``: a recurring kind, whose one job (key ``RECURRING_KEY``) every runner queues when it starts
    (its handler returns its next time)."""

    def wrap(fn: Handler) -> Handler:
        _kinds[name] = Kind(
            name, fn, transactional, lease_s, max_attempts, backoff_base_s, backoff_cap_s, on_fail, every_s
        )
        return fn

    return wrap


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
        for j in jobs:  # each kind's own lease: a killed worker's short job comes back as soon as it should
            j.lease_until = now + timedelta(seconds=_kinds[j.kind].lease_s)
        claimed = [(j.id, j.kind, j.key, j.workspace_id) for j in jobs]
    return [
        dataclasses.replace(
            _run_one(db, _kinds[kind], job_id, key, owner=owner, now=now, deps=deps or {}), workspace_id=ws
        )
        for job_id, kind, key, ws in claimed
    ]


def _run_one(
    db: Database, kind: Kind, job_id: int, key: str, *, owner: str, now: datetime, deps: Mapping[str, Any]
) -> Ran:
    try:
        if kind.transactional:
            with db.write() as session:
                job = lease.hold(session, job_id, owner=owner)
                if job is None:
                    return Ran(kind.name, key, "lost")
                again = kind.fn(Context(job=job, now=now, owner=owner, db=db, session=session, deps=deps))
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
        return Ran(kind.name, key, "done" if again is None else "again")
    except Exception as exc:  # the job records its failure; the worker goes on with the next one
        error = f"{type(exc).__name__}: {exc}"
        log.warning("job failed", kind=kind.name, key=key, error=error)
        with db.write() as session:
            held = lease.hold(session, job_id, owner=owner)
            if held is None:
                return Ran(kind.name, key, "lost", error)
            parked = lease.fail(
                held, now=now, error=error, max_attempts=kind.max_attempts,
                base_s=kind.backoff_base_s, cap_s=kind.backoff_cap_s,
            )  # fmt: skip
            if kind.on_fail is not None:
                kind.on_fail(session, held, parked)
        return Ran(kind.name, key, "parked" if parked else "retrying", error)


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
