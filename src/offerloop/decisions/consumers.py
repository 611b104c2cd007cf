"""Buyer-stage consumer of the event log: outcome events reward the open decisions they belong to."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy.orm import Session

from offerloop.decisions import service as decisions_service
from offerloop.pipeline.registry import LogEvent, consumer


@consumer("rewards", stage="buyer", order=20)
def match_rewards(session: Session, workspace_id: str, events: Sequence[LogEvent]) -> None:
    """Idempotent: a rewarded decision is never rewarded again, so an event seen twice counts once."""
    decisions_service.on_events(
        session=session,
        workspace_id=workspace_id,
        events=[
            (e.buyer_id, e.name, e.properties or {}, e.timestamp, e.message_id)
            for e in events
            if e.buyer_id is not None
        ],
    )
