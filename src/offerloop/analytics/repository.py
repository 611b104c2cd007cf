"""Every SQL statement of the analytics domain: reads only, each scoped by workspace.

What counts as a purchase is defined here, once (``purchases``), for every analytics read:

* **A paid checkout order**: ``orders`` with status ``paid`` or ``partially_refunded``, at its ``paid_at``,
  worth ``total - refunded`` (what the buyer paid, tax included, net of refunds). A fully ``refunded``
  order is no purchase (the money went back), nor is a ``pending``, ``canceled``, ``expired`` or ``unpaid``
  one. Renewals and plan-change charges are orders too, so they count. Zero-value orders (a free trial's
  checkout) count, as in the CDNOW convention.
* **An imported order**: ``offerloop import orders`` stores each completed row as an ``Order Completed``
  event whose messageId starts with ``import-`` (checkout's own ``Order Completed`` events are not
  imports: their order is counted above, once). Worth ``properties.total_minor`` in ``properties.currency``
  at the event's time, once per ``properties.order_id`` (a ``--revision`` re-import sends the row again: the
  latest one counts), and none at all when a refunded row of the same order was imported too. Only events
  the identity stage has tied to a buyer (``buyer_id`` set) and that a creator sent
  (``context.offerloop.origin`` = ``creator``, which ingestion sets and a write-key client cannot forge)
  count.

A purchase is a (buyer, instant, amount, currency) row; same-day purchases of one buyer are folded into
one transaction by the callers that need it (retention, cohorts), not here.

Reads return hundreds of thousands of rows at scale (1M buyers): they take the driver's tuples as they are
(no Row objects), instants as integer seconds since the epoch computed by the database, and whatever can be
counted in SQL is (the buyers who never purchased, the decisions per offer).
"""

from __future__ import annotations

from datetime import datetime
from typing import Any, Final

import polars as pl
from sqlalchemy import BigInteger, ColumnElement, and_, case, cast, exists, extract, func, union
from sqlalchemy.orm import Session, aliased

from offerloop.db.scoped import scoped_select
from offerloop.models import BuyerPersona, Decision, Event, Order, PersonaChange, Touchpoint

PURCHASE_STATUSES: Final = ("paid", "partially_refunded")
IMPORT_PREFIX: Final = "import-"
COMPLETED: Final = "Order Completed"
REFUNDED: Final = "Order Refunded"
DAY_S: Final = 86_400

PURCHASE_SCHEMA: Final = {
    "buyer_id": pl.String,
    "at": pl.Int64,
    "amount_minor": pl.Int64,
    "currency": pl.String,
}


def _dialect(session: Session) -> str:
    return session.get_bind().dialect.name


def _epoch(dialect: str, column: Any) -> ColumnElement[int]:
    """Whole seconds since 1970-01-01 UTC, computed by the database (cheaper to carry than datetimes)."""
    if dialect == "sqlite":
        return cast(func.strftime("%s", column), BigInteger)
    return cast(func.floor(extract("epoch", column)), BigInteger)


def _rows(session: Session, stmt: Any) -> list[Any]:
    """The driver's tuples, without SQLAlchemy's per-row objects (the reads here are large)."""
    result = session.connection().execute(stmt)
    try:
        return list(result.cursor.fetchall()) if result.cursor is not None else []
    finally:
        result.close()


def _frame(session: Session, stmt: Any, schema: dict[str, Any]) -> pl.DataFrame:
    rows = _rows(session, stmt)
    columns: list[Any] = list(zip(*rows, strict=True)) if rows else [() for _ in schema]
    return pl.DataFrame(
        [
            pl.Series(name, values, dtype=dtype)
            for (name, dtype), values in zip(schema.items(), columns, strict=True)
        ]
    )


def _instants(frame: pl.DataFrame, *columns: str) -> pl.DataFrame:
    """Epoch-second columns as naive UTC datetimes."""
    return frame.with_columns(
        pl.from_epoch(pl.col(c), time_unit="s").dt.cast_time_unit("us") for c in columns
    )


def _between(column: Any, start: datetime | None, end: datetime | None) -> list[Any]:
    out = []
    if start is not None:
        out.append(column >= start)
    if end is not None:
        out.append(column < end)
    return out


