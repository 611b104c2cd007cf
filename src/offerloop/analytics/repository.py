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
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any, Final

import polars as pl
from sqlalchemy import Select, String, and_, func, literal, select, type_coerce
from sqlalchemy.orm import Session

from offerloop.models import BuyerPersona, Decision, Event, Order, PersonaChange, Touchpoint

PURCHASE_STATUSES: Final = ("paid", "partially_refunded")
IMPORT_PREFIX: Final = "import-"
COMPLETED: Final = "Order Completed"
REFUNDED: Final = "Order Refunded"

PURCHASE_SCHEMA: Final = {
    "buyer_id": pl.String,
    "at": pl.Datetime("us"),
    "amount_minor": pl.Int64,
    "currency": pl.String,
}


def _raw(column: Any) -> Any:
    """A datetime column as the driver returns it (SQLite: text; PostgreSQL: datetime), parsed in bulk
    by Polars instead of row by row."""
    return type_coerce(column, String)


def _instants(frame: pl.DataFrame, column: str) -> pl.DataFrame:
    """Turn a raw datetime column into naive UTC microseconds (SQLite text or PostgreSQL datetimes)."""
    dtype = frame.schema[column]
    if dtype == pl.String:
        expr = pl.col(column).str.slice(0, 19).str.to_datetime("%Y-%m-%d %H:%M:%S", time_unit="us")
    elif isinstance(dtype, pl.Datetime) and dtype.time_zone is not None:
        expr = pl.col(column).dt.convert_time_zone("UTC").dt.replace_time_zone(None).dt.cast_time_unit("us")
    elif isinstance(dtype, pl.Datetime):
        expr = pl.col(column).dt.cast_time_unit("us")
    else:  # an empty or all-null column
        expr = pl.col(column).cast(pl.Datetime("us"))
    return frame.with_columns(expr.alias(column))


def _frame(session: Session, stmt: Select[Any], schema: dict[str, Any], times: Sequence[str]) -> pl.DataFrame:
    """The statement's rows as a frame of ``schema``; the ``times`` columns parsed to naive UTC in bulk."""
    rows = session.execute(stmt).all()
    columns: list[Sequence[Any]] = list(zip(*rows, strict=True)) if rows else [() for _ in schema]
    data = [
        pl.Series(name, values, dtype=(pl.String if not values else None) if name in times else dtype)
        for (name, dtype), values in zip(schema.items(), columns, strict=True)
    ]
    frame = pl.DataFrame(data)
    for name in times:
        frame = _instants(frame, name)
    return frame


def _between(column: Any, start: datetime | None, end: datetime | None) -> list[Any]:
    out = []
    if start is not None:
        out.append(column >= start)
    if end is not None:
        out.append(column < end)
    return out


def _imports(workspace_id: str, name: str) -> list[Any]:
    """The conditions of an imported order event called ``name`` (see the module docstring)."""
    return [
        Event.workspace_id == workspace_id,
        Event.name == name,
        Event.message_id.startswith(IMPORT_PREFIX, autoescape=True),
        Event.context[("offerloop", "origin")].as_string() == "creator",
    ]


def purchases(
    session: Session, workspace_id: str, *, start: datetime | None = None, end: datetime | None = None
) -> pl.DataFrame:
    """The workspace's purchases (see the module docstring), ``start`` inclusive, ``end`` exclusive:
    columns buyer_id, at (naive UTC), amount_minor, currency."""
    paid = select(Order.buyer_id, _raw(Order.paid_at), (Order.total - Order.refunded), Order.currency).where(
        Order.workspace_id == workspace_id,
        Order.status.in_(PURCHASE_STATUSES),
        Order.paid_at.is_not(None),
        *_between(Order.paid_at, start, end),
    )
    checkout = _frame(session, paid, PURCHASE_SCHEMA, ("at",))
    imported = _imported(session, workspace_id, start, end)
    return pl.concat([checkout, imported], how="vertical")


