"""The unit of work: the caller opens it, services only add to it, it commits or rolls back once."""

from __future__ import annotations

import fcntl
import logging
import os
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager, nullcontext
from typing import Any

from sqlalchemy import Connection, Engine
from sqlalchemy.orm import Session, sessionmaker

from offerloop.db.engine import make_session_factory

_log = logging.getLogger(__name__)

_AFTER_COMMIT = "offerloop.after_commit"
_AFTER_ROLLBACK = "offerloop.after_rollback"


def after_commit(session: Session, fn: Callable[[], None]) -> None:
    """Run ``fn`` once the unit of work that owns ``session`` (``Database.write``) has committed;
    dropped if it rolls back. The buffer behind enqueue-after-commit and pipeline wake-ups."""
    session.info.setdefault(_AFTER_COMMIT, []).append(fn)


def after_rollback(session: Session, fn: Callable[[Database], None]) -> None:
    """Run ``fn(db)`` once the unit of work that owns ``session`` has rolled back, in a unit of work of its own
    (outside the writer lock): a fact about the outside world learnt during a transaction that failed (a
    payment provider's definitive answer) outlives it. Dropped if the unit of work commits."""
    session.info.setdefault(_AFTER_ROLLBACK, []).append(fn)


def after_commit_mark(session: Session) -> int:
    """A mark in the after-commit buffer, to drop what a rolled-back savepoint added after it."""
    return len(session.info.get(_AFTER_COMMIT, ()))


def drop_after_commit_since(session: Session, mark: int) -> None:
    """Forget the hooks added after ``mark`` (their savepoint rolled back: that work never happened)."""
    hooks = session.info.get(_AFTER_COMMIT)
    if hooks:
        del hooks[mark:]


class WriterLock:
    """Serialises SQLite writers: across threads always, across processes when the file is known."""

    def __init__(self, path: str | None) -> None:
        self._thread_lock = threading.RLock()
        self._depth = 0
        self._fd = os.open(f"{path}.writer-lock", os.O_RDWR | os.O_CREAT, 0o600) if path else None

    def __enter__(self) -> None:
        self._thread_lock.acquire()
        self._depth += 1
        if self._fd is not None and self._depth == 1:
            fcntl.flock(self._fd, fcntl.LOCK_EX)

    def __exit__(self, *exc: object) -> None:
        self._depth -= 1
        if self._fd is not None and self._depth == 0:
            fcntl.flock(self._fd, fcntl.LOCK_UN)
        self._thread_lock.release()


class Database:
    """Session factories for writers and readers over one engine (or one test connection)."""

    def __init__(self, bind: Engine | Connection, **session_kwargs: Any) -> None:
        self.bind = bind
        self.dialect = bind.dialect.name
        self._write: sessionmaker[Session] = make_session_factory(bind, **session_kwargs)
        read_bind = bind.execution_options(readonly=True) if isinstance(bind, Engine) else bind
        self._read: sessionmaker[Session] = make_session_factory(read_bind, **session_kwargs)
        # SQLite has one writer at a time. Writers queue on real locks (a thread lock, then an flock shared
        # with the other processes on the same file) rather than in SQLite's busy handler, which polls with
        # sleeps of up to 100 ms and wrecks tail latency.
        self._writer_lock: WriterLock | None = None
        if self.dialect == "sqlite":
            path = bind.engine.url.database if isinstance(bind, Engine) else None
            self._writer_lock = WriterLock(path if path and path != ":memory:" else None)

    @contextmanager
    def write(self) -> Iterator[Session]:
        failed: list[Callable[[Database], None]] = []
        try:
            with self._writer_lock or nullcontext():
                session = self._write()
                try:
                    yield session
                    session.commit()
                except BaseException:
                    session.rollback()
                    session.info.pop(_AFTER_COMMIT, None)  # work of a rolled-back transaction never runs
                    failed = session.info.pop(_AFTER_ROLLBACK, None) or []
                    raise
                finally:
                    session.close()
                hooks = session.info.pop(_AFTER_COMMIT, None)
                session.info.pop(_AFTER_ROLLBACK, None)
        finally:
            for undo in failed:  # the original error propagates whatever these do
                try:
                    undo(self)
                except Exception:  # a best-effort record must not mask the error
                    _log.exception("after-rollback hook failed")
        # Outside the writer lock, after the session is closed: a hook may open its own units of work.
        for fn in hooks or ():
            fn()

    @contextmanager
    def read(self) -> Iterator[Session]:
        session = self._read()
        try:
            yield session
        finally:
            session.rollback()
            session.close()
