"""Transaction-scoped advisory locks: serialise one kind of work per workspace on PostgreSQL (SQLite already has
a single writer, so there it is a no-op)."""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import TypeVar

from sqlalchemy import text
from sqlalchemy.orm import Session

from offerloop.db.uow import after_commit_mark, drop_after_commit_since

T = TypeVar("T")
CONFLICT_ATTEMPTS = 5


def lock_key(*parts: str) -> int:
    """A stable signed 64-bit key for ``parts`` (the same in every process, unlike ``hash``)."""
    digest = hashlib.sha256("\x1f".join(parts).encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def xact_lock(session: Session, *parts: str) -> None:
    """Wait for, then hold until the transaction ends, the advisory lock named by ``parts``."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": lock_key(*parts)})


def unique_violation(exc: BaseException) -> bool:
    """Whether ``exc`` (the driver's, or SQLAlchemy's wrapper of it) is PostgreSQL's unique violation."""
    found = getattr(exc, "sqlstate", None) or getattr(getattr(exc, "orig", None), "sqlstate", None)
    return found == "23505"


def retry_on_conflict(session: Session, work: Callable[[], T], *, attempts: int = CONFLICT_ATTEMPTS) -> T:
    """``work()``, which reads rows and then inserts what they imply: on PostgreSQL in a savepoint, run again when
    a concurrent transaction inserted one of the same keys first (the insert waited for it to commit, then failed;
    the next attempt's reads see its rows). SQLite has one writer at a time: ``work()`` runs once, as it is."""
    if session.get_bind().dialect.name != "postgresql":
        return work()
    for attempt in range(1, attempts + 1):
        mark = after_commit_mark(session)
        try:
            with session.begin_nested():
                return work()
        except Exception as exc:
            drop_after_commit_since(session, mark)
            if attempt == attempts or not unique_violation(exc):
                raise
    raise AssertionError("unreachable: the last attempt returns or raises")
