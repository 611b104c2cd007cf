"""Every SQL statement of the clock's journey triggers (schedule ticks) and of turnaround promises."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.orm import Session

from offerloop.db.scoped import newest_first, scoped_select
from offerloop.models import JourneyTick, JourneyVersion, Promise


def _insert(session: Session) -> Any:
    return pg_insert if session.get_bind().dialect.name == "postgresql" else sqlite_insert


def live_journeys(session: Session, *, after_id: int | None, limit: int) -> list[JourneyVersion]:
    """The newest version of every journey not paused, in every workspace (id order, after ``after_id``)."""
    stmt = select(JourneyVersion).where(JourneyVersion.latest.is_(True), JourneyVersion.paused.is_(False))
    if after_id is not None:
        stmt = stmt.where(JourneyVersion.id > after_id)
    return list(session.scalars(stmt.order_by(JourneyVersion.id).limit(limit)))


# -- ticks (also a journey's cursor through its expiring window, under the tick name "expiring") ----------


def tick(session: Session, workspace_id: str, journey: str, name: str) -> JourneyTick | None:
    stmt = scoped_select(JourneyTick, workspace_id).where(
        JourneyTick.journey == journey, JourneyTick.tick == name
    )
    return session.scalars(stmt).one_or_none()


def add_tick(session: Session, workspace_id: str, journey: str, name: str, now: datetime) -> JourneyTick:
    """The tick's row, made if missing (a concurrent maker's row wins; the clock job runs once at a time)."""
    session.execute(
        _insert(session)(JourneyTick)
        .values(
            workspace_id=workspace_id,
            journey=journey,
            tick=name,
            cursor=None,
            entered=0,
            done=False,
            started_at=now,
            finished_at=None,
        )
        .on_conflict_do_nothing(index_elements=["workspace_id", "journey", "tick"])
    )
    found = tick(session, workspace_id, journey, name)
    assert found is not None
    return found


# -- promises ---------------------------------------------------------------------------------------------


def add_promise(session: Session, values: dict[str, Any]) -> int | None:
    """Insert a promise once per order; its id, or None when the order has one already."""
    stmt = (
        _insert(session)(Promise)
        .values(**values)
        .on_conflict_do_nothing(index_elements=["workspace_id", "order_id"])
        .returning(Promise.id)
    )
    return session.execute(stmt).scalar_one_or_none()


def promise_of_order(
    session: Session, workspace_id: str, order_id: str, *, lock: bool = False
) -> Promise | None:
    stmt = scoped_select(Promise, workspace_id).where(Promise.order_id == order_id)
    if lock:
        stmt = stmt.with_for_update()
    return session.scalars(stmt).one_or_none()


def oldest_unmet(session: Session, workspace_id: str, buyer_id: str, policy_id: str) -> Promise | None:
    """The buyer's oldest open or late promise of a deliverable from ``policy_id``."""
    stmt = scoped_select(Promise, workspace_id).where(
        Promise.buyer_id == buyer_id, Promise.policy_id == policy_id, Promise.status.in_(("open", "late"))
    )
    return session.scalars(stmt.order_by(Promise.id).limit(1).with_for_update()).one_or_none()


def promises_page(
    session: Session, workspace_id: str, *, limit: int, before_id: int | None, status: str | None,
    buyer_id: str | None, offer_key: str | None,
) -> list[Promise]:  # fmt: skip
    stmt = newest_first(Promise, workspace_id, limit=limit, before_id=before_id,  # type: ignore[arg-type]
                        status=status, buyer_id=buyer_id, offer_key=offer_key)  # fmt: skip
    return list(session.scalars(stmt))
