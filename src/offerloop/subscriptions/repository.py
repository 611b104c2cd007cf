"""Every SQL statement of the subscriptions domain."""

from __future__ import annotations

from collections.abc import Sequence

from sqlalchemy import exists, or_, select
from sqlalchemy.orm import Session

from offerloop.db.scoped import newest_first, scoped_select
from offerloop.models import Job, Order, Subscription


def add(session: Session, row: Subscription) -> None:
    session.add(row)


def subscription(session: Session, workspace_id: str, subscription_id: str) -> Subscription | None:
    stmt = scoped_select(Subscription, workspace_id).where(Subscription.id == subscription_id)
    return session.scalars(stmt).one_or_none()


def subscription_for_update(session: Session, workspace_id: str, subscription_id: str) -> Subscription | None:
    """The subscription, its row locked until the transaction ends (as ``checkout.repository.order_for_update``)."""
    stmt = scoped_select(Subscription, workspace_id).where(Subscription.id == subscription_id)
    session.flush()  # sessions do not autoflush, and populate_existing would drop this transaction's changes
    return session.scalars(stmt.with_for_update().execution_options(populate_existing=True)).one_or_none()


def by_provider(session: Session, workspace_id: str, provider_id: str) -> Subscription | None:
    stmt = scoped_select(Subscription, workspace_id).where(
        Subscription.provider_subscription_id == provider_id
    )
    return session.scalars(stmt.order_by(Subscription.id)).first()


def of_buyer(session: Session, workspace_id: str, buyer_ids: Sequence[str]) -> list[Subscription]:
    """The subscriptions of any of ``buyer_ids`` (a buyer's lineage), oldest first."""
    stmt = scoped_select(Subscription, workspace_id).where(Subscription.buyer_id.in_(buyer_ids))
    return list(session.scalars(stmt.order_by(Subscription.created_at, Subscription.id)))


def page(
    session: Session, workspace_id: str, *, limit: int, before_id: str | None, status: str | None,
    buyer_ids: Sequence[str] | None, offer_key: str | None,
) -> list[Subscription]:  # fmt: skip
    """Up to ``limit`` subscriptions, newest id first, older than ``before_id``, filtered by what is given
    (``buyer_ids``: a buyer's lineage)."""
    stmt = newest_first(
        Subscription, workspace_id, limit=limit, before_id=before_id, status=status, offer_key=offer_key,
    )  # fmt: skip
    if buyer_ids is not None:
        stmt = stmt.where(Subscription.buyer_id.in_(buyer_ids))
    return list(session.scalars(stmt))


def unscheduled(session: Session, *, kind: str, statuses: tuple[str, ...], limit: int) -> list[Subscription]:
    """Manual-provider subscriptions in ``statuses`` (every workspace) with no queued ``kind`` job."""
    key = Subscription.workspace_id.concat("/").concat(Subscription.id)  # checkout.due.key
    queued = exists().where(Job.kind == kind, Job.key == key, Job.state == "queued")
    stmt = (
        select(Subscription)
        .join(Order, (Order.workspace_id == Subscription.workspace_id) & (Order.id == Subscription.order_id))
        .where(
            Subscription.status.in_(statuses),
            Subscription.provider_subscription_id.is_(None),
            Order.provider == "manual",
            ~queued,
        )
        .order_by(Subscription.id)
        .limit(limit)
    )
    return list(session.scalars(stmt))


def ending_between(
    session: Session, workspace_id: str, field: str, statuses: tuple[str, ...], start: str, end: str,
    after: tuple[str, str] | None, limit: int,
) -> list[Subscription]:  # fmt: skip
    """Subscriptions in ``statuses`` whose state's ``field`` (an ISO 8601 UTC time, which sorts as text) is
    in (start, end], by (that time, id) after ``after``."""
    ends = Subscription.state[field].as_string()
    stmt = scoped_select(Subscription, workspace_id).where(
        Subscription.status.in_(statuses), ends > start, ends <= end
    )
    if after is not None:
        stmt = stmt.where(or_(ends > after[0], (ends == after[0]) & (Subscription.id > after[1])))
    return list(session.scalars(stmt.order_by(ends, Subscription.id).limit(limit)))
