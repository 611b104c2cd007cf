"""Every SQL statement of the hosted pages: their buy-form submissions, each scoped by its workspace."""

from __future__ import annotations

from sqlalchemy.orm import Session

from offerloop.db.scoped import scoped_delete, scoped_select, scoped_update
from offerloop.models import StorefrontCheckout


def add(session: Session, row: StorefrontCheckout) -> None:
    session.add(row)
    session.flush()  # the primary key is the idempotency check: a duplicate fails here


def checkout(session: Session, workspace_id: str, row_id: str) -> StorefrontCheckout | None:
    return session.scalars(
        scoped_select(StorefrontCheckout, workspace_id).where(StorefrontCheckout.id == row_id)
    ).one_or_none()


def set_order(session: Session, workspace_id: str, row_id: str, order_id: str) -> None:
    session.execute(
        scoped_update(StorefrontCheckout, workspace_id)
        .where(StorefrontCheckout.id == row_id)
        .values(order_id=order_id)
    )


def remove(session: Session, workspace_id: str, row_id: str) -> None:
    """Forget a claim that made no order (its checkout failed), so the same form can be sent again."""
    session.execute(
        scoped_delete(StorefrontCheckout, workspace_id).where(
            StorefrontCheckout.id == row_id, StorefrontCheckout.order_id.is_(None)
        )
    )
