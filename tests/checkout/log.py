"""For tests that commit to the shared database through their own engine (no runner threads, no inline
processing): run the consumers over what the test appended, as a server would, and check nothing parked."""

from __future__ import annotations

from offerloop import pipeline
from offerloop.db.uow import Database
from offerloop.pipeline import status


def processed(db: Database, workspace_id: str) -> None:
    """Every consumer caught up on the workspace's log, with no event parked (a test left lagging would
    otherwise read as a stuck consumer in a later test's /readyz)."""
    pipeline.drain(db, workspace_id=workspace_id)
    with db.read() as session:
        state = status.overview(session=session, workspace_id=workspace_id)
    assert [(c.name, c.lag, c.parked) for c in state.consumers if c.lag or c.parked] == []
