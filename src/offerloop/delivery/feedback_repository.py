"""Every SQL statement of delivery reports: finding the message a report is about, storing each report once,
and the soft-bounce streak of an address."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from offerloop.db.scoped import newest_first, scoped_select
from offerloop.models import DeliveryReport, OutboxMessage


def message_for_report(
    session: Session, workspace_id: str, *, outbox_id: int | None = None, message_id: str | None = None
) -> OutboxMessage | None:
    """The e-mail a report names, by outbox id (a verified VERP token) or Message-ID."""
    stmt = scoped_select(OutboxMessage, workspace_id).where(OutboxMessage.channel == "email")
    if outbox_id is not None:
        stmt = stmt.where(OutboxMessage.id == outbox_id)
    elif message_id is not None:
        stmt = stmt.where(OutboxMessage.message_id == message_id)
    else:
        return None
    return session.scalars(stmt.order_by(OutboxMessage.id).limit(1)).first()


def add_report(session: Session, values: dict[str, Any]) -> int | None:
    """Store a report unless one of its kind about this message and recipient is there; its id, or None."""
    insert = pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert
    stmt = (
        insert(DeliveryReport)
        .values(**values)
        .on_conflict_do_nothing(index_elements=["workspace_id", "outbox_id", "kind", "recipient"])
        .returning(DeliveryReport.id)
    )
    found = session.execute(stmt).scalar_one_or_none()
    return None if found is None else int(found)


def last_sent_to(
    session: Session, workspace_id: str, buyer_id: str, address: str, until: datetime, limit: int
) -> list[int]:
    """The ids of the last ``limit`` e-mails handed over to ``address`` up to ``until``, newest first."""
    stmt = scoped_select(OutboxMessage, workspace_id, OutboxMessage.id).where(
        OutboxMessage.buyer_id == buyer_id,
        OutboxMessage.channel == "email",
        OutboxMessage.recipient == address,
        OutboxMessage.sent_at <= until,
        OutboxMessage.status.in_(("sent", "read")),
    )
    stmt = stmt.order_by(OutboxMessage.sent_at.desc(), OutboxMessage.id.desc()).limit(limit)
    return [int(i) for i in session.scalars(stmt)]


def report_kinds(session: Session, workspace_id: str, outbox_ids: list[int]) -> dict[int, set[str]]:
    """The kinds of report stored for each of these messages."""
    stmt = scoped_select(DeliveryReport, workspace_id, DeliveryReport.outbox_id, DeliveryReport.kind).where(
        DeliveryReport.outbox_id.in_(outbox_ids)
    )
    out: dict[int, set[str]] = {}
    for outbox_id, kind in session.execute(stmt):
        out.setdefault(int(outbox_id), set()).add(str(kind))
    return out


def reports_page(
    session: Session, workspace_id: str, *, limit: int, before_id: int | None, kind: str | None,
    recipient: str | None,
) -> list[DeliveryReport]:  # fmt: skip
    stmt = newest_first(DeliveryReport, workspace_id, limit=limit, before_id=before_id,  # type: ignore[arg-type]
                        kind=kind, recipient=recipient)  # fmt: skip
    return list(session.scalars(stmt))
