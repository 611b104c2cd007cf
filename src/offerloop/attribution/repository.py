"""Every SQL statement of the attribution domain: it reads the event log and the touchpoints (never writes
them) and owns ``attribution_credits``."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

from sqlalchemy import func
from sqlalchemy.orm import Session

from offerloop.db import driver, locks
from offerloop.db.scoped import scoped_delete, scoped_select
from offerloop.models import AttributionCredit, BuyerPersona, Event, Touchpoint

BATCH = 5000


def conversion_events(
    session: Session, workspace_id: str, name: str, start: datetime, end: datetime
) -> Iterator[tuple[int, str, datetime, dict[str, Any] | None]]:
    """The buyer's track events named ``name`` in [start, end), oldest first: (id, buyer_id, at, properties)."""
    stmt = (
        scoped_select(Event, workspace_id, Event.id, Event.buyer_id, Event.timestamp, Event.properties)
        .where(Event.type == "track", Event.name == name, Event.buyer_id.is_not(None))
        .where(Event.suppressed.is_(False), Event.timestamp >= start, Event.timestamp < end)
        .order_by(Event.timestamp, Event.id)
    )
    for row in session.execute(stmt.execution_options(yield_per=BATCH)):
        yield int(row[0]), str(row[1]), row[2], row[3]


def refunded_orders(session: Session, workspace_id: str, since: datetime) -> Iterator[Any]:
    """The ``order_id`` of each ``Order Refunded`` event since ``since`` that refunds the whole order (its
    ``full`` property is not ``false``; checkout sets it, imports of refunded orders do not)."""
    stmt = (
        scoped_select(Event, workspace_id, Event.properties)
        .where(Event.type == "track", Event.name == "Order Refunded", Event.suppressed.is_(False))
        .where(Event.timestamp >= since)
    )
    for (props,) in session.execute(stmt.execution_options(yield_per=BATCH)):
        if isinstance(props, dict) and props.get("full") is not False:
            yield props.get("order_id")


def lock_refresh(session: Session, workspace_id: str) -> None:
    """Serialise the refreshes of one workspace until the transaction ends (PostgreSQL; SQLite already has a
    single writer)."""
    locks.xact_lock(session, workspace_id, "attribution")


def touches(
    session: Session, workspace_id: str, start: datetime, end: datetime
) -> Iterator[tuple[str, datetime, str, str | None, str | None, str | None, str | None]]:
    """Buyers' touchpoints in [start, end), by buyer then time:
    (buyer_id, at, channel, source, medium, campaign, content)."""
    stmt = (
        scoped_select(
            Touchpoint,
            workspace_id,
            Touchpoint.buyer_id,
            Touchpoint.occurred_at,
            Touchpoint.channel,
            Touchpoint.source,
            Touchpoint.medium,
            Touchpoint.campaign,
            Touchpoint.content,
        )
        .where(Touchpoint.buyer_id.is_not(None))
        .where(Touchpoint.occurred_at >= start, Touchpoint.occurred_at < end)
        .order_by(Touchpoint.buyer_id, Touchpoint.occurred_at, Touchpoint.id)
    )
    for row in session.execute(stmt.execution_options(yield_per=BATCH)):
        yield row[0], row[1], row[2], row[3], row[4], row[5], row[6]


def delete_credits(
    session: Session, workspace_id: str, *, model: str, conversion: str, start: datetime, end: datetime
) -> int:
    result = session.execute(
        scoped_delete(AttributionCredit, workspace_id).where(
            AttributionCredit.model == model,
            AttributionCredit.conversion == conversion,
            AttributionCredit.converted_at >= start,
            AttributionCredit.converted_at < end,
        )
    )
    return int(result.rowcount or 0)  # type: ignore[attr-defined]


def delete_conversion_credits(
    session: Session, workspace_id: str, *, model: str, conversion: str, conversion_ids: list[str]
) -> None:
    """Delete the rows of these conversions wherever they were stored (a conversion may have been stored
    with another period)."""
    for i in range(0, len(conversion_ids), 500):
        session.execute(
            scoped_delete(AttributionCredit, workspace_id).where(
                AttributionCredit.model == model,
                AttributionCredit.conversion == conversion,
                AttributionCredit.conversion_id.in_(conversion_ids[i : i + 500]),
            )
        )


CREDIT_COLUMNS = (
    "workspace_id", "model", "conversion_id", "channel", "source", "campaign", "content", "conversion",
    "buyer_id", "converted_at", "share", "value_minor", "currency",
)  # fmt: skip


def insert_credits(session: Session, rows: list[tuple[Any, ...]]) -> None:
    """Insert rows (tuples in CREDIT_COLUMNS order)."""
    if rows:
        driver.insert_many(session.connection(), "attribution_credits", CREDIT_COLUMNS, rows)


_KEYS = {
    "channel": AttributionCredit.channel,
    "source": AttributionCredit.source,
    "campaign": AttributionCredit.campaign,
    "content": AttributionCredit.content,
}


def credit_sums(
    session: Session, workspace_id: str, *, model: str, conversion: str, by: str, start: datetime, end: datetime,
    currency: str | None,
) -> list[tuple[str, str | None, float, float]]:  # fmt: skip
    """Stored credit summed by a key (or by the buyer's current persona): (key, currency, share, value)."""
    key = BuyerPersona.persona if by == "persona" else _KEYS[by]
    stmt = scoped_select(
        AttributionCredit, workspace_id, key, AttributionCredit.currency,
        func.sum(AttributionCredit.share), func.sum(AttributionCredit.value_minor),
    ).where(
        AttributionCredit.model == model,
        AttributionCredit.conversion == conversion,
        AttributionCredit.converted_at >= start,
        AttributionCredit.converted_at < end,
    )  # fmt: skip
    if by == "persona":
        stmt = stmt.outerjoin(
            BuyerPersona,
            (BuyerPersona.workspace_id == AttributionCredit.workspace_id)
            & (BuyerPersona.buyer_id == AttributionCredit.buyer_id),
        )
    if currency is not None:
        stmt = stmt.where(AttributionCredit.currency == currency)
    stmt = stmt.group_by(key, AttributionCredit.currency).order_by(key, AttributionCredit.currency)
    return [(k or "", c, float(s or 0), float(v or 0)) for k, c, s, v in session.execute(stmt)]
