"""Every SQL statement of the LTV fit: purchases, merged or erased buyers, personas and first touchpoints."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

from sqlalchemy import String, cast, func, type_coerce
from sqlalchemy.orm import Session

from offerloop.db import locks
from offerloop.db.scoped import scoped_select
from offerloop.models import Buyer, BuyerPersona, Event, Touchpoint

PURCHASE_EVENT = "Order Completed"


def purchases(session: Session, workspace_id: str) -> Iterator[list[tuple[str, str, str, str, str]]]:
    """Chunks of (buyer_id, UTC day YYYY-MM-DD, total_minor, currency, order_id) — all text, None when absent —
    of every ``Order Completed`` event of a known buyer: checkout's paid orders and ``offerloop import orders``
    both append one. The day and the three properties come out of the database's own functions (SQLite holds
    UTC text; JSON_EXTRACT / ->>), so no row's JSON or datetime is parsed in Python."""
    props = Event.properties
    if session.get_bind().dialect.name == "sqlite":
        day = func.substr(type_coerce(Event.timestamp, String), 1, 10)
    else:
        day = func.to_char(func.timezone("UTC", Event.timestamp), "YYYY-MM-DD")
    stmt = (
        scoped_select(
            Event, workspace_id, Event.buyer_id, day, cast(props["total_minor"].as_string(), String),
            cast(props["currency"].as_string(), String), cast(props["order_id"].as_string(), String),
        )
        .join(Buyer, (Buyer.workspace_id == Event.workspace_id) & (Buyer.id == Event.buyer_id))
        .where(Event.type == "track", Event.name == PURCHASE_EVENT)
    )  # fmt: skip
    result = session.connection().execute(stmt.execution_options(yield_per=20_000))
    for chunk in result.partitions():
        yield [tuple(row) for row in chunk]


def erased_buyers(session: Session, workspace_id: str) -> set[str]:
    """The buyers whose records were erased (their anonymised orders count for no one)."""
    return set(
        session.scalars(scoped_select(Buyer, workspace_id, Buyer.id).where(Buyer.deleted_at.is_not(None)))
    )


def personas(session: Session, workspace_id: str) -> list[tuple[str, str]]:
    stmt = scoped_select(BuyerPersona, workspace_id, BuyerPersona.buyer_id, BuyerPersona.persona)
    return [(b, p) for b, p in session.execute(stmt)]


def touchpoints(session: Session, workspace_id: str) -> Iterator[tuple[str, datetime, int, str]]:
    """(buyer_id, occurred_at, id, channel) of every resolved touchpoint."""
    stmt = scoped_select(
        Touchpoint,
        workspace_id,
        Touchpoint.buyer_id,
        Touchpoint.occurred_at,
        Touchpoint.id,
        Touchpoint.channel,
    ).where(Touchpoint.buyer_id.is_not(None))
    for row in session.execute(stmt.execution_options(yield_per=5000)):
        yield row[0], row[1], row[2], row[3]


def lock_scores(session: Session, workspace_id: str) -> None:
    """Serialise the LTV refreshes of one workspace until the transaction ends (PostgreSQL; SQLite already has a
    single writer), so two never replace the same buyer scores at once."""
    locks.xact_lock(session, workspace_id, "ltv-scores")
