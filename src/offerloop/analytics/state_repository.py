"""SQL of the analytics state (``analytics_purchases``, ``analytics_buyers``, ``analytics_persona_firsts``):
what the consumer reads for a set of buyers, and the rows it replaces. Every statement is workspace-scoped and
takes its buyer ids in chunks."""

from __future__ import annotations

from collections.abc import Iterable, Iterator, Sequence
from datetime import datetime
from typing import Any, Final

from sqlalchemy import func
from sqlalchemy.orm import Session

from offerloop.analytics.purchases import NAMES, PAID, EventRow, OrderRow
from offerloop.db import driver
from offerloop.db.scoped import scoped_delete, scoped_select
from offerloop.models import (
    AnalyticsBuyer,
    AnalyticsPersonaFirst,
    AnalyticsPersonaPurchase,
    AnalyticsPurchase,
    Buyer,
    BuyerPersona,
    Event,
    Merge,
    Order,
    PersonaChange,
    Touchpoint,
)

CHUNK: Final = 500

PURCHASE_COLUMNS: Final = (
    "workspace_id", "purchase_key", "buyer_id", "at_us", "day", "month", "cohort_month", "amount_minor",
    "refunded_minor", "currency", "source", "first_touch", "persona",
)  # fmt: skip
BUYER_COLUMNS: Final = (
    "workspace_id", "buyer_id", "first_at_us", "first_day", "second_day", "first_month", "purchases",
    "holdout_draw", "first_touch", "first_touch_us", "persona", "first_persona", "first_assigned_us",
)  # fmt: skip
SPEND_COLUMNS: Final = (
    "workspace_id",
    "buyer_id",
    "persona",
    "purchase_key",
    "currency",
    "day",
    "amount_minor",
)
FIRST_COLUMNS: Final = ("workspace_id", "buyer_id", "persona", "at_us", "day", "purchased", "bought_day")


def _chunks(ids: Iterable[str]) -> Iterator[list[str]]:
    items = sorted(set(ids))
    for i in range(0, len(items), CHUNK):
        yield items[i : i + CHUNK]


def buyer_links(
    session: Session, workspace_id: str, ids: Iterable[str]
) -> dict[str, tuple[str | None, bool]]:
    """buyer id -> (merged_into_id, erased) for the known ones."""
    out: dict[str, tuple[str | None, bool]] = {}
    for chunk in _chunks(ids):
        stmt = scoped_select(Buyer, workspace_id, Buyer.id, Buyer.merged_into_id, Buyer.deleted_at).where(
            Buyer.id.in_(chunk)
        )
        for buyer_id, merged_into, deleted_at in session.execute(stmt):
            out[buyer_id] = (merged_into, deleted_at is not None)
    return out


def _by_chunk(session: Session, ids: Iterable[str] | None, base: Any, column: Any) -> Iterator[Any]:
    """The rows of ``base`` for the buyers ``ids`` (``column`` IN each chunk of them), or for the whole
    workspace when ``ids`` is None (one statement: the rebuild's single pass)."""
    if ids is None:
        yield from session.execute(base)
        return
    for chunk in _chunks(ids):
        yield from session.execute(base.where(column.in_(chunk)))


def workspace_links(session: Session, workspace_id: str) -> tuple[set[str], set[str]]:
    """(merged-away ids, erased ids) of the whole workspace."""
    stmt = scoped_select(Buyer, workspace_id, Buyer.id, Buyer.merged_into_id, Buyer.deleted_at).where(
        (Buyer.merged_into_id.is_not(None)) | (Buyer.deleted_at.is_not(None))
    )
    merged: set[str] = set()
    erased: set[str] = set()
    for buyer_id, merged_into, _deleted in session.execute(stmt):
        (merged if merged_into else erased).add(buyer_id)
    return merged, erased


def workspace_merges(session: Session, workspace_id: str) -> list[tuple[str, str]]:
    """(winner, loser) of every merge of the workspace that is not undone."""
    stmt = scoped_select(Merge, workspace_id, Merge.winner_id, Merge.loser_id).where(
        Merge.undone_at.is_(None)
    )
    return [(w, lo) for w, lo in session.execute(stmt)]


def merged_into(session: Session, workspace_id: str, winners: Iterable[str]) -> list[tuple[str, str]]:
    """(winner, loser) of the merges (not undone) whose winner is one of ``winners``."""
    base = scoped_select(Merge, workspace_id, Merge.winner_id, Merge.loser_id).where(
        Merge.undone_at.is_(None)
    )
    return [(w, lo) for w, lo in _by_chunk(session, winners, base, Merge.winner_id)]


def orders_of(session: Session, workspace_id: str, ids: Iterable[str] | None) -> list[tuple[str, OrderRow]]:
    """(buyer_id, order) of the buyers' (None: every buyer's) paid (or partially refunded) orders."""
    base = scoped_select(
        Order, workspace_id, Order.buyer_id, Order.id, Order.status, Order.paid_at, Order.total, Order.refunded,
        Order.currency,
    ).where(Order.status.in_(PAID))  # fmt: skip
    return [
        (r[0], OrderRow(r[1], r[2], r[3], int(r[4]), int(r[5]), r[6]))
        for r in _by_chunk(session, ids, base, Order.buyer_id)
    ]


