"""Every SQL statement of the push channel, each scoped by its workspace."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import or_
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from offerloop.db.scoped import scoped_delete, scoped_select, scoped_update
from offerloop.models.delivery_channels import PushSubscription, VapidKey


def vapid_key(session: Session, workspace_id: str) -> VapidKey | None:
    return session.execute(scoped_select(VapidKey, workspace_id)).scalar_one_or_none()


def insert_vapid_key(
    session: Session, *, workspace_id: str, private_pem: str, public_key: str, now: datetime
) -> None:
    """Store a key pair unless the workspace has one (two first uses at once keep the first)."""
    insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    stmt = insert(VapidKey).values(
        workspace_id=workspace_id, private_pem=private_pem, public_key=public_key, created_at=now
    )
    session.execute(stmt.on_conflict_do_nothing(index_elements=["workspace_id"]))


def subscription_by_hash(session: Session, workspace_id: str, endpoint_hash: str) -> PushSubscription | None:
    stmt = scoped_select(PushSubscription, workspace_id).where(
        PushSubscription.endpoint_hash == endpoint_hash
    )
    return session.execute(stmt).scalar_one_or_none()


def add(session: Session, row: PushSubscription) -> None:
    session.add(row)
    session.flush()


def delete_by_hash(session: Session, workspace_id: str, endpoint_hash: str) -> bool:
    stmt = scoped_delete(PushSubscription, workspace_id).where(
        PushSubscription.endpoint_hash == endpoint_hash
    )
    return bool(getattr(session.execute(stmt), "rowcount", 0))


def delete_subscription(session: Session, workspace_id: str, subscription_id: str) -> None:
    session.execute(
        scoped_delete(PushSubscription, workspace_id).where(PushSubscription.id == subscription_id)
    )


def subscriptions_of(
    session: Session,
    workspace_id: str,
    *,
    buyer_ids: list[str],
    user_ids: list[str],
    anonymous_ids: list[str],
    verified_only: bool,
    limit: int,
) -> Sequence[PushSubscription]:
    """A buyer's ``limit`` newest subscriptions (only ones verified under a userId with ``verified_only``): stored
    under one of its ids, or still unresolved under one of its identities."""
    unresolved = PushSubscription.buyer_id.is_(None)
    conditions: list[Any] = [PushSubscription.buyer_id.in_(buyer_ids)]
    if user_ids:
        conditions.append(unresolved & PushSubscription.user_id.in_(user_ids))
    if anonymous_ids:
        conditions.append(unresolved & PushSubscription.anonymous_id.in_(anonymous_ids))
    stmt = scoped_select(PushSubscription, workspace_id).where(or_(*conditions))
    if verified_only:
        # vouched for under a userId: one vouched for under an anonymousId names a device, which the write key's
        # identify can link to any userId (resolved or not, it gets none of a known buyer's pushes)
        stmt = stmt.where(PushSubscription.verified.is_(True), PushSubscription.user_id.is_not(None))
    newest = stmt.order_by(PushSubscription.updated_at.desc(), PushSubscription.id.desc()).limit(limit)
    return sorted(session.scalars(newest).all(), key=lambda r: r.id)


def adopt(session: Session, workspace_id: str, subscription_ids: list[str], *, buyer_id: str) -> None:
    """Point subscriptions at the buyer they turned out to belong to (resolved late, or merged)."""
    if subscription_ids:
        session.execute(
            scoped_update(PushSubscription, workspace_id)
            .where(PushSubscription.id.in_(subscription_ids))
            .values(buyer_id=buyer_id)
        )


def mark_sent(session: Session, workspace_id: str, subscription_id: str, *, now: datetime) -> None:
    session.execute(
        scoped_update(PushSubscription, workspace_id)
        .where(PushSubscription.id == subscription_id)
        .values(last_sent_at=now)
    )
