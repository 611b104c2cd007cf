"""Hand-built purchases for the analytics tests: checkout orders written as rows, imported orders through
the real CSV import path (rows -> Segment messages -> the log -> the identity stage -> the consumers).

A row written straight into a table (an order, a persona change, a touchpoint) is no event the ``analytics``
consumer would see: each helper then refreshes that buyer's analytics state, as the consumer does."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select

from offerloop.analytics import service as analytics_service
from offerloop.core.clock import utcnow
from offerloop.db.uow import Database
from offerloop.events import service as event_service
from offerloop.events.imports import iter_rows
from offerloop.models import Buyer, BuyerPersona, Decision, Identity, Order, PersonaChange, Touchpoint

_ids = itertools.count(1)


def at(text: str) -> datetime:
    """'2026-01-05' or '2026-01-05T10:00' as aware UTC."""
    value = datetime.fromisoformat(text)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value


def add_buyers(db: Database, workspace_id: str, *buyer_ids: str) -> None:
    now = utcnow()
    with db.write() as session:
        for buyer_id in buyer_ids:
            session.add(
                Buyer(id=buyer_id, workspace_id=workspace_id, user_id=buyer_id, created_at=now, first_seen_at=now,
                      last_seen_at=now, traits={}, trait_times={})
            )  # fmt: skip


def add_order(
    db: Database, workspace_id: str, buyer_id: str, when: str, total: int, *, currency: str = "USD",
    status: str = "paid", refunded: int = 0,
) -> None:  # fmt: skip
    """An order row as checkout leaves it (paid_at set once paid)."""
    moment = at(when)
    paid = status not in ("pending", "canceled", "expired")
    with db.write() as session:
        session.add(
            Order(id=f"o-{workspace_id[-6:]}-{next(_ids)}", workspace_id=workspace_id, buyer_id=buyer_id,
                  status=status, provider="manual", currency=currency, subtotal=total, discount=0, tax=0,
                  total=total, refunded=refunded, lines=[], created_at=moment, paid_at=moment if paid else None,
                  updated_at=moment)
        )  # fmt: skip
        session.flush()
        analytics_service.refresh(session=session, workspace_id=workspace_id, buyer_ids=[buyer_id])


def import_orders(db: Database, workspace_id: str, csv_text: str, *, revision: str = "") -> None:
    """`offerloop import orders` without the CLI shell: the same rows, messages and ingestion."""
    results = list(iter_rows("orders", csv_text, workspace_salt=workspace_id, revision=revision))
    assert all(r.message is not None for r in results), [r.errors for r in results]
    messages = [r.message for r in results]
    batch = event_service.prepare_batch(
        messages, received_at=utcnow(), max_event_bytes=32_000, origin="creator"
    )
    with db.write() as session:
        result = event_service.ingest(session=session, workspace_id=workspace_id, batch=batch)
    assert {i.status for i in result.items} == {"accepted"}, result.items


def buyer_of(db: Database, workspace_id: str, user_id: str) -> str:
    with db.read() as session:
        found = session.scalar(
            select(Identity.buyer_id).where(
                Identity.workspace_id == workspace_id, Identity.kind == "user_id", Identity.value == user_id
            )
        )
    assert found is not None
    return found


def set_persona(db: Database, workspace_id: str, buyer_id: str, persona: str) -> None:
    now = utcnow()
    with db.write() as session:
        session.add(
            BuyerPersona(buyer_id=buyer_id, workspace_id=workspace_id, persona=persona, confidence=0.9,
                         posterior={persona: 0.9}, reasons=[], templates_version=1, updated_at=now)
        )  # fmt: skip
        session.flush()
        analytics_service.refresh(session=session, workspace_id=workspace_id, buyer_ids=[buyer_id])


def persona_change(db: Database, workspace_id: str, buyer_id: str, persona: str, when: str) -> None:
    with db.write() as session:
        session.add(
            PersonaChange(workspace_id=workspace_id, buyer_id=buyer_id, from_persona=None, to_persona=persona,
                          confidence=0.8, at=at(when))
        )  # fmt: skip
        session.flush()
        analytics_service.refresh(session=session, workspace_id=workspace_id, buyer_ids=[buyer_id])


def touch(db: Database, workspace_id: str, buyer_id: str, channel: str, when: str) -> None:
    with db.write() as session:
        session.add(
            Touchpoint(workspace_id=workspace_id, buyer_id=buyer_id, event_id=next(_ids), occurred_at=at(when),
                       channel=channel, flags=[])
        )  # fmt: skip
        session.flush()
        analytics_service.refresh(session=session, workspace_id=workspace_id, buyer_ids=[buyer_id])


def decision(
    db: Database, workspace_id: str, chosen_key: str, reward: float | None, *, window_ends: str = "2026-01-01"
) -> None:
    moment = at("2025-12-01")
    fields: dict[str, Any] = {"context": {}, "candidates": [], "items": [], "excluded": []}
    with db.write() as session:
        session.add(
            Decision(id=f"d-{next(_ids)}", workspace_id=workspace_id, buyer_id=None, placement="home",
                     created_at=moment, policy="model", holdout=False, model_version=1, chosen_key=chosen_key,
                     chosen_index=0, propensity=0.5, outcome_event="Order Completed", window_ends_at=at(window_ends),
                     reward=reward, reward_at=moment if reward is not None else None, **fields)
        )  # fmt: skip
