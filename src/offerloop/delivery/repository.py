"""Every SQL statement of the delivery domain."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import and_, bindparam, func, or_, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from offerloop.db.base import table_of
from offerloop.db.scoped import newest_first, scoped_delete, scoped_select, scoped_update
from offerloop.models import (
    DeliverySettings,
    JourneyRun,
    JourneyVersion,
    OutboxMessage,
    SenderDomain,
    Suppression,
)


def _insert(session: Session) -> Any:
    return pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert


# -- journeys -----------------------------------------------------------------------------------------


def latest_journeys(session: Session, workspace_id: str) -> list[JourneyVersion]:
    stmt = scoped_select(JourneyVersion, workspace_id).where(JourneyVersion.latest.is_(True))
    return list(session.scalars(stmt.order_by(JourneyVersion.name)))


def journey(
    session: Session, workspace_id: str, name: str, version: int | None = None, *, lock: bool = False
) -> JourneyVersion | None:
    stmt = scoped_select(JourneyVersion, workspace_id).where(JourneyVersion.name == name)
    if version is None:
        stmt = stmt.where(JourneyVersion.latest.is_(True))
    else:
        stmt = stmt.where(JourneyVersion.version == version)
    if lock:
        stmt = stmt.with_for_update()
    return session.scalars(stmt).first()


def add_journey_version(session: Session, workspace_id: str, row: JourneyVersion) -> None:
    session.execute(
        scoped_update(JourneyVersion, workspace_id)
        .where(JourneyVersion.name == row.name, JourneyVersion.latest.is_(True))
        .values(latest=False)
    )
    session.add(row)
    session.flush()


def set_paused(session: Session, workspace_id: str, name: str, paused: bool) -> int:
    result = session.execute(
        scoped_update(JourneyVersion, workspace_id)
        .where(JourneyVersion.name == name, JourneyVersion.latest.is_(True))
        .values(paused=paused)
    )
    return int(getattr(result, "rowcount", 0) or 0)


def journeys_page(
    session: Session, workspace_id: str, *, limit: int, before: str | None
) -> list[JourneyVersion]:
    stmt = scoped_select(JourneyVersion, workspace_id).where(JourneyVersion.latest.is_(True))
    if before is not None:
        stmt = stmt.where(JourneyVersion.name > before)
    return list(session.scalars(stmt.order_by(JourneyVersion.name).limit(limit)))


# -- runs ---------------------------------------------------------------------------------------------


def last_run(session: Session, workspace_id: str, journey: str, buyer_id: str) -> JourneyRun | None:
    stmt = scoped_select(JourneyRun, workspace_id).where(
        JourneyRun.journey == journey, JourneyRun.buyer_id == buyer_id
    )
    return session.scalars(stmt.order_by(JourneyRun.occurrence.desc()).limit(1)).first()


def run_for_trigger(
    session: Session, workspace_id: str, journey: str, buyer_id: str, message_id: str
) -> bool:
    stmt = scoped_select(JourneyRun, workspace_id, JourneyRun.id).where(
        JourneyRun.journey == journey,
        JourneyRun.buyer_id == buyer_id,
        JourneyRun.trigger_message_id == message_id,
    )
    return session.scalar(stmt.limit(1)) is not None


def earlier_run(
    session: Session,
    workspace_id: str,
    journey: str,
    buyer_ids: Sequence[str],
    run: JourneyRun,
    *,
    active_only: bool,
) -> JourneyRun | None:
    """A run of ``journey`` for one of ``buyer_ids`` that started before ``run`` (ties by id), if any."""
    stmt = scoped_select(JourneyRun, workspace_id).where(
        JourneyRun.journey == journey,
        JourneyRun.buyer_id.in_(list(buyer_ids)),
        JourneyRun.id != run.id,
        or_(
            JourneyRun.started_at < run.started_at,
            and_(JourneyRun.started_at == run.started_at, JourneyRun.id < run.id),
        ),
    )
    if active_only:
        stmt = stmt.where(JourneyRun.state == "active")
    return session.scalars(stmt.order_by(JourneyRun.started_at, JourneyRun.id).limit(1)).first()


def active_runs(session: Session, workspace_id: str, buyer_id: str) -> list[JourneyRun]:
    stmt = scoped_select(JourneyRun, workspace_id).where(
        JourneyRun.buyer_id == buyer_id, JourneyRun.state == "active"
    )
    return list(session.scalars(stmt.order_by(JourneyRun.id)))


def run(session: Session, workspace_id: str, run_id: int, *, lock: bool = False) -> JourneyRun | None:
    stmt = scoped_select(JourneyRun, workspace_id).where(JourneyRun.id == run_id)
    if lock:
        stmt = stmt.with_for_update()
    return session.scalars(stmt).first()


def runs_by_id(
    session: Session, workspace_id: str, run_ids: list[int], *, lock: bool = False
) -> list[JourneyRun]:
    """Several runs in one statement (a batch of run jobs), by id."""
    stmt = scoped_select(JourneyRun, workspace_id).where(JourneyRun.id.in_(run_ids))
    if lock:
        stmt = stmt.with_for_update()
    return list(session.scalars(stmt.order_by(JourneyRun.id)))


def add_run(session: Session, row: JourneyRun) -> None:
    session.add(row)
    session.flush()


def runs_page(
    session: Session, workspace_id: str, *, limit: int, before_id: int | None, journey: str | None,
    buyer_id: str | None, state: str | None,
) -> list[JourneyRun]:  # fmt: skip
    stmt = newest_first(JourneyRun, workspace_id, limit=limit, before_id=before_id,  # type: ignore[arg-type]
                        journey=journey, buyer_id=buyer_id, state=state)  # fmt: skip
    return list(session.scalars(stmt))


def run_counts(session: Session, workspace_id: str, journey: str) -> list[tuple[str, str | None, int]]:
    """(state, step, count) of the journey's runs: where its buyers are."""
    stmt = (
        scoped_select(JourneyRun, workspace_id, JourneyRun.state, JourneyRun.step, func.count())
        .where(JourneyRun.journey == journey)
        .group_by(JourneyRun.state, JourneyRun.step)
        .order_by(JourneyRun.state, JourneyRun.step)
    )
    return [(str(s), st, int(n)) for s, st, n in session.execute(stmt)]