def order_events_of(
    session: Session, workspace_id: str, ids: Iterable[str] | None
) -> list[tuple[str, EventRow]]:
    """(buyer_id, event) of the buyers' (None: every buyer's) ``Order Completed`` / ``Order Refunded`` track
    events."""
    base = scoped_select(
        Event, workspace_id, Event.buyer_id, Event.id, Event.name, Event.timestamp, Event.properties,
        Event.context, Event.suppressed,
    ).where(Event.type == "track", Event.name.in_(NAMES), Event.buyer_id.is_not(None))  # fmt: skip
    return [
        (r[0], EventRow(int(r[1]), r[2], r[3], r[4], r[5], bool(r[6])))
        for r in _by_chunk(session, ids, base, Event.buyer_id)
    ]


def checkout_orders(session: Session, workspace_id: str, order_ids: Iterable[str] | None) -> set[str]:
    """Which of these ids (None: every id) are orders of the workspace (any status)."""
    base = scoped_select(Order, workspace_id, Order.id)
    return {r[0] for r in _by_chunk(session, order_ids, base, Order.id)}


def touches_of(
    session: Session, workspace_id: str, ids: Iterable[str] | None
) -> list[tuple[str, datetime, int, str]]:
    """(buyer_id, occurred_at, id, channel) of the buyers' (None: every buyer's) touchpoints."""
    t = Touchpoint
    base = scoped_select(t, workspace_id, t.buyer_id, t.occurred_at, t.id, t.channel)
    return [(r[0], r[1], int(r[2]), r[3]) for r in _by_chunk(session, ids, base, t.buyer_id)]


def personas_of(session: Session, workspace_id: str, ids: Iterable[str] | None) -> dict[str, str]:
    """buyer id -> current persona, for these buyers (None: every buyer)."""
    base = scoped_select(BuyerPersona, workspace_id, BuyerPersona.buyer_id, BuyerPersona.persona)
    return dict(_by_chunk(session, ids, base, BuyerPersona.buyer_id))


def persona_firsts_of(
    session: Session, workspace_id: str, ids: Iterable[str] | None
) -> list[tuple[str, str, datetime]]:
    """(buyer_id, persona, first assignment) from the buyers' (None: every buyer's) persona history (the
    covering index)."""
    pc = PersonaChange
    base = scoped_select(pc, workspace_id, pc.buyer_id, pc.to_persona, func.min(pc.at)).group_by(
        pc.buyer_id, pc.to_persona
    )
    return [(b, p, at) for b, p, at in _by_chunk(session, ids, base, pc.buyer_id)]


Rows = dict[str, set[tuple[Any, ...]]]
TABLES: Final = (
    (AnalyticsPurchase, PURCHASE_COLUMNS),
    (AnalyticsBuyer, BUYER_COLUMNS),
    (AnalyticsPersonaFirst, FIRST_COLUMNS),
    (AnalyticsPersonaPurchase, SPEND_COLUMNS),
)


def stored(session: Session, workspace_id: str, ids: Iterable[str]) -> list[Rows]:
    """The rows stored for these buyers, per table of ``TABLES``: by buyer, tuples in the table's column order
    without workspace_id."""
    out: list[Rows] = []
    for model, columns in TABLES:
        base = scoped_select(model, workspace_id, *(getattr(model, c) for c in columns[1:]))
        found: Rows = {}
        for row in _by_chunk(session, ids, base, model.buyer_id):
            found.setdefault(row[columns.index("buyer_id") - 1], set()).add(tuple(row))
        out.append(found)
    return out


def delete_buyers(session: Session, workspace_id: str, ids: Iterable[str]) -> None:
    """Delete every analytics row of these buyers."""
    for chunk in _chunks(ids):
        for model, _ in TABLES:
            session.execute(scoped_delete(model, workspace_id).where(model.buyer_id.in_(chunk)))


def delete_workspace(session: Session, workspace_id: str) -> None:
    for model, _ in TABLES:
        session.execute(scoped_delete(model, workspace_id))


def insert(session: Session, rows: Sequence[Sequence[tuple[Any, ...]]]) -> None:
    """Insert rows per table of ``TABLES`` (tuples in its column order, workspace_id first)."""
    conn = session.connection()
    for (model, columns), table_rows in zip(TABLES, rows, strict=True):
        if table_rows:
            driver.insert_many(conn, model.__tablename__, columns, table_rows)


def candidate_buyers(session: Session, workspace_id: str) -> list[str]:
    """Every buyer the state may have rows for: with a paid order, an order event or a persona change."""
    found: set[str] = set()
    for stmt in (
        scoped_select(Order, workspace_id, Order.buyer_id).where(Order.status.in_(PAID)).distinct(),
        scoped_select(Event, workspace_id, Event.buyer_id)
        .where(Event.name.in_(NAMES), Event.buyer_id.is_not(None))
        .distinct(),
        scoped_select(PersonaChange, workspace_id, PersonaChange.buyer_id).distinct(),
    ):
        found.update(b for b in session.scalars(stmt) if b)
    return sorted(found)
