"""Every SQL statement of the features domain."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam
from sqlalchemy.orm import Session

from offerloop.db import driver
from offerloop.db.scoped import scoped_delete, scoped_select, scoped_update
from offerloop.models import BuyerFeatures, Event, Touchpoint


def states(session: Session, workspace_id: str, buyer_ids: Iterable[str]) -> dict[str, dict[str, Any]]:
    rows = driver.select_in(
        session.connection(), "SELECT buyer_id, state FROM buyer_features WHERE workspace_id = ?", [workspace_id],
        "buyer_id", sorted(set(buyer_ids)),
    )  # fmt: skip
    return {buyer_id: driver.read_json(state) for buyer_id, state in rows}


def save_states(
    session: Session,
    workspace_id: str,
    states: dict[str, dict[str, Any]],
    existing: set[str],
    version: int,
    at: datetime,
) -> None:
    """Insert new rows and update existing ones, one executemany each."""
    new = [b for b in states if b not in existing]
    old = [b for b in states if b in existing]
    if new:
        driver.insert_many(
            session.connection(), "buyer_features", ("buyer_id", "workspace_id", "state", "spec_version", "updated_at"),
            [(b, workspace_id, states[b], version, at) for b in new],
        )  # fmt: skip
    if old:
        stmt = (
            scoped_update(BuyerFeatures, workspace_id)
            .where(BuyerFeatures.buyer_id == bindparam("b_id"))
            .values(
                state=bindparam("b_state"), spec_version=bindparam("b_version"), updated_at=bindparam("b_at")
            )
        )
        session.connection().execute(
            stmt, [{"b_id": b, "b_state": states[b], "b_version": version, "b_at": at} for b in old]
        )


def forget(session: Session, workspace_id: str, buyer_ids: list[str]) -> None:
    session.execute(scoped_delete(BuyerFeatures, workspace_id).where(BuyerFeatures.buyer_id.in_(buyer_ids)))


def events_for_replay(
    session: Session, workspace_id: str, buyer_id: str
) -> Iterator[tuple[Event, str | None]]:
    """A buyer's events in time order with their touchpoint channel, to rebuild features after a merge."""
    stmt = (
        scoped_select(Event, workspace_id, Event, Touchpoint.channel)
        .outerjoin(
            Touchpoint, (Touchpoint.workspace_id == Event.workspace_id) & (Touchpoint.event_id == Event.id)
        )
        .where(Event.buyer_id == buyer_id)
        .order_by(Event.timestamp, Event.id)
    )
    yield from (
        (event, channel) for event, channel in session.execute(stmt.execution_options(yield_per=1000))
    )


def iter_states(session: Session, workspace_id: str) -> Iterator[tuple[str, dict[str, Any]]]:
    stmt = scoped_select(BuyerFeatures, workspace_id, BuyerFeatures.buyer_id, BuyerFeatures.state)
    yield from ((b, s) for b, s in session.execute(stmt.execution_options(yield_per=2000)))
