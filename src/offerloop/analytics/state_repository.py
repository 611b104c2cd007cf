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


def merged_into(session: Session, workspace_id: str, winners: Iterable[str]) -> list[tuple[str, str]]:
    """(winner, loser) of the merges (not undone) whose winner is one of ``winners``."""
    out: list[tuple[str, str]] = []
    for chunk in _chunks(winners):
        stmt = scoped_select(Merge, workspace_id, Merge.winner_id, Merge.loser_id).where(
            Merge.winner_id.in_(chunk), Merge.undone_at.is_(None)
        )
        out.extend((w, lo) for w, lo in session.execute(stmt))
    return out


def orders_of(session: Session, workspace_id: str, ids: Iterable[str]) -> list[tuple[str, OrderRow]]:
    """(buyer_id, order) of the buyers' paid (or partially refunded) orders."""
    out: list[tuple[str, OrderRow]] = []
    for chunk in _chunks(ids):
        stmt = scoped_select(
            Order, workspace_id, Order.buyer_id, Order.id, Order.status, Order.paid_at, Order.total,
            Order.refunded, Order.currency,
        ).where(Order.buyer_id.in_(chunk), Order.status.in_(PAID))  # fmt: skip
        out.extend(
            (r[0], OrderRow(r[1], r[2], r[3], int(r[4]), int(r[5]), r[6])) for r in session.execute(stmt)
        )
    return out


def order_events_of(session: Session, workspace_id: str, ids: Iterable[str]) -> list[tuple[str, EventRow]]:
    """(buyer_id, event) of the buyers' ``Order Completed`` / ``Order Refunded`` track events."""
    out: list[tuple[str, EventRow]] = []
    for chunk in _chunks(ids):
        stmt = scoped_select(
            Event, workspace_id, Event.buyer_id, Event.id, Event.name, Event.timestamp, Event.properties,
            Event.context, Event.suppressed,
        ).where(Event.buyer_id.in_(chunk), Event.type == "track", Event.name.in_(NAMES))  # fmt: skip
        out.extend(
            (r[0], EventRow(int(r[1]), r[2], r[3], r[4], r[5], bool(r[6]))) for r in session.execute(stmt)
        )
    return out


def checkout_orders(session: Session, workspace_id: str, order_ids: Iterable[str]) -> set[str]:
    """Which of these ids are orders of the workspace (any status)."""
    out: set[str] = set()
    for chunk in _chunks(order_ids):
        out.update(session.scalars(scoped_select(Order, workspace_id, Order.id).where(Order.id.in_(chunk))))
    return out


def touches_of(
    session: Session, workspace_id: str, ids: Iterable[str]
) -> list[tuple[str, datetime, int, str]]:
    """(buyer_id, occurred_at, id, channel) of the buyers' touchpoints."""
    out: list[tuple[str, datetime, int, str]] = []
    for chunk in _chunks(ids):
        stmt = scoped_select(
            Touchpoint,
            workspace_id,
            Touchpoint.buyer_id,
            Touchpoint.occurred_at,
            Touchpoint.id,
            Touchpoint.channel,
        ).where(Touchpoint.buyer_id.in_(chunk))
        out.extend((r[0], r[1], int(r[2]), r[3]) for r in session.execute(stmt))
    return out


def personas_of(session: Session, workspace_id: str, ids: Iterable[str]) -> dict[str, str]:
    out: dict[str, str] = {}
    for chunk in _chunks(ids):
        stmt = scoped_select(BuyerPersona, workspace_id, BuyerPersona.buyer_id, BuyerPersona.persona).where(
            BuyerPersona.buyer_id.in_(chunk)
        )
        out.update((b, p) for b, p in session.execute(stmt))
    return out


def persona_firsts_of(
    session: Session, workspace_id: str, ids: Iterable[str]
) -> list[tuple[str, str, datetime]]:
    """(buyer_id, persona, first assignment) from the buyers' persona history (the covering index)."""
    out: list[tuple[str, str, datetime]] = []
    for chunk in _chunks(ids):
        stmt = (
            scoped_select(
                PersonaChange,
                workspace_id,
                PersonaChange.buyer_id,
                PersonaChange.to_persona,
                func.min(PersonaChange.at),
            )
            .where(PersonaChange.buyer_id.in_(chunk))
            .group_by(PersonaChange.buyer_id, PersonaChange.to_persona)
        )
        out.extend((b, p, at) for b, p, at in session.execute(stmt))
    return out


def stored(
    session: Session, workspace_id: str, ids: Iterable[str]
) -> tuple[dict[str, set[tuple[Any, ...]]], dict[str, tuple[Any, ...]], dict[str, set[tuple[Any, ...]]]]:
    """The rows stored for these buyers, as tuples in the column orders above (without workspace_id):
    purchases by buyer, the summary row by buyer, first assignments by buyer."""
    bought: dict[str, set[tuple[Any, ...]]] = {}
    summary: dict[str, tuple[Any, ...]] = {}
    firsts: dict[str, set[tuple[Any, ...]]] = {}
    p, b, f = AnalyticsPurchase, AnalyticsBuyer, AnalyticsPersonaFirst
    for chunk in _chunks(ids):
        rows = session.execute(
            scoped_select(p, workspace_id, *(getattr(p, c) for c in PURCHASE_COLUMNS[1:])).where(
                p.buyer_id.in_(chunk)
            )
        )
        for row in rows:
            bought.setdefault(row[1], set()).add(tuple(row))
        for row in session.execute(
            scoped_select(b, workspace_id, *(getattr(b, c) for c in BUYER_COLUMNS[1:])).where(
                b.buyer_id.in_(chunk)
            )
        ):
            summary[row[0]] = tuple(row)
        for row in session.execute(
            scoped_select(f, workspace_id, *(getattr(f, c) for c in FIRST_COLUMNS[1:])).where(
                f.buyer_id.in_(chunk)
            )
        ):
            firsts.setdefault(row[0], set()).add(tuple(row))
    return bought, summary, firsts


def delete_buyers(session: Session, workspace_id: str, ids: Iterable[str]) -> None:
    """Delete every analytics row of these buyers."""
    for chunk in _chunks(ids):
        for model in (AnalyticsPurchase, AnalyticsBuyer, AnalyticsPersonaFirst):
            session.execute(scoped_delete(model, workspace_id).where(model.buyer_id.in_(chunk)))


def delete_workspace(session: Session, workspace_id: str) -> None:
    for model in (AnalyticsPurchase, AnalyticsBuyer, AnalyticsPersonaFirst):
        session.execute(scoped_delete(model, workspace_id))


def insert(
    session: Session,
    purchases: Sequence[tuple[Any, ...]],
    buyers: Sequence[tuple[Any, ...]],
    firsts: Sequence[tuple[Any, ...]],
) -> None:
    """Insert rows (tuples in the column orders above, workspace_id first)."""
    conn = session.connection()
    for table, columns, rows in (
        ("analytics_purchases", PURCHASE_COLUMNS, purchases),
        ("analytics_buyers", BUYER_COLUMNS, buyers),
        ("analytics_persona_firsts", FIRST_COLUMNS, firsts),
    ):
        if rows:
            driver.insert_many(conn, table, columns, rows)


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
