"""For tests that commit to the shared database through their own engine (no runner threads, no inline
processing): run the consumers over what the test appended, as a server would, and check nothing parked."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy import delete, select
from sqlalchemy.engine import Engine

from offerloop import pipeline
from offerloop.db.uow import Database
from offerloop.models import Job, Workspace
from offerloop.pipeline import status


def processed(db: Database, workspace_id: str) -> None:
    """Every consumer caught up on the workspace's log, with no event parked (a test left lagging would
    otherwise read as a stuck consumer in a later test's /readyz)."""
    pipeline.drain(db, workspace_id=workspace_id)
    with db.read() as session:
        state = status.overview(session=session, workspace_id=workspace_id)
    assert [(c.name, c.lag, c.parked) for c in state.consumers if c.lag or c.parked] == []


def forget_queued_work(db: Database, workspace_id: str) -> None:
    """Remove the workspace's queued jobs (fulfilment, invoices, announcements), keeping its consumer
    checkpoints at the log's head: committed work, unlike other tests', must not be run by a later test
    that drains every due job of the database."""
    with db.write() as session:
        session.execute(delete(Job).where(Job.workspace_id == workspace_id, Job.kind.not_like("consumer:%")))


@contextmanager
def new_workspaces_forget_their_work(engine: Engine) -> Iterator[None]:
    """Around a live server on the shared PostgreSQL test database: afterwards, the work it left queued for the
    workspaces made meanwhile (a deliverable retrying for an hour) is removed (see ``forget_queued_work``)."""
    if engine.dialect.name != "postgresql":  # a live server on SQLite has its own database file
        yield
        return
    db = Database(engine)

    def workspaces() -> set[str]:
        with db.read() as session:
            return set(session.scalars(select(Workspace.id)))

    before = workspaces()
    try:
        yield
    finally:
        for workspace_id in sorted(workspaces() - before):
            forget_queued_work(db, workspace_id)
