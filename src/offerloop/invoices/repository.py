"""Every SQL statement of the invoices domain: the numbered documents and their per-workspace counters."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from offerloop.db.scoped import newest_first, scoped_select
from offerloop.models import Invoice, InvoiceCounter


def add(session: Session, obj: Any) -> None:
    session.add(obj)
    session.flush()


def lock_counter(session: Session, workspace_id: str, kind: str) -> InvoiceCounter:
    """The workspace's counter of ``kind``, created at 0 when missing, its row locked until the transaction
    ends (PostgreSQL; a SQLite writer is alone anyway). Concurrent first issues both insert: the database
    keeps one row and the other insert does nothing, then both queue on the lock."""
    insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    session.execute(
        insert(InvoiceCounter)
        .values(workspace_id=workspace_id, kind=kind, last=0)
        .on_conflict_do_nothing(index_elements=["workspace_id", "kind"])
    )
    session.flush()  # populate_existing below would drop this transaction's unflushed changes
    stmt = scoped_select(InvoiceCounter, workspace_id).where(InvoiceCounter.kind == kind)
    return session.scalars(stmt.with_for_update().execution_options(populate_existing=True)).one()


def by_source(session: Session, workspace_id: str, kind: str, source_key: str) -> Invoice | None:
    stmt = scoped_select(Invoice, workspace_id).where(Invoice.kind == kind, Invoice.source_key == source_key)
    return session.scalars(stmt).one_or_none()


def by_number(session: Session, workspace_id: str, number: str) -> Invoice | None:
    stmt = scoped_select(Invoice, workspace_id).where(Invoice.number == number)
    return session.scalars(stmt).one_or_none()


def by_id(session: Session, workspace_id: str, invoice_id: str) -> Invoice | None:
    stmt = scoped_select(Invoice, workspace_id).where(Invoice.id == invoice_id)
    return session.scalars(stmt).one_or_none()


def of_order(session: Session, workspace_id: str, order_id: str, kind: str) -> list[Invoice]:
    """The order's documents of ``kind``, in the order they were numbered."""
    stmt = scoped_select(Invoice, workspace_id).where(Invoice.order_id == order_id, Invoice.kind == kind)
    return list(session.scalars(stmt.order_by(Invoice.seq)))


def of_buyers(session: Session, workspace_id: str, buyer_ids: list[str]) -> list[Invoice]:
    return list(session.scalars(scoped_select(Invoice, workspace_id).where(Invoice.buyer_id.in_(buyer_ids))))


def page(
    session: Session, workspace_id: str, *, limit: int, before_id: str | None, buyer_ids: Sequence[str] | None,
    order_id: str | None, kind: str | None,
) -> list[Invoice]:  # fmt: skip
    """Up to ``limit`` documents, newest id first, of any of ``buyer_ids`` (a buyer's lineage) if given."""
    stmt = newest_first(Invoice, workspace_id, limit=limit, before_id=before_id, order_id=order_id, kind=kind)
    if buyer_ids is not None:
        stmt = stmt.where(Invoice.buyer_id.in_(buyer_ids))
    return list(session.scalars(stmt))


def pdf_of(session: Session, workspace_id: str, invoice_id: str) -> bytes | None:
    stmt = scoped_select(Invoice, workspace_id, Invoice.pdf).where(Invoice.id == invoice_id)
    return session.scalars(stmt).one_or_none()
