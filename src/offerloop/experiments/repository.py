"""Every SQL statement of the experiments domain: experiments, exposures, and the reads of the event log
and personas their results need."""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import and_, func
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from offerloop.db.scoped import scoped_select
from offerloop.models import BuyerPersona, Event, Experiment, Exposure


def _insert(session: Session) -> Any:
    return pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert


def add(session: Session, values: dict[str, Any]) -> bool:
    """Insert an experiment unless its key is taken in the workspace: whether it was inserted."""
    stmt = (
        _insert(session)(Experiment)
        .values(**values)
        .on_conflict_do_nothing(index_elements=["workspace_id", "key"])
        .returning(Experiment.key)
    )
    return session.scalars(stmt).one_or_none() is not None


def get(session: Session, workspace_id: str, key: str, *, lock: bool = False) -> Experiment | None:
    stmt = scoped_select(Experiment, workspace_id).where(Experiment.key == key)
    if lock:
        stmt = stmt.with_for_update()
    return session.scalars(stmt).one_or_none()


def page(session: Session, workspace_id: str, after: str | None, limit: int) -> Sequence[Experiment]:
    """Up to ``limit + 1`` experiments in key order after ``after``."""
    stmt = scoped_select(Experiment, workspace_id).order_by(Experiment.key).limit(limit + 1)
    if after is not None:
        stmt = stmt.where(Experiment.key > after)
    return session.scalars(stmt).all()


def keys_on(
    session: Session, workspace_id: str, subjects: Collection[str], subject_ids: Collection[str]
) -> list[tuple[str, str]]:
    """(subject id, key) of the experiments not stopped on these subjects, by subject id then key."""
    stmt = (
        scoped_select(Experiment, workspace_id, Experiment.subject_id, Experiment.key)
        .where(
            Experiment.subject.in_(list(subjects)),
            Experiment.subject_id.in_(sorted(set(subject_ids))),
            Experiment.status != "stopped",
        )
        .order_by(Experiment.subject_id, Experiment.key)
    )
    return [(s, k) for s, k in session.execute(stmt)]


def flush(session: Session) -> None:
    session.flush()


def exposure(session: Session, workspace_id: str, key: str, buyer_id: str) -> Exposure | None:
    stmt = scoped_select(Exposure, workspace_id).where(
        Exposure.experiment_key == key, Exposure.buyer_id == buyer_id
    )
    return session.scalars(stmt).one_or_none()


def add_exposure(
    session: Session, workspace_id: str, key: str, buyer_id: str, arm: str, at: datetime
) -> bool:
    """The buyer's first exposure, unless one is stored (a concurrent first call wins): whether inserted."""
    stmt = (
        _insert(session)(Exposure)
        .values(workspace_id=workspace_id, experiment_key=key, buyer_id=buyer_id, arm=arm, exposed_at=at)
        .on_conflict_do_nothing(index_elements=["workspace_id", "experiment_key", "buyer_id"])
        .returning(Exposure.buyer_id)
    )
    return session.scalars(stmt).one_or_none() is not None


def exposures(session: Session, workspace_id: str, key: str) -> list[tuple[str, str, datetime, str | None]]:
    """(buyer id, arm, first exposure, current persona or None) of everyone exposed, in buyer order."""
    stmt = (
        scoped_select(
            Exposure, workspace_id, Exposure.buyer_id, Exposure.arm, Exposure.exposed_at, BuyerPersona.persona
        )
        .outerjoin(
            BuyerPersona,
            and_(BuyerPersona.buyer_id == Exposure.buyer_id, BuyerPersona.workspace_id == workspace_id),
        )
        .where(Exposure.experiment_key == key)
        .order_by(Exposure.buyer_id)
    )
    return [(b, a, t, p) for b, a, t, p in session.execute(stmt)]


CHUNK = 2000  # buyer ids per statement: each read is an index range scan per buyer (buyer_id, timestamp)


def _chunks(ids: Sequence[str]) -> list[Sequence[str]]:
    return [ids[i : i + CHUNK] for i in range(0, len(ids), CHUNK)]


def named_events(
    session: Session, workspace_id: str, buyer_ids: Sequence[str], names: Collection[str], since: datetime,
    until: datetime,
) -> list[tuple[str, str, datetime, dict[str, Any] | None]]:  # fmt: skip
    """(buyer id, name, time, properties) of these buyers' events of these names in [since, until]."""
    out: list[tuple[str, str, datetime, dict[str, Any] | None]] = []
    for chunk in _chunks(buyer_ids):
        stmt = scoped_select(
            Event, workspace_id, Event.buyer_id, Event.name, Event.timestamp, Event.properties
        ).where(
            Event.buyer_id.in_(chunk),
            Event.name.in_(list(names)),
            Event.timestamp >= since,
            Event.timestamp <= until,
        )
        out.extend((b, n, t, p) for b, n, t, p in session.execute(stmt))
    return out


def last_event_times(session: Session, workspace_id: str, buyer_ids: Sequence[str]) -> dict[str, datetime]:
    """Each buyer's latest event time (retention: any event at or after a moment)."""
    out: dict[str, datetime] = {}
    for chunk in _chunks(buyer_ids):
        stmt = (
            scoped_select(Event, workspace_id, Event.buyer_id, func.max(Event.timestamp))
            .where(Event.buyer_id.in_(chunk))
            .group_by(Event.buyer_id)
        )
        out.update((b, t) for b, t in session.execute(stmt))
    return out


def event_times(
    session: Session, workspace_id: str, buyer_ids: Sequence[str], since: datetime, until: datetime
) -> list[tuple[str, datetime]]:
    """(buyer id, time) of every event of these buyers in [since, until): pre-period event counts."""
    out: list[tuple[str, datetime]] = []
    for chunk in _chunks(buyer_ids):
        stmt = scoped_select(Event, workspace_id, Event.buyer_id, Event.timestamp).where(
            Event.buyer_id.in_(chunk), Event.timestamp >= since, Event.timestamp < until
        )
        out.extend((b, t) for b, t in session.execute(stmt))
    return out
