"""Buyer-stage consumer of the event log: track events that a composition policy names as its trigger
queue that policy's deliverable for the buyer."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy.orm import Session

from offerloop.assembly import service as assembly_service
from offerloop.pipeline.registry import LogEvent, consumer


@consumer("triggers", stage="buyer", order=30)
def fire_triggers(session: Session, workspace_id: str, events: Sequence[LogEvent]) -> None:
    """Each event composes in its own savepoint; an unexpected error raises ``TriggerFailed`` naming the
    event, so the runner parks that one event (the rest of the batch is idempotent when run again)."""
    assembly_service.on_logged_events(
        session=session,
        workspace_id=workspace_id,
        events=[
            (e.seq, e.buyer_id, e.name, e.received_at)
            for e in events
            if e.type == "track" and e.buyer_id is not None
        ],
    )