def _imports(name: str) -> list[Any]:
    """The conditions of an imported order event called ``name`` (see the module docstring)."""
    return [
        Event.name == name,
        Event.message_id.startswith(IMPORT_PREFIX, autoescape=True),
        Event.context[("offerloop", "origin")].as_string() == "creator",
    ]


def _paid() -> list[Any]:
    return [Order.status.in_(PURCHASE_STATUSES), Order.paid_at.is_not(None)]


def _purchasers(workspace_id: str) -> Any:
    """Buyers with a paid or an imported order (a superset for filtering: a refunded import is in it)."""
    return union(
        scoped_select(Order, workspace_id, Order.buyer_id).where(*_paid()),
        scoped_select(Event, workspace_id, Event.buyer_id).where(
            *_imports(COMPLETED), Event.buyer_id.is_not(None)
        ),
    )


def purchases(
    session: Session, workspace_id: str, *, start: datetime | None = None, end: datetime | None = None
) -> pl.DataFrame:
    """The workspace's purchases (see the module docstring), ``start`` inclusive, ``end`` exclusive:
    columns buyer_id, at (naive UTC datetime), amount_minor, currency."""
    dialect = _dialect(session)
    paid = scoped_select(
        Order, workspace_id, Order.buyer_id, _epoch(dialect, Order.paid_at), Order.total - Order.refunded,
        Order.currency,
    ).where(*_paid(), *_between(Order.paid_at, start, end))  # fmt: skip
    checkout = _frame(session, paid, PURCHASE_SCHEMA)
    imported = _imported(session, workspace_id, dialect, start, end)
    return _instants(pl.concat([checkout, imported], how="vertical"), "at")


def _imported(
    session: Session, workspace_id: str, dialect: str, start: datetime | None, end: datetime | None
) -> pl.DataFrame:
    props = Event.properties
    completed = scoped_select(
        Event,
        workspace_id,
        Event.buyer_id,
        _epoch(dialect, Event.timestamp),
        props["total_minor"].as_integer(),
        props["currency"].as_string(),
        props["order_id"].as_string(),
        Event.id,
    ).where(*_imports(COMPLETED), Event.buyer_id.is_not(None), *_between(Event.timestamp, start, end))
    frame = _frame(session, completed, {**PURCHASE_SCHEMA, "order_id": pl.String, "seq": pl.Int64})
    if frame.is_empty():
        return frame.select(list(PURCHASE_SCHEMA))
    refunded = [
        r[0]
        for r in _rows(
            session,
            scoped_select(Event, workspace_id, props["order_id"].as_string()).where(*_imports(REFUNDED)),
        )
    ]
    frame = frame.filter(
        pl.col("amount_minor").is_not_null()
        & pl.col("currency").is_not_null()
        & pl.col("order_id").is_not_null()
    )
    if refunded:
        frame = frame.filter(~pl.col("order_id").is_in(pl.Series(refunded, dtype=pl.String).implode()))
    latest = frame.sort("seq").unique(subset="order_id", keep="last", maintain_order=True)
    return latest.select(list(PURCHASE_SCHEMA))


def currencies(session: Session, workspace_id: str) -> list[str]:
    """The currencies the workspace's purchases were made in (sorted)."""
    props = Event.properties
    paid = scoped_select(Order, workspace_id, Order.currency).where(*_paid()).distinct()
    imported = (
        scoped_select(Event, workspace_id, props["currency"].as_string())
        .where(*_imports(COMPLETED), Event.buyer_id.is_not(None))
        .distinct()
    )
    found = {r[0] for r in _rows(session, paid)} | {r[0] for r in _rows(session, imported)}
    return sorted(c for c in found if c)


