"""Two transactions refreshing one buyer's analytics state while the other runs (PostgreSQL: SQLite's one writer
serializes them). A buyer's rows are refreshed by the analytics consumer and, in another step of the same
partition (or of another partition, for a merged buyer), by the features consumer when the buyer's persona
changes: each read the rows as stored, deleted them and inserted its own, so the second to insert failed with a
unique violation into its backoff — and a refresh holding stale rows could overwrite fresher ones."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from sqlalchemy import select
from sqlalchemy.engine import Engine
from tests.adversarial.interleave import committed_buyer, in_thread, wait_until_blocked

from offerloop.analytics import state
from offerloop.db.uow import Database
from offerloop.models import AnalyticsPersonaFirst, PersonaChange

T0 = datetime(2026, 11, 28, 10, 0, tzinfo=UTC)
T1 = datetime(2026, 11, 29, 10, 0, tzinfo=UTC)


@pytest.fixture
def shared(engine: Engine) -> Iterator[tuple[Database, str, str]]:
    """A buyer first assigned persona ``a`` (in its committed persona history)."""
    with committed_buyer(engine, "byr_arace", T0) as (db, ws):
        with db.write() as session:
            session.add(PersonaChange(workspace_id=ws, buyer_id="byr_arace", from_persona=None, to_persona="a",
                                      confidence=0.9, at=T0))  # fmt: skip
        yield db, ws, "byr_arace"


def _firsts(db: Database, ws: str, buyer: str) -> list[tuple[str, int]]:
    with db.read() as session:
        rows = session.execute(
            select(AnalyticsPersonaFirst.persona, AnalyticsPersonaFirst.at_us)
            .where(AnalyticsPersonaFirst.workspace_id == ws, AnalyticsPersonaFirst.buyer_id == buyer)
            .order_by(AnalyticsPersonaFirst.persona)
        ).all()
        return [(p, int(at)) for p, at in rows]


def _refresh_in_thread(db: Database, ws: str, buyer: str) -> tuple[threading.Thread, list[BaseException]]:
    return in_thread(db, lambda session: state.refresh(session=session, workspace_id=ws, buyer_ids={buyer}))


def _us(at: datetime) -> int:
    return int(at.timestamp()) * 1_000_000


def test_two_refreshes_of_a_buyer_without_rows_both_succeed(shared) -> None:
    db, ws, buyer = shared
    with db.write() as first:  # e.g. the analytics consumer
        assert state.refresh(session=first, workspace_id=ws, buyer_ids={buyer}) == 1
        first.flush()
        thread, failed = _refresh_in_thread(db, ws, buyer)  # e.g. a persona change in a features step
        wait_until_blocked(db, thread)  # on the first's uncommitted rows
    thread.join()
    assert failed == []
    assert _firsts(db, ws, buyer) == [("a", _us(T0))]


def test_a_refresh_that_read_a_stale_history_leaves_the_fresher_rows(shared) -> None:
    db, ws, buyer = shared
    with db.write() as first:  # a features step: the persona changes to ``b``, its history row with it
        first.add(PersonaChange(workspace_id=ws, buyer_id=buyer, from_persona="a", to_persona="b", confidence=0.8,
                                at=T1))  # fmt: skip
        first.flush()
        assert state.refresh(session=first, workspace_id=ws, buyer_ids={buyer}) == 1
        first.flush()
        # The analytics consumer refreshes the buyer meanwhile: it sees persona ``a`` only.
        thread, failed = _refresh_in_thread(db, ws, buyer)
        wait_until_blocked(db, thread)
    thread.join()
    assert failed == []
    assert _firsts(db, ws, buyer) == [("a", _us(T0)), ("b", _us(T1))]
