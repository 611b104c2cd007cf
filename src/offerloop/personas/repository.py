"""Every SQL statement of the personas domain."""

from __future__ import annotations

from collections.abc import Iterable
from datetime import date, datetime
from typing import Any

from sqlalchemy import bindparam, func, select
from sqlalchemy.orm import Session

from offerloop.db import driver
from offerloop.db.scoped import scoped_delete, scoped_select, scoped_update
from offerloop.models import BuyerPersona, PersonaChange

PERSONA_COLUMNS = (
    "buyer_id",
    "workspace_id",
    "persona",
    "confidence",
    "posterior",
    "reasons",
    "templates_version",
    "updated_at",
)


def current(session: Session, workspace_id: str, buyer_ids: Iterable[str]) -> dict[str, str]:
    rows = driver.select_in(
        session.connection(), "SELECT buyer_id, persona FROM buyer_personas WHERE workspace_id = ?", [workspace_id],
        "buyer_id", sorted(set(buyer_ids)),
    )  # fmt: skip
    return {b: p for b, p in rows}


def save(session: Session, workspace_id: str, rows: list[dict[str, Any]], existing: set[str]) -> None:
    new = [r for r in rows if r["buyer_id"] not in existing]
    old = [r for r in rows if r["buyer_id"] in existing]
    if new:
        driver.insert_many(
            session.connection(),
            "buyer_personas",
            PERSONA_COLUMNS,
            [[r[c] for c in PERSONA_COLUMNS] for r in new],
        )
    if old:
        keys = ("buyer_id", "workspace_id")
        values: dict[str, Any] = {c: bindparam(f"p_{c}") for c in PERSONA_COLUMNS if c not in keys}
        stmt = (
            scoped_update(BuyerPersona, workspace_id)
            .where(BuyerPersona.buyer_id == bindparam("p_buyer_id"))
            .values(values)
        )
        session.connection().execute(stmt, [{f"p_{k}": v for k, v in r.items()} for r in old])


def add_history(session: Session, rows: list[dict[str, Any]]) -> None:
    if rows:
        cols = ("workspace_id", "buyer_id", "from_persona", "to_persona", "confidence", "at")
        driver.insert_many(
            session.connection(), "persona_history", cols, [[r[c] for c in cols] for r in rows]
        )


_BRIEF = select(BuyerPersona.persona, BuyerPersona.confidence, BuyerPersona.posterior).where(
    BuyerPersona.workspace_id == bindparam("w"), BuyerPersona.buyer_id == bindparam("b")
)


def brief(session: Session, workspace_id: str, buyer_id: str) -> tuple[str, float, dict[str, float]] | None:
    """(persona, confidence, posterior) of one buyer: a prebuilt statement on the connection (the decision path
    reads it per request; the ORM row would decode its reasons too)."""
    found = session.connection().execute(_BRIEF, {"w": workspace_id, "b": buyer_id}).one_or_none()
    return None if found is None else (found[0], found[1], found[2])


def get(session: Session, workspace_id: str, buyer_id: str) -> BuyerPersona | None:
    stmt = scoped_select(BuyerPersona, workspace_id).where(BuyerPersona.buyer_id == buyer_id)
    return session.scalars(stmt).one_or_none()


def history(session: Session, workspace_id: str, buyer_id: str) -> list[PersonaChange]:
    stmt = (
        scoped_select(PersonaChange, workspace_id)
        .where(PersonaChange.buyer_id == buyer_id)
        .order_by(PersonaChange.at, PersonaChange.id)
    )
    return list(session.scalars(stmt))


def latest_changes(session: Session, workspace_id: str, buyer_ids: list[str]) -> dict[str, PersonaChange]:
    """Each buyer's most recent persona change."""
    stmt = (
        scoped_select(PersonaChange, workspace_id)
        .where(PersonaChange.buyer_id.in_(buyer_ids))
        .order_by(PersonaChange.buyer_id, PersonaChange.at, PersonaChange.id)
    )
    return {row.buyer_id: row for row in session.scalars(stmt)}


def distribution(session: Session, workspace_id: str) -> list[tuple[str, int]]:
    stmt = (
        scoped_select(BuyerPersona, workspace_id, BuyerPersona.persona, func.count())
        .group_by(BuyerPersona.persona)
        .order_by(func.count().desc())
    )
    return [(p, int(n)) for p, n in session.execute(stmt)]


def _utc_day(session: Session, column: Any) -> Any:
    """The UTC calendar day of a timestamp column, in SQL (SQLite keeps UTC text; PostgreSQL a timestamptz)."""
    if session.get_bind().dialect.name == "postgresql":
        return func.date(func.timezone("UTC", column))
    return func.date(column)


def changes_by_day(
    session: Session, workspace_id: str, since: datetime
) -> list[tuple[date, str | None, str, int]]:
    """(UTC day, from persona, to persona, changes) of the persona changes at or after ``since``: one grouped
    read of the ``(workspace_id, at)`` index range, a few rows a day whatever the number of buyers."""
    day = _utc_day(session, PersonaChange.at).label("day")
    stmt = (
        scoped_select(PersonaChange, workspace_id, day, PersonaChange.from_persona, PersonaChange.to_persona,
                      func.count())
        .where(PersonaChange.at >= since)
        .group_by(day, PersonaChange.from_persona, PersonaChange.to_persona)
    )  # fmt: skip
    out = []
    for d, source, target, n in session.execute(stmt):
        out.append((d if isinstance(d, date) else date.fromisoformat(str(d)), source, target, int(n)))
    return out


def forget(session: Session, workspace_id: str, buyer_ids: list[str]) -> None:
    session.execute(scoped_delete(BuyerPersona, workspace_id).where(BuyerPersona.buyer_id.in_(buyer_ids)))
