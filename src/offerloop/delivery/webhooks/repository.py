"""Every SQL statement of the webhook channel, each scoped by its workspace."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import func
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from offerloop.db.scoped import newest_first, scoped_delete, scoped_select
from offerloop.models.delivery_channels import WebhookAttempt, WebhookDelivery, WebhookEndpoint


def _locked(session: Session, stmt: Any) -> Any:
    return stmt.with_for_update() if session.get_bind().dialect.name == "postgresql" else stmt


def count_endpoints(session: Session, workspace_id: str) -> int:
    stmt = scoped_select(WebhookEndpoint, workspace_id, func.count())
    return int(session.execute(stmt).scalar_one())


def get_endpoint(
    session: Session, workspace_id: str, endpoint_id: str, *, lock: bool = False
) -> WebhookEndpoint | None:
    stmt = scoped_select(WebhookEndpoint, workspace_id).where(WebhookEndpoint.id == endpoint_id)
    return session.execute(_locked(session, stmt) if lock else stmt).scalar_one_or_none()


def endpoints_page(
    session: Session, workspace_id: str, *, limit: int, before_id: str | None
) -> Sequence[WebhookEndpoint]:
    return session.scalars(
        newest_first(WebhookEndpoint, workspace_id, limit=limit, before_id=before_id)
    ).all()


def enabled_endpoints(session: Session, workspace_id: str) -> Sequence[WebhookEndpoint]:
    stmt = scoped_select(WebhookEndpoint, workspace_id).where(WebhookEndpoint.enabled.is_(True))
    return session.scalars(stmt.order_by(WebhookEndpoint.id)).all()


def delete_endpoint(session: Session, workspace_id: str, endpoint_id: str) -> bool:
    # Explicit children first: the foreign keys cascade too, but not every SQLite connection enforces them.
    deliveries = scoped_select(WebhookDelivery, workspace_id, WebhookDelivery.id).where(
        WebhookDelivery.endpoint_id == endpoint_id
    )
    session.execute(
        scoped_delete(WebhookAttempt, workspace_id).where(
            WebhookAttempt.delivery_id.in_(deliveries.scalar_subquery())
        )
    )
    session.execute(
        scoped_delete(WebhookDelivery, workspace_id).where(WebhookDelivery.endpoint_id == endpoint_id)
    )
    done = session.execute(
        scoped_delete(WebhookEndpoint, workspace_id).where(WebhookEndpoint.id == endpoint_id)
    )
    return bool(getattr(done, "rowcount", 0))


def event_of_key(session: Session, workspace_id: str, idempotency_key: str) -> tuple[str, datetime] | None:
    """(event id, created) of an event already delivered under this idempotency key, to any endpoint."""
    stmt = (
        scoped_select(WebhookDelivery, workspace_id, WebhookDelivery.event_id, WebhookDelivery.created_at)
        .where(WebhookDelivery.idempotency_key == idempotency_key)
        .order_by(WebhookDelivery.id)
        .limit(1)
    )
    row = session.execute(stmt).first()
    return None if row is None else (row[0], row[1])


def insert_deliveries(session: Session, rows: list[dict[str, Any]]) -> None:
    """Insert the rows; one whose (endpoint, idempotency key) exists already is skipped."""
    if not rows:
        return
    insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    stmt = insert(WebhookDelivery).on_conflict_do_nothing(
        index_elements=["workspace_id", "endpoint_id", "idempotency_key"]
    )
    session.execute(stmt, rows)


def deliveries_of_key(session: Session, workspace_id: str, idempotency_key: str) -> Sequence[WebhookDelivery]:
    stmt = scoped_select(WebhookDelivery, workspace_id).where(
        WebhookDelivery.idempotency_key == idempotency_key
    )
    return session.scalars(stmt.order_by(WebhookDelivery.id)).all()


def get_delivery(
    session: Session, workspace_id: str, delivery_id: str, *, lock: bool = False
) -> WebhookDelivery | None:
    stmt = scoped_select(WebhookDelivery, workspace_id).where(WebhookDelivery.id == delivery_id)
    return session.execute(_locked(session, stmt) if lock else stmt).scalar_one_or_none()


def deliveries_page(
    session: Session,
    workspace_id: str,
    *,
    endpoint_id: str,
    status: str | None,
    limit: int,
    before_id: str | None,
) -> Sequence[WebhookDelivery]:
    stmt = newest_first(
        WebhookDelivery,
        workspace_id,
        limit=limit,
        before_id=before_id,
        endpoint_id=endpoint_id,
        status=status,
    )
    return session.scalars(stmt).all()


def attempts_of(
    session: Session, workspace_id: str, delivery_ids: list[str], *, per_delivery: int
) -> dict[str, list[WebhookAttempt]]:
    """The latest ``per_delivery`` attempts of each delivery, newest first."""
    if not delivery_ids:
        return {}
    stmt = (
        scoped_select(WebhookAttempt, workspace_id)
        .where(WebhookAttempt.delivery_id.in_(delivery_ids))
        .order_by(WebhookAttempt.delivery_id, WebhookAttempt.number.desc(), WebhookAttempt.id.desc())
    )
    out: dict[str, list[WebhookAttempt]] = {d: [] for d in delivery_ids}
    for attempt in session.scalars(stmt):
        shown = out[attempt.delivery_id]
        if len(shown) < per_delivery:
            shown.append(attempt)
    return out


def add(session: Session, row: WebhookEndpoint | WebhookAttempt) -> None:
    session.add(row)
    session.flush()
