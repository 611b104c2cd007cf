"""An outcome event rewarding a decision and the job closing its window, in two transactions at once (PostgreSQL:
SQLite's one writer serializes them). Each read the decision as open and wrote its reward: the one committing
second overwrote the first — the window's default reward replaced an outcome already recorded (and maybe
learned from), or a second outcome event (a merged buyer's events lie in several partitions) replaced the first.
A rewarded decision must never be rewarded again."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select
from sqlalchemy.engine import Engine
from tests.adversarial.interleave import committed_buyer, in_thread, wait_until_blocked

from offerloop.db.uow import Database
from offerloop.decisions import learning
from offerloop.models import Decision

T0 = datetime(2026, 11, 28, 10, 0, tzinfo=UTC)
ENDS = T0 + timedelta(hours=1)
OUTCOME = {"_outcome": {"event": "Order Completed", "value": 1.0, "default_reward": 0.0}}


@pytest.fixture
def shared(engine: Engine) -> Iterator[tuple[Database, str, str]]:
    """A buyer with one open decision whose outcome is an ``Order Completed`` within the hour."""
    with committed_buyer(engine, "byr_rrace", T0) as (db, ws):
        with db.write() as session:
            session.add(Decision(id="dec_rrace", workspace_id=ws, buyer_id="byr_rrace", placement="home",
                                 created_at=T0, policy="model", holdout=False, model_version=1, context=OUTCOME,
                                 candidates=[], items=[], excluded=[], chosen_key="a", chosen_index=0,
                                 propensity=0.5, outcome_event="Order Completed", window_ends_at=ENDS))  # fmt: skip
        yield db, ws, "byr_rrace"


def _reward(db: Database) -> tuple[float | None, str | None]:
    with db.read() as session:
        d = session.scalars(select(Decision).where(Decision.id == "dec_rrace")).one()
        return d.reward, d.reward_source


def _outcome(session, ws: str, buyer: str, message_id: str, minutes: int) -> int:  # type: ignore[no-untyped-def]
    at = T0 + timedelta(minutes=minutes)
    return learning.on_events(
        session=session, workspace_id=ws, events=[(buyer, "Order Completed", {}, at, message_id)]
    )


def test_the_window_closing_meanwhile_leaves_the_outcome_recorded_first(shared) -> None:
    db, ws, buyer = shared
    closed: list[int] = []
    with db.write() as step:  # the rewards consumer: an order 30 minutes after the decision
        assert _outcome(step, ws, buyer, "order-1", 30) == 1
        step.flush()
        thread, failed = in_thread(  # the close-windows job, an hour later
            db, lambda session: closed.append(learning.close_windows(session=session, workspace_id=ws,
                                                                     now=ENDS + timedelta(seconds=1)))
        )  # fmt: skip
        wait_until_blocked(db, thread)
    thread.join()
    assert failed == []
    assert closed == [0]
    assert _reward(db) == (1.0, "order-1")


def test_a_second_outcome_meanwhile_leaves_the_first(shared) -> None:
    db, ws, buyer = shared
    second: list[int] = []
    with db.write() as step:  # the partition of the buyer's own events
        assert _outcome(step, ws, buyer, "order-1", 20) == 1
        step.flush()
        # the partition of the events of a buyer merged into it: a later order of the same window
        thread, failed = in_thread(
            db, lambda session: second.append(_outcome(session, ws, buyer, "order-2", 40))
        )
        wait_until_blocked(db, thread)
    thread.join()
    assert failed == []
    assert second == [0]
    assert _reward(db) == (1.0, "order-1")
