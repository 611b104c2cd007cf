"""Every SQL statement of the entitlements domain."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import NamedTuple

from sqlalchemy import bindparam, or_, select, text
from sqlalchemy.orm import Session

from offerloop.db.scoped import scoped_select, scoped_update
from offerloop.models import Entitlement

ADMIN = "admin"  # the source of admin overrides


class Slot(NamedTuple):
    """The columns a check needs of one entitlement row (read without building ORM objects)."""

    id: str
    component: str
    ref: str
    source: str
    status: str
    override: str | None
    quantity: int | None
    access_ends_at: datetime | None


_SLOT_COLUMNS = (
    Entitlement.id, Entitlement.component, Entitlement.ref, Entitlement.source, Entitlement.status,
    Entitlement.override, Entitlement.quantity, Entitlement.access_ends_at,
)  # fmt: skip


# Built once and run on the Core connection: on the check path SQLAlchemy's statement construction and
# ORM execution cost more than the indexed query itself (0.60 -> 0.25 ms per check on SQLite).
# ``b``: the buyer's lineage (its id and those of the buyers merged into it), an expanding IN list.
_OF_BUYER = select(*_SLOT_COLUMNS).where(
    Entitlement.workspace_id == bindparam("w"), Entitlement.buyer_id.in_(bindparam("b", expanding=True))
)
_OF_COMPONENT = _OF_BUYER.where(Entitlement.component == bindparam("c"))
_OF_REF = _OF_COMPONENT.where(Entitlement.ref == bindparam("r"))


def slots(
    session: Session, workspace_id: str, buyer_ids: Sequence[str], component: str | None = None,
    ref: str | None = None,
) -> list[Slot]:  # fmt: skip
    """The rows of any of ``buyer_ids`` (a lineage): one indexed statement, (workspace_id, buyer_id, component,
    ref) being the table's index."""
    params = {"w": workspace_id, "b": list(buyer_ids), "c": component, "r": ref}
    if component is None:
        stmt = _OF_BUYER
    elif ref is None:
        stmt = _OF_COMPONENT
    else:
        stmt = _OF_REF
    return [Slot(*row) for row in session.connection().execute(stmt, params)]


def find(
    session: Session, workspace_id: str, buyer_ids: Sequence[str], component: str, ref: str, source: str
) -> Entitlement | None:
    """The oldest row of (component, ref, source) held by any of ``buyer_ids`` (a lineage)."""
    rows = held(session, workspace_id, buyer_ids, component, ref, source)
    return rows[0] if rows else None


def get(session: Session, workspace_id: str, entitlement_id: str) -> Entitlement | None:
    stmt = scoped_select(Entitlement, workspace_id).where(Entitlement.id == entitlement_id)
    return session.scalars(stmt).one_or_none()


def held(
    session: Session, workspace_id: str, buyer_ids: Sequence[str], component: str, ref: str, source: str
) -> list[Entitlement]:
    """Every row of (component, ref, source) held by any of ``buyer_ids`` (a lineage), oldest first."""
    stmt = scoped_select(Entitlement, workspace_id).where(
        Entitlement.buyer_id.in_(buyer_ids),
        Entitlement.component == component,
        Entitlement.ref == ref,
        Entitlement.source == source,
    )
    return list(session.scalars(stmt.order_by(Entitlement.granted_at, Entitlement.id)))


def of_buyer(session: Session, workspace_id: str, buyer_ids: Sequence[str]) -> list[Entitlement]:
    """The rows of any of ``buyer_ids`` (a lineage)."""
    stmt = scoped_select(Entitlement, workspace_id).where(Entitlement.buyer_id.in_(buyer_ids))
    return list(
        session.scalars(
            stmt.order_by(Entitlement.component, Entitlement.ref, Entitlement.granted_at, Entitlement.id)
        )
    )


def page_of_buyer(
    session: Session, workspace_id: str, buyer_ids: Sequence[str], *, limit: int, after_id: str | None,
    component: str | None, status: str | None, source: str | None,
) -> list[Entitlement]:  # fmt: skip
    """Up to ``limit`` of the entitlements of any of ``buyer_ids`` (a lineage) by id (oldest first) after
    ``after_id``, filtered."""
    stmt = scoped_select(Entitlement, workspace_id).where(Entitlement.buyer_id.in_(buyer_ids))
    if after_id is not None:
        stmt = stmt.where(Entitlement.id > after_id)
    if component is not None:
        stmt = stmt.where(Entitlement.component == component)
    if status is not None:
        stmt = stmt.where(Entitlement.status == status)
    if source is not None:
        stmt = stmt.where(Entitlement.source == source)
    return list(session.scalars(stmt.order_by(Entitlement.id).limit(limit)))


def add(session: Session, obj: Entitlement) -> None:
    session.add(obj)


def lock_slot(session: Session, key: str) -> None:
    """Serialise upserts of one (buyer, component, ref, source): the table has no unique constraint on it.
    SQLite already has a single writer (BEGIN IMMEDIATE)."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(hashtext(:k))"), {"k": f"ent:{key}"})


def revoke_source(session: Session, workspace_id: str, source: str, reason: str, at: datetime) -> list[str]:
    """Revoke every active grant of ``source``; the ids revoked."""
    stmt = (
        scoped_update(Entitlement, workspace_id)
        .where(
            Entitlement.source == source,
            Entitlement.status == "active",
        )
        .values(status="revoked", revoked_at=at, reason=reason)
        .returning(Entitlement.id)
    )
    return sorted(session.scalars(stmt))


def set_access_end(session: Session, workspace_id: str, source: str, at: datetime | None) -> list[str]:
    stmt = (
        scoped_update(Entitlement, workspace_id)
        .where(Entitlement.source == source)
        .values(access_ends_at=at)
        .returning(Entitlement.id)
    )
    return sorted(session.scalars(stmt))


def take(session: Session, workspace_id: str, entitlement_id: str, n: int, now: datetime) -> int | None:
    """Draw ``n`` from one grant's quota if it still has ``n`` left, is active and has not ended: one
    conditional UPDATE, so concurrent uses can never drive it below zero. The quantity left, or None."""
    stmt = (
        scoped_update(Entitlement, workspace_id)
        .where(
            Entitlement.id == entitlement_id,
            Entitlement.status == "active",
            Entitlement.quantity >= n,
            or_(Entitlement.access_ends_at.is_(None), Entitlement.access_ends_at > now),
        )
        .values(quantity=Entitlement.quantity - n)
        .returning(Entitlement.quantity)
    )
    left = session.scalars(stmt).first()
    return None if left is None else int(left)


def ending_between(
    session: Session, workspace_id: str, start: datetime, end: datetime, after: tuple[datetime, str] | None,
    limit: int,
) -> list[Entitlement]:  # fmt: skip
    """Active grants (not admin rows) whose access ends in (start, end], by (end, id) after ``after``."""
    stmt = scoped_select(Entitlement, workspace_id).where(
        Entitlement.status == "active", Entitlement.source != ADMIN,
        Entitlement.access_ends_at > start, Entitlement.access_ends_at <= end,
    )  # fmt: skip
    if after is not None:
        stmt = stmt.where(
            or_(
                Entitlement.access_ends_at > after[0],
                (Entitlement.access_ends_at == after[0]) & (Entitlement.id > after[1]),
            )
        )
    stmt = stmt.order_by(Entitlement.access_ends_at, Entitlement.id).limit(limit)
    return list(session.scalars(stmt))
