"""Every SQL statement of the LTV fit: purchases, merged or erased buyers, personas and first touchpoints."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

from sqlalchemy import String, cast, func
from sqlalchemy.orm import Session

from offerloop.db import locks
from offerloop.db.scoped import scoped_select
from offerloop.models import AnalyticsPurchase, Buyer, BuyerPersona, Touchpoint


def purchases(session: Session, workspace_id: str) -> Iterator[list[tuple[str, str, str, str, str]]]:
    """Chunks of (buyer_id, UTC day YYYY-MM-DD, amount_minor, currency, purchase key) — all text — of the
    workspace's purchases: the one definition (``analytics.purchases``), as the ``analytics`` consumer keeps
    them (merges already folded into the survivor, erased buyers gone). The day is formatted by the database."""
    p = AnalyticsPurchase
    if session.get_bind().dialect.name == "sqlite":
        day = func.date(p.day * 86400, "unixepoch")
    else:
        day = func.to_char(func.date("1970-01-01") + p.day, "YYYY-MM-DD")
    stmt = scoped_select(
        p, workspace_id, p.buyer_id, day, cast(p.amount_minor, String), p.currency, p.purchase_key
    )
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
