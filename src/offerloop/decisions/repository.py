"""Every SQL statement of the decisions domain."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, func, select, text
from sqlalchemy.orm import Session

from offerloop.db import driver
from offerloop.db.scoped import scoped_select, scoped_update
from offerloop.models import Action, Decision, Event, Experiment, PolicySnapshot


def actions(session: Session, workspace_id: str, keys: Iterable[str] | None = None) -> list[Action]:
    stmt = scoped_select(Action, workspace_id)
    if keys is not None:
        stmt = stmt.where(Action.key.in_(list(keys)))
    return list(session.scalars(stmt.order_by(Action.priority.desc(), Action.key)))


_CATALOG_VERSION = select(func.max(Action.updated_at), func.count()).where(
    Action.workspace_id == bindparam("w")
)
_POLICY_VERSION = select(func.max(PolicySnapshot.version)).where(
    PolicySnapshot.workspace_id == bindparam("w"), PolicySnapshot.placement == bindparam("p")
)
# The placement's policy experiment, if one is not stopped (experiments: one per placement at a time).
_POLICY_EXPERIMENT = select(func.min(Experiment.key)).where(
    Experiment.workspace_id == bindparam("w"), Experiment.subject == "policy",
    Experiment.subject_id == bindparam("p"), Experiment.status != "stopped",
)  # fmt: skip
# All in one statement for the decide path (built once: constructing it per call cost more than running it).
_VERSIONS = _CATALOG_VERSION.add_columns(
    _POLICY_VERSION.scalar_subquery(), _POLICY_EXPERIMENT.scalar_subquery()
)


def catalog_version(session: Session, workspace_id: str) -> tuple[Any, int]:
    """Changes whenever an action is added or updated (for the per-process catalog cache)."""
    latest, count = session.connection().execute(_CATALOG_VERSION, {"w": workspace_id}).one()
    return latest, int(count)


def versions(session: Session, workspace_id: str, placement: str) -> tuple[tuple[Any, int], int, str | None]:
    """(the catalog version, the placement's latest policy version, its policy experiment's key or None) in one
    statement."""
    latest, count, policy, experiment = (
        session.connection().execute(_VERSIONS, {"w": workspace_id, "p": placement}).one()
    )
    return (latest, int(count)), int(policy or 0), experiment


def actions_by_key(session: Session, workspace_id: str) -> dict[str, Action]:
    return {a.key: a for a in actions(session, workspace_id)}


def add(session: Session, obj: Any) -> None:
    session.add(obj)


def completed_values(
    session: Session, workspace_id: str, buyer_id: str, specs: set[tuple[str, str]]
) -> set[str]:
    """Values of ``property`` on the buyer's events named ``event``, for each (event, property) given."""
    if not specs:
        return set()
    by_event: dict[str, set[str]] = defaultdict(set)
    for event, prop in specs:
        by_event[event].add(prop)
    stmt = scoped_select(Event, workspace_id, Event.name, Event.properties).where(
        Event.buyer_id == buyer_id, Event.name.in_(list(by_event))
    )
    found: set[str] = set()
    for name, props in session.execute(stmt):
        for prop in by_event.get(name, ()):
            value = (props or {}).get(prop)
            if isinstance(value, str | int) and not isinstance(value, bool):
                found.add(str(value))
    return found


_IMPRESSIONS = select(Decision.chosen_key, Decision.created_at).where(
    Decision.workspace_id == bindparam("w"),
    Decision.buyer_id == bindparam("b"),
    Decision.created_at >= bindparam("since"),
    Decision.chosen_key.is_not(None),
)


def impressions(
    session: Session, workspace_id: str, buyer_id: str, since: datetime
) -> dict[str, list[datetime]]:
    params = {"w": workspace_id, "b": buyer_id, "since": since}
    out: dict[str, list[datetime]] = defaultdict(list)
    for key, at in session.connection().execute(_IMPRESSIONS, params):
        if key is not None:
            out[key].append(at)
    return out


def get_decision(session: Session, workspace_id: str, decision_id: str) -> Decision | None:
    stmt = scoped_select(Decision, workspace_id).where(Decision.id == decision_id)
    return session.scalars(stmt).one_or_none()


def buyer_decisions(session: Session, workspace_id: str, buyer_id: str, limit: int) -> list[Decision]:
    """The buyer's newest ``limit`` decisions (index workspace_id, buyer_id, created_at)."""
    stmt = (
        scoped_select(Decision, workspace_id)
        .where(Decision.buyer_id == buyer_id)
        .order_by(Decision.created_at.desc(), Decision.id.desc())
        .limit(limit)
    )
    return list(session.scalars(stmt))


def open_decisions(
    session: Session, workspace_id: str, buyer_ids: Iterable[str], event_names: Iterable[str]
) -> list[Decision]:
    stmt = scoped_select(Decision, workspace_id).where(
        Decision.buyer_id.in_(list(buyer_ids)),
        Decision.outcome_event.in_(list(event_names)),
        Decision.reward.is_(None),
    )
    return _still_open(session, stmt)


