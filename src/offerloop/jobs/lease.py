"""Claim, lease, finish and back off: the one place that decides who runs a job and when it runs again."""

from __future__ import annotations

import hashlib
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import or_, select, update
from sqlalchemy.orm import Session

from offerloop.models.jobs import Job


def backoff_s(attempts: int, *, base_s: float, cap_s: float, key: str = "") -> float:
    """Exponential backoff (base, twice that, four times … up to cap) with a deterministic ±20 % spread per key,
    so jobs that failed together do not all come back in the same instant."""
    delay = min(cap_s, base_s * 2.0 ** max(0, attempts - 1))
    spread = int.from_bytes(hashlib.blake2b(f"{key}:{attempts}".encode(), digest_size=2).digest(), "big")
    return delay * (0.8 + 0.4 * spread / 0xFFFF)


def _due(now: datetime, kinds: tuple[str, ...] | None) -> list[Any]:
    conditions = [
        Job.state == "queued",
        Job.run_at <= now,
        or_(Job.lease_until.is_(None), Job.lease_until < now),
    ]
    return conditions if kinds is None else [*conditions, Job.kind.in_(kinds)]


def any_due(session: Session, *, now: datetime, kinds: tuple[str, ...] | None = None) -> bool:
    """Whether a claim could find work: a read, so idle workers never take the (SQLite) writer lock."""
    return session.execute(select(Job.id).where(*_due(now, kinds)).limit(1)).first() is not None


def claim(
    session: Session,
    *,
    owner: str,
    now: datetime,
    lease_s: float,
    kinds: tuple[str, ...] | None = None,
    limit: int = 1,
) -> list[Job]:
    """Lease up to ``limit`` due jobs to ``owner``. On PostgreSQL concurrent claimers skip each other's
    rows (FOR UPDATE SKIP LOCKED); on SQLite the writer lock already makes claims one at a time."""
    query = select(Job).where(*_due(now, kinds)).order_by(Job.run_at, Job.id).limit(limit)
    if session.get_bind().dialect.name == "postgresql":
        query = query.with_for_update(skip_locked=True)
    jobs = list(session.scalars(query))
    until = now + timedelta(seconds=lease_s)
    for job in jobs:
        job.lease_owner, job.lease_until, job.updated_at = owner, until, now
    session.flush()
    return jobs


def hold(session: Session, job_id: int, *, owner: str) -> Job | None:
    """The job, locked, if ``owner`` still holds its lease; None when the lease was lost (taken over)."""
    query = select(Job).where(Job.id == job_id, Job.lease_owner == owner).with_for_update()
    return session.scalars(query).one_or_none()


def hold_many(session: Session, job_ids: list[int], *, owner: str) -> list[Job]:
    """``hold`` for a batch in one statement: the jobs (locked) whose lease ``owner`` still holds."""
    query = select(Job).where(Job.id.in_(job_ids), Job.lease_owner == owner).order_by(Job.id)
    return list(session.scalars(query.with_for_update()))


def by_ids(session: Session, job_ids: list[int]) -> list[Job]:
    """The jobs of these ids, in id order (unlocked: a batch handler reads them before its own work)."""
    return list(session.scalars(select(Job).where(Job.id.in_(job_ids)).order_by(Job.id)))


def renew(session: Session, job_id: int, *, owner: str, now: datetime, lease_s: float) -> bool:
    """Extend a lease still held (long work); False when another worker has taken it over."""
    held = session.execute(
        update(Job)
        .where(Job.id == job_id, Job.lease_owner == owner)
        .values(lease_until=now + timedelta(seconds=lease_s), updated_at=now)
        .returning(Job.id)
    ).scalar_one_or_none()
    return held is not None


def finish(job: Job, *, now: datetime, again_at: datetime | None = None, cursor: int | None = None) -> None:
    """Release a held job: done, or queued again at ``again_at`` (recurring work, a consumer with more)."""
    if cursor is not None:
        job.cursor = cursor
    job.lease_owner = job.lease_until = None
    job.updated_at = now
    if again_at is None:
        job.state, job.done_at = "done", now
    else:
        job.state, job.run_at, job.attempts, job.last_error = "queued", again_at, 0, None


def fail(job: Job, *, now: datetime, error: str, max_attempts: int, base_s: float, cap_s: float) -> bool:
    """Record a failure; retry after backoff, or park the job (kept, visible, replayable). True if parked."""
    job.attempts += 1
    job.last_error = error[:4000]
    job.lease_owner = job.lease_until = None
    job.updated_at = now
    if job.attempts >= max_attempts:
        job.state = "parked"
        return True
    job.run_at = now + timedelta(seconds=backoff_s(job.attempts, base_s=base_s, cap_s=cap_s, key=job.key))
    return False
