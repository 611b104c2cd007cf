"""Every SQL statement of the hosted pages: their buy-form submissions."""

from __future__ import annotations

from sqlalchemy import delete, select, update
from sqlalchemy.orm import Session

from offerloop.models import StorefrontCheckout


def add(session: Session, row: StorefrontCheckout) -> None:
    session.add(row)
    session.flush()  # the primary key is the idempotency check: a duplicate fails here


def checkout(session: Session, workspace_id: str, row_id: str) -> StorefrontCheckout | None:
    return session.scalars(
        select(StorefrontCheckout).where(
            StorefrontCheckout.id == row_id, StorefrontCheckout.workspace_id == workspace_id
        )
    ).one_or_none()


def set_order(session: Session, workspace_id: str, row_id: str, order_id: str) -> None:
    session.execute(
        update(StorefrontCheckout)
        .where(StorefrontCheckout.id == row_id, StorefrontCheckout.workspace_id == workspace_id)
        .values(order_id=order_id)
    )


def remove(session: Session, workspace_id: str, row_id: str) -> None:
    session.execute(
        delete(StorefrontCheckout).where(
            StorefrontCheckout.id == row_id,
            StorefrontCheckout.workspace_id == workspace_id,
            StorefrontCheckout.order_id.is_(None),
        )
    )