def _imported(
    session: Session, workspace_id: str, start: datetime | None, end: datetime | None
) -> pl.DataFrame:
    props = Event.properties
    completed = select(
        Event.buyer_id,
        _raw(Event.timestamp),
        props["total_minor"].as_integer(),
        props["currency"].as_string(),
        props["order_id"].as_string(),
        Event.id,
    ).where(
        *_imports(workspace_id, COMPLETED),
        Event.buyer_id.is_not(None),
        *_between(Event.timestamp, start, end),
    )
    schema = {**PURCHASE_SCHEMA, "order_id": pl.String, "seq": pl.Int64}
    frame = _frame(session, completed, schema, ("at",))
    if frame.is_empty():
        return frame.select(list(PURCHASE_SCHEMA))
    refunded = session.scalars(
        select(props["order_id"].as_string()).where(*_imports(workspace_id, REFUNDED))
    ).all()
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
    paid = select(Order.currency).where(
        Order.workspace_id == workspace_id, Order.status.in_(PURCHASE_STATUSES)
    )
    imported = select(props["currency"].as_string()).where(
        *_imports(workspace_id, COMPLETED), Event.buyer_id.is_not(None)
    )
    found = set(session.scalars(paid.distinct()).all()) | set(session.scalars(imported.distinct()).all())
    return sorted(c for c in found if c)


def first_touch_channels(session: Session, workspace_id: str) -> pl.DataFrame:
    """Each buyer's first touchpoint channel (earliest occurred_at, then lowest id): buyer_id, segment."""
    first = (
        select(Touchpoint.buyer_id, func.min(Touchpoint.occurred_at).label("first_at"))
        .where(Touchpoint.workspace_id == workspace_id, Touchpoint.buyer_id.is_not(None))
        .group_by(Touchpoint.buyer_id)
        .subquery()
    )
    stmt = (
        select(Touchpoint.buyer_id, Touchpoint.channel, Touchpoint.id)
        .join(
            first,
            and_(Touchpoint.buyer_id == first.c.buyer_id, Touchpoint.occurred_at == first.c.first_at),
        )
        .where(Touchpoint.workspace_id == workspace_id)
    )
    rows = session.execute(stmt).all()
    frame = pl.DataFrame(
        rows, schema={"buyer_id": pl.String, "segment": pl.String, "id": pl.Int64}, orient="row"
    )
    return frame.sort("id").unique(subset="buyer_id", keep="first").select("buyer_id", "segment")


def current_personas(session: Session, workspace_id: str) -> pl.DataFrame:
    """Each buyer's current persona: buyer_id, segment."""
    rows = session.execute(
        select(BuyerPersona.buyer_id, BuyerPersona.persona).where(BuyerPersona.workspace_id == workspace_id)
    ).all()
    return pl.DataFrame(rows, schema={"buyer_id": pl.String, "segment": pl.String}, orient="row")


def first_assignments(session: Session, workspace_id: str) -> pl.DataFrame:
    """Each buyer's first assignment to each persona: buyer_id, persona, assigned_at (naive UTC)."""
    stmt = (
        select(PersonaChange.buyer_id, PersonaChange.to_persona, _raw(func.min(PersonaChange.at)))
        .where(PersonaChange.workspace_id == workspace_id)
        .group_by(PersonaChange.buyer_id, PersonaChange.to_persona)
    )
    schema = {"buyer_id": pl.String, "persona": pl.String, "assigned_at": pl.Datetime("us")}
    return _frame(session, stmt, schema, ("assigned_at",))


def last_persona_change(session: Session, workspace_id: str) -> datetime | None:
    at: datetime | None = session.scalar(
        select(func.max(PersonaChange.at)).where(PersonaChange.workspace_id == workspace_id)
    )
    return at


def offer_decisions(session: Session, workspace_id: str, now: datetime) -> pl.DataFrame:
    """Decisions that showed something and whose outcome is known (rewarded, or its window is over):
    chosen_key, converted (reward > 0)."""
    stmt = select(
        Decision.chosen_key, (func.coalesce(Decision.reward, literal(0.0)) > 0).label("converted")
    ).where(
        Decision.workspace_id == workspace_id,
        Decision.chosen_key.is_not(None),
        (Decision.reward.is_not(None)) | (Decision.window_ends_at <= now),
    )
    rows = session.execute(stmt).all()
    return pl.DataFrame(rows, schema={"chosen_key": pl.String, "converted": pl.Boolean}, orient="row")