def expire(session: Session, workspace_id: str, now: datetime) -> list[Decision]:
    stmt = scoped_select(Decision, workspace_id).where(
        Decision.reward.is_(None), Decision.window_ends_at < now
    )
    return _still_open(session, stmt)


def _still_open(session: Session, stmt: Any) -> list[Decision]:
    """The unrewarded decisions ``stmt`` selects, locked (PostgreSQL) until the caller's transaction ends: an
    outcome event (a merged buyer's events lie in several partitions) and the job closing windows reward them in
    other transactions, and a row one of them rewarded meanwhile is waited for, read again and left out (it was
    overwritten by the second to commit). Locked in one order, so two of them never wait for each other."""
    locked = stmt.order_by(Decision.created_at, Decision.id).with_for_update()
    return list(session.scalars(locked.execution_options(populate_existing=True)))


def unlearned(session: Session, workspace_id: str, placement: str, limit: int) -> list[Decision]:
    stmt = (
        scoped_select(Decision, workspace_id)
        .where(
            Decision.placement == placement,
            Decision.reward.is_not(None),
            Decision.learned_at.is_(None),
            Decision.propensity.is_not(None),
        )
        # in the order the decisions were made: sorted by reward time, all successes would come first and
        # every default reward last, grouped by window length, and an online learner drifts on such a stream
        .order_by(Decision.created_at, Decision.id)
        .limit(limit)
    )
    return list(session.scalars(stmt))


def mark_learned(session: Session, workspace_id: str, ids: list[str], at: datetime) -> None:
    for start in range(0, len(ids), 500):
        session.execute(
            scoped_update(Decision, workspace_id)
            .where(Decision.id.in_(ids[start : start + 500]))
            .values(learned_at=at)
        )


def latest_version(session: Session, workspace_id: str, placement: str) -> int:
    return int(
        session.connection().execute(_POLICY_VERSION, {"w": workspace_id, "p": placement}).scalar() or 0
    )


def insert_decisions(session: Session, rows: Iterable[dict[str, Any]]) -> None:
    """INSERT decisions made read-only, at the driver level (no unit-of-work flush, no per-column bind
    processing: the log write stays short). Every row has the same columns (``decide`` builds them)."""
    values = list(rows)
    if values:
        columns = tuple(values[0])
        driver.insert_many(
            session.connection(), "decisions", columns, [tuple(r[c] for c in columns) for r in values]
        )


def snapshot(session: Session, workspace_id: str, placement: str, version: int) -> PolicySnapshot | None:
    stmt = scoped_select(PolicySnapshot, workspace_id).where(
        PolicySnapshot.placement == placement,
        PolicySnapshot.version == version,
    )
    return session.scalars(stmt).one_or_none()


def snapshot_times(
    session: Session, workspace_id: str, placements: Iterable[str]
) -> list[tuple[str, int, datetime]]:
    """(placement, version, created_at) of every snapshot of these placements, oldest first."""
    stmt = scoped_select(
        PolicySnapshot,
        workspace_id,
        PolicySnapshot.placement,
        PolicySnapshot.version,
        PolicySnapshot.created_at,
    ).where(PolicySnapshot.placement.in_(list(placements)))
    rows = session.execute(stmt.order_by(PolicySnapshot.placement, PolicySnapshot.version))
    return [(placement, int(version), at) for placement, version, at in rows]


def snapshots_newest(session: Session, workspace_id: str, limit: int) -> list[tuple[Any, ...]]:
    """(placement, version, kind, rewards_learned, created_at, note) of the newest snapshots (no payload)."""
    stmt = scoped_select(
        PolicySnapshot, workspace_id, PolicySnapshot.placement, PolicySnapshot.version, PolicySnapshot.kind,
        PolicySnapshot.rewards_learned, PolicySnapshot.created_at, PolicySnapshot.note,
    ).order_by(PolicySnapshot.created_at.desc(), PolicySnapshot.id.desc())  # fmt: skip
    return [tuple(r) for r in session.execute(stmt.limit(limit))]


def lock_learner(session: Session, workspace_id: str, placement: str) -> None:
    """One learner per workspace and placement (SQLite already has a single writer)."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(
            text("SELECT pg_advisory_xact_lock(hashtext(:k))"), {"k": f"learn:{workspace_id}:{placement}"}
        )


def decisions_for_evaluation(
    session: Session, workspace_id: str, placement: str | None, since: datetime | None = None
) -> list[Decision]:
    stmt = scoped_select(Decision, workspace_id).where(
        Decision.reward.is_not(None), Decision.propensity.is_not(None)
    )
    if placement:
        stmt = stmt.where(Decision.placement == placement)
    if since is not None:
        stmt = stmt.where(Decision.created_at >= since)
    return list(session.scalars(stmt.order_by(Decision.created_at, Decision.id)))


def next_window_end(session: Session, workspace_id: str) -> datetime | None:
    """The end of the earliest outcome window still open in the workspace."""
    stmt = scoped_select(Decision, workspace_id, func.min(Decision.window_ends_at)).where(
        Decision.reward.is_(None), Decision.window_ends_at.is_not(None)
    )
    found: datetime | None = session.scalar(stmt)
    return found
