"""Buyer-stage consumer of the event log: a paid order gets its invoice, a refund its credit note, a paid
subscription charge its invoice."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy.orm import Session

from offerloop.invoices import service as invoices_service
from offerloop.pipeline.registry import LogEvent, consumer

NAMES = frozenset({"Order Completed", "Order Refunded", *invoices_service.SUBSCRIPTION_CHARGES})


@consumer("invoices", stage="buyer", order=35)
def issue_documents(session: Session, workspace_id: str, events: Sequence[LogEvent]) -> None:
    """After rewards (30), before the delivery journeys (40): a journey on ``Invoice Issued`` runs once the
    announce job has recorded it. Idempotent: an event seen again finds its document issued."""
    invoices_service.on_logged_events(
        session=session,
        workspace_id=workspace_id,
        events=[
            invoices_service.Trigger(e.name, e.message_id, e.properties or {})
            for e in events
            if e.type == "track" and e.name in NAMES
        ],
    )
