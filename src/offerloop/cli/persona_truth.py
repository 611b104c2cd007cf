"""Inferred personas against the simulator's known ones: what the demo, ``bench/personas.py`` and the tests
report. Only the simulator knows the truth; the store never sees it (templates read behaviour only)."""

from __future__ import annotations

from collections.abc import Iterable, Sequence

from sqlalchemy.orm import Session

from offerloop import pipeline
from offerloop.core.clock import utcnow
from offerloop.db.uow import Database
from offerloop.events import service as event_service
from offerloop.identity import service as identity_service
from offerloop.identity.exceptions import BuyerNotFound
from offerloop.personas import service as persona_service
from offerloop.personas.confusion import PersonaConfusion
from offerloop.personas.templates import UNASSIGNED
from offerloop.sim.audience import PERSONAS, SyntheticBuyer

__all__ = ["ingest_in_process", "persona_confusion"]


def persona_confusion(
    *,
    session: Session,
    workspace_id: str,
    buyers: Iterable[SyntheticBuyer],
    personas: Sequence[str] = PERSONAS,
) -> PersonaConfusion:
    """The confusion matrix over the simulated buyers that identified themselves (a known ``userId``).

    A buyer the store does not know, or that has no persona yet, counts as unassigned.
    """
    pairs: list[tuple[str, str]] = []
    for buyer in buyers:
        if buyer.user_id is None:
            continue
        try:
            found = identity_service.lookup(session=session, workspace_id=workspace_id, user_id=buyer.user_id)
        except BuyerNotFound:
            pairs.append((buyer.persona, UNASSIGNED))
            continue
        brief = persona_service.brief(session=session, workspace_id=workspace_id, buyer_id=found.id)
        pairs.append((buyer.persona, brief["name"] if brief else UNASSIGNED))
    return PersonaConfusion.from_pairs(pairs, personas)


def ingest_in_process(
    db: Database,
    workspace_id: str,
    batches: Iterable[list[dict[str, object]]],
    *,
    max_event_bytes: int = 32768,
) -> int:
    """Ingest Segment batches through the same service path as ``/v1/batch``, one transaction per batch."""
    stored = 0
    with pipeline.bulk(db, workspace_id):  # processed once, after the last batch, in large steps
        for batch in batches:
            with db.write() as session:
                prepared = event_service.prepare_batch(
                    batch, received_at=utcnow(), max_event_bytes=max_event_bytes
                )
                stored += event_service.ingest(
                    session=session, workspace_id=workspace_id, batch=prepared
                ).accepted
    return stored
