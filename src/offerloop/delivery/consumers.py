"""Buyer-stage consumer of the event log: trigger events enter buyers into journeys; goal events end runs."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy.orm import Session

from offerloop.core.clock import utcnow
from offerloop.delivery import promises
from offerloop.delivery.journeys import engine
from offerloop.pipeline.registry import LogEvent, consumer


@consumer("journeys", stage="buyer", order=40)
def journeys(session: Session, workspace_id: str, events: Sequence[LogEvent]) -> None:
    """After features, personas and rewards (lower orders), so conditions read the buyer as of the event.
    Promises first: a late promise's alert is an event for a later batch either way."""
    now = utcnow()
    promises.on_events(session, workspace_id, events, now)
    engine.on_events(session, workspace_id, events, now)