# -- outbox -------------------------------------------------------------------------------------------


_ADD_MESSAGE: dict[str, Any] = {}
# Filled in by a second statement: the links in a message carry its id, which only the INSERT gives.
_FILL_MESSAGE = update(table_of(OutboxMessage)).where(table_of(OutboxMessage).c.id == bindparam("row_id"))


def add_message(session: Session, values: dict[str, Any]) -> int | None:
    """Insert a message unless its key is already there: the new row's id, or None for a repeat.

    One statement built once per dialect and run through Core: a journey step queues one message per buyer, and
    the ORM's per-statement work (cache keys over ``.values()``, bulk-insert bookkeeping) cost ~6x the insert."""
    dialect = session.get_bind().dialect.name
    stmt = _ADD_MESSAGE.get(dialect)
    if stmt is None:
        table = table_of(OutboxMessage)
        stmt = _insert(session)(table).on_conflict_do_nothing(index_elements=["workspace_id", "key"])
        stmt = _ADD_MESSAGE[dialect] = stmt.returning(table.c.id)
    found: int | None = session.execute(stmt, values).scalar_one_or_none()
    return found


def fill_message(session: Session, message_id: int, values: dict[str, Any]) -> None:
    """Set a queued message's rendered columns (or its failure) by id."""
    session.execute(_FILL_MESSAGE, {"row_id": message_id, **values})


def message(
    session: Session, workspace_id: str, message_id: int, *, lock: bool = False
) -> OutboxMessage | None:
    stmt = scoped_select(OutboxMessage, workspace_id).where(OutboxMessage.id == message_id)
    if lock:
        stmt = stmt.with_for_update()
    return session.scalars(stmt).first()


def messages(
    session: Session, workspace_id: str, message_ids: list[int], *, lock: bool = False
) -> list[OutboxMessage]:
    """Several messages in one statement (a batch), by id."""
    stmt = scoped_select(OutboxMessage, workspace_id).where(OutboxMessage.id.in_(message_ids))
    if lock:
        stmt = stmt.with_for_update()
    return list(session.scalars(stmt.order_by(OutboxMessage.id)))


def message_by_key(session: Session, workspace_id: str, key: str) -> OutboxMessage | None:
    return session.scalars(scoped_select(OutboxMessage, workspace_id).where(OutboxMessage.key == key)).first()


def messages_page(
    session: Session, workspace_id: str, *, limit: int, before_id: int | None, buyer_id: str | None,
    channel: str | None, status: str | None, journey: str | None,
) -> list[OutboxMessage]:  # fmt: skip
    stmt = newest_first(OutboxMessage, workspace_id, limit=limit, before_id=before_id,  # type: ignore[arg-type]
                        buyer_id=buyer_id, channel=channel, status=status, journey=journey)  # fmt: skip
    return list(session.scalars(stmt))


def sent_since(
    session: Session, workspace_id: str, buyer_id: str, since: datetime, *, channel: str | None, category: str
) -> int:
    """Messages of ``category`` sent to the buyer since ``since`` (on ``channel``, or on any)."""
    stmt = scoped_select(OutboxMessage, workspace_id, func.count()).where(
        OutboxMessage.buyer_id == buyer_id,
        OutboxMessage.category == category,
        OutboxMessage.sent_at >= since,
        OutboxMessage.status.in_(("sent", "read")),
    )
    if channel is not None:
        stmt = stmt.where(OutboxMessage.channel == channel)
    return int(session.scalar(stmt) or 0)


