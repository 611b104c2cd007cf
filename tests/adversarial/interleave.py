"""Deterministic interleavings of two PostgreSQL transactions in one test: one runs in the test thread and holds
its uncommitted writes, the other in a thread until it waits for a lock on them."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import datetime

import pytest
from sqlalchemy import delete, text
from sqlalchemy.engine import Engine

from offerloop.db.uow import Database
from offerloop.models import Buyer, Workspace
from offerloop.workspaces import service as workspace_service

_WAITING = text(
    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() AND wait_event_type = 'Lock'"
)


def wait_until_blocked(
    db: Database, thread: threading.Thread, *, or_when: Callable[[], bool] | None = None
) -> None:
    """Return once another backend of this database waits for a lock (``thread``'s transaction, on the test's),
    or, given ``or_when``, once that is true (``thread`` reached a point of its own without waiting)."""
    with db.bind.connect() as conn:
        for _ in range(2000):
            if (or_when is not None and or_when()) or conn.execute(_WAITING).scalar():
                return
            assert thread.is_alive(), "the other transaction finished without waiting for this one"
            conn.rollback()
            threading.Event().wait(0.01)
    raise AssertionError("the other transaction never waited for this one")


def in_thread(db: Database, work: Callable[..., object]) -> tuple[threading.Thread, list[BaseException]]:
    """Start ``work(session)`` in its own committed unit of work in a thread; its failure lands in the list."""
    failed: list[BaseException] = []

    def run() -> None:
        try:
            with db.write() as session:
                work(session)
        except BaseException as exc:  # reported to the test thread
            failed.append(exc)

    thread = threading.Thread(target=run)
    thread.start()
    return thread, failed


@contextmanager
def committed_buyer(engine: Engine, buyer_id: str, at: datetime) -> Iterator[tuple[Database, str]]:
    """A database whose units of work commit (two transactions must see each other) and a workspace with one
    buyer, deleted afterwards. Skips on SQLite: its one writer at a time cannot overlap two transactions."""
    if engine.dialect.name != "postgresql":
        pytest.skip("SQLite runs one writer at a time: the two transactions cannot overlap")
    db = Database(engine)
    with db.write() as session:
        ws = workspace_service.create_workspace(session=session, name=f"Race on {buyer_id}").id
        session.add(Buyer(id=buyer_id, workspace_id=ws, user_id="u0", created_at=at, first_seen_at=at,
                          last_seen_at=at))  # fmt: skip
    try:
        yield db, ws
    finally:
        with db.write() as session:
            session.execute(delete(Workspace).where(Workspace.id == ws))
