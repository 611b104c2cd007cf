"""A features step applying a buyer's first events and identity resolution merging that buyer away, committing
in either order while the other runs (PostgreSQL: SQLite's one writer serializes them). The merge's delete did not
see the step's uncommitted first row, which outlived the merge: a merged-away buyer kept features (and a persona)
of its own beside its survivor's, counted twice by persona discovery and the persona distribution."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from sqlalchemy import select, update
from sqlalchemy.engine import Engine
from sqlalchemy.orm import Session
from tests.adversarial.interleave import committed_buyer, in_thread, wait_until_blocked

from offerloop.db.uow import Database
from offerloop.features import service as features_service
from offerloop.features.consumers import apply_features
from offerloop.models import Buyer, BuyerFeatures
from offerloop.personas import service as persona_service
from offerloop.pipeline.registry import LogEvent

T0 = datetime(2026, 11, 28, 10, 0, tzinfo=UTC)
LOSER, WINNER = "byr_lrace_b", "byr_lrace_a"


@pytest.fixture
def shared(engine: Engine) -> Iterator[tuple[Database, str]]:
    """Two buyers: the loser's first event is read by a features step before the merge."""
    with committed_buyer(engine, WINNER, T0) as (db, ws):
        with db.write() as session:
            session.add(Buyer(id=LOSER, workspace_id=ws, created_at=T0, first_seen_at=T0, last_seen_at=T0))
        yield db, ws


def _step(session: Session, ws: str) -> None:
    event = LogEvent(1, ws, "m-1", "track", "Lesson Started", LOSER, None, "b1", None, None, T0, T0, T0, T0,
                     {}, {}, {}, 1.0, 1.0, False, False)  # fmt: skip
    apply_features(session, ws, [event])


def _merge(session: Session, ws: str) -> None:
    """What the identity stage does to the two buyers' state when it merges the loser into the winner."""
    session.execute(update(Buyer).where(Buyer.id == LOSER).values(merged_into_id=WINNER))
    features_service.merged(session=session, workspace_id=ws, winners=[WINNER], losers=[LOSER])
    persona_service.forget(session=session, workspace_id=ws, buyer_ids=[LOSER])


def _rows(db: Database, ws: str) -> list[tuple[str, bool]]:
    with db.read() as session:
        found = session.execute(
            select(BuyerFeatures.buyer_id, BuyerFeatures.rebuild)
            .where(BuyerFeatures.workspace_id == ws)
            .order_by(BuyerFeatures.buyer_id)
        ).all()
        return [(b, bool(r)) for b, r in found]


def test_a_merge_while_a_step_inserts_the_losers_first_row_deletes_it(shared) -> None:
    db, ws = shared
    with db.write() as step:
        _step(step, ws)
        step.flush()
        thread, failed = in_thread(db, lambda session: _merge(session, ws))
        wait_until_blocked(db, thread)  # on the step's uncommitted row
    thread.join()
    assert failed == []
    assert _rows(db, ws) == [(WINNER, True)]  # the winner rebuilt from every event at its next apply


def test_a_step_inserting_the_losers_first_row_after_the_merge_claimed_it_leaves_none(shared) -> None:
    db, ws = shared
    with db.write() as merge:
        _merge(merge, ws)
        merge.flush()
        thread, failed = in_thread(db, lambda session: _step(session, ws))  # read the loser as live
        wait_until_blocked(db, thread)  # on the merge's claim
    thread.join()
    assert failed == []
    assert _rows(db, ws) == [(WINNER, True)]