def inbox(
    session: Session,
    workspace_id: str,
    buyer_ids: Sequence[str],
    *,
    limit: int,
    before_id: int | None,
    unread: bool,
) -> list[OutboxMessage]:
    stmt = scoped_select(OutboxMessage, workspace_id).where(
        OutboxMessage.buyer_id.in_(list(buyer_ids)),
        OutboxMessage.channel == "inapp",
        OutboxMessage.status.in_(("sent", "read")),
    )
    if before_id is not None:
        stmt = stmt.where(OutboxMessage.id < before_id)
    if unread:
        stmt = stmt.where(OutboxMessage.read_at.is_(None))
    return list(session.scalars(stmt.order_by(OutboxMessage.id.desc()).limit(limit)))


def inbox_after(
    session: Session, workspace_id: str, buyer_ids: Sequence[str], after_id: int
) -> list[OutboxMessage]:
    stmt = scoped_select(OutboxMessage, workspace_id).where(
        OutboxMessage.buyer_id.in_(list(buyer_ids)),
        OutboxMessage.channel == "inapp",
        OutboxMessage.status.in_(("sent", "read")),
        OutboxMessage.id > after_id,
    )
    return list(session.scalars(stmt.order_by(OutboxMessage.id).limit(100)))


def skip_queued(session: Session, workspace_id: str, journey: str, reason: str) -> None:
    session.execute(
        scoped_update(OutboxMessage, workspace_id)
        .where(OutboxMessage.journey == journey, OutboxMessage.status == "queued")
        .values(status="skipped", detail=reason)
    )


# -- suppressions and settings --------------------------------------------------------------------------


def suppressed_address(channel: str, address: str) -> str:
    """How an address is stored in a suppression: an e-mail address trimmed and lower-cased (mailbox providers
    treat ``Ann@Example.com`` and ``ann@example.com`` as one mailbox), any other as given."""
    return address.strip().lower() if channel == "email" else address


def suppression(session: Session, workspace_id: str, channel: str, address: str) -> Suppression | None:
    """The suppression of ``address`` on ``channel`` (one for everything first), whatever the case of an e-mail
    address; rows stored as written before addresses were normalised still match their own spelling."""
    spellings = sorted({address, suppressed_address(channel, address)})
    stmt = scoped_select(Suppression, workspace_id).where(
        Suppression.channel == channel, Suppression.address.in_(spellings)
    )
    return min(session.scalars(stmt).all(), key=lambda s: (s.scope != "all", s.id), default=None)


def suppress(session: Session, values: dict[str, Any]) -> None:
    """Add a suppression, or widen an existing one to ``scope='all'`` (a bounce after an unsubscribe)."""
    values = {**values, "address": suppressed_address(values["channel"], values["address"])}
    insert = _insert(session)(Suppression).values(**values)
    if values["scope"] == "all":
        stmt = insert.on_conflict_do_update(
            index_elements=["workspace_id", "channel", "address"],
            set_={"scope": "all", "reason": values["reason"]},
        )
    else:
        stmt = insert.on_conflict_do_nothing(index_elements=["workspace_id", "channel", "address"])
    session.execute(stmt)


def suppressions_page(
    session: Session, workspace_id: str, *, limit: int, before_id: int | None, channel: str | None
) -> list[Suppression]:
    stmt = newest_first(Suppression, workspace_id, limit=limit, before_id=before_id, channel=channel)  # type: ignore[arg-type]
    return list(session.scalars(stmt))


def remove_suppression(session: Session, workspace_id: str, suppression_id: int) -> Suppression | None:
    """Delete a suppression; the deleted row (its attributes stay readable), or None."""
    row = session.scalars(
        scoped_select(Suppression, workspace_id).where(Suppression.id == suppression_id)
    ).first()
    if row is not None:
        session.delete(row)
    return row


def settings(session: Session, workspace_id: str) -> DeliverySettings | None:
    return session.scalars(scoped_select(DeliverySettings, workspace_id)).first()


def save_settings(session: Session, workspace_id: str, data: dict[str, Any], now: datetime) -> None:
    row = settings(session, workspace_id)
    if row is None:
        session.add(DeliverySettings(workspace_id=workspace_id, settings=data, updated_at=now))
    else:
        row.settings, row.updated_at = data, now
    session.flush()


# -- sender domains ----------------------------------------------------------------------------------------


def sender_domains(session: Session, workspace_id: str) -> list[str]:
    stmt = scoped_select(SenderDomain, workspace_id, SenderDomain.domain).order_by(SenderDomain.domain)
    return list(session.scalars(stmt))


def add_sender_domain(session: Session, workspace_id: str, domain: str, now: datetime) -> bool:
    """True if it was not allowed before."""
    stmt = (
        _insert(session)(SenderDomain)
        .values(workspace_id=workspace_id, domain=domain, created_at=now)
        .on_conflict_do_nothing(index_elements=["workspace_id", "domain"])
        .returning(SenderDomain.domain)
    )
    return session.execute(stmt).first() is not None


def remove_sender_domain(session: Session, workspace_id: str, domain: str) -> bool:
    stmt = scoped_delete(SenderDomain, workspace_id).where(SenderDomain.domain == domain)
    return bool(session.execute(stmt).rowcount)  # type: ignore[attr-defined]