def first_touch_channels(session: Session, workspace_id: str) -> pl.DataFrame:
    """The first touchpoint's channel (earliest occurred_at, then lowest id) of each buyer with a purchase:
    buyer_id, segment."""
    first = (
        scoped_select(
            Touchpoint, workspace_id, Touchpoint.buyer_id, func.min(Touchpoint.occurred_at).label("first_at")
        )
        .where(Touchpoint.buyer_id.in_(_purchasers(workspace_id)))
        .group_by(Touchpoint.buyer_id)
        .subquery()
    )
    stmt = scoped_select(
        Touchpoint, workspace_id, Touchpoint.buyer_id, Touchpoint.channel, Touchpoint.id
    ).join(first, and_(Touchpoint.buyer_id == first.c.buyer_id, Touchpoint.occurred_at == first.c.first_at))
    frame = _frame(session, stmt, {"buyer_id": pl.String, "segment": pl.String, "id": pl.Int64})
    return frame.sort("id").unique(subset="buyer_id", keep="first").select("buyer_id", "segment")


def current_personas(session: Session, workspace_id: str) -> pl.DataFrame:
    """The current persona of each buyer with a purchase: buyer_id, segment."""
    stmt = scoped_select(BuyerPersona, workspace_id, BuyerPersona.buyer_id, BuyerPersona.persona).where(
        BuyerPersona.buyer_id.in_(_purchasers(workspace_id))
    )
    return _frame(session, stmt, {"buyer_id": pl.String, "segment": pl.String})


def first_assignments(session: Session, workspace_id: str) -> pl.DataFrame:
    """The first assignment to each persona of each buyer with a purchase: buyer_id, persona, assigned_at."""
    stmt = (
        scoped_select(
            PersonaChange,
            workspace_id,
            PersonaChange.buyer_id,
            PersonaChange.to_persona,
            _epoch(_dialect(session), func.min(PersonaChange.at)),
        )
        .where(PersonaChange.buyer_id.in_(_purchasers(workspace_id)))
        .group_by(PersonaChange.buyer_id, PersonaChange.to_persona)
    )
    frame = _frame(session, stmt, {"buyer_id": pl.String, "persona": pl.String, "assigned_at": pl.Int64})
    return _instants(frame, "assigned_at")


def assignment_days_without_purchase(session: Session, workspace_id: str) -> pl.DataFrame:
    """Buyers who never purchased, counted per persona and UTC day of their first assignment to it
    (days since 1970-01-01): persona, day, buyers. A first assignment is a change with no earlier one of the
    same buyer to the same persona (the covering index answers that per row)."""
    earlier = aliased(PersonaChange)
    before = exists().where(
        earlier.workspace_id == workspace_id,
        earlier.buyer_id == PersonaChange.buyer_id,
        earlier.to_persona == PersonaChange.to_persona,
        (earlier.at < PersonaChange.at)
        | ((earlier.at == PersonaChange.at) & (earlier.id < PersonaChange.id)),
    )
    day = (_epoch(_dialect(session), PersonaChange.at) // DAY_S).label("day")
    # an anti-join, not NOT IN: PostgreSQL runs NOT IN over a subquery larger than work_mem row by row
    bought = _purchasers(workspace_id).subquery()
    stmt = (
        scoped_select(PersonaChange, workspace_id, PersonaChange.to_persona, day, func.count())
        .outerjoin(bought, bought.c.buyer_id == PersonaChange.buyer_id)
        .where(bought.c.buyer_id.is_(None), ~before)
        .group_by(PersonaChange.to_persona, day)
    )
    return _frame(session, stmt, {"persona": pl.String, "day": pl.Int64, "buyers": pl.Int64})


def last_persona_change(session: Session, workspace_id: str) -> datetime | None:
    at: datetime | None = session.scalar(
        scoped_select(PersonaChange, workspace_id, func.max(PersonaChange.at))
    )
    return at


def offer_decisions(session: Session, workspace_id: str, now: datetime) -> pl.DataFrame:
    """Per chosen action, the decisions that showed it and whose outcome is known (rewarded, or their window
    is over), and how many of them converted (reward > 0): chosen_key, shown, converted."""
    stmt = (
        scoped_select(
            Decision,
            workspace_id,
            Decision.chosen_key,
            func.count(),
            func.sum(case((Decision.reward > 0, 1), else_=0)),
        )
        .where(
            Decision.chosen_key.is_not(None),
            Decision.reward.is_not(None) | (Decision.window_ends_at <= now),
        )
        .group_by(Decision.chosen_key)
    )
    return _frame(session, stmt, {"chosen_key": pl.String, "shown": pl.Int64, "converted": pl.Int64})
