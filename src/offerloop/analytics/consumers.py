"""Buyer-stage consumer of the event log: keeps the analytics state (``analytics.state``) of every buyer an
event arrives for — purchases, the buyer's summary, first persona assignments."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy.orm import Session

from offerloop.analytics import state
from offerloop.pipeline.registry import LogEvent, consumer


@consumer("analytics", stage="buyer", order=45)
def keep_state(session: Session, workspace_id: str, events: Sequence[LogEvent]) -> None:
    """After features and personas (10) and the invoices (35): a buyer's persona and touchpoints are those
    their events left. Idempotent: a refresh recomputes the buyer's rows from the store."""
    state.refresh(
        session=session, workspace_id=workspace_id, buyer_ids={e.buyer_id for e in events if e.buyer_id}
    )
