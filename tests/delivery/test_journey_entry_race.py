"""Two transactions entering one buyer into one journey while the other runs (PostgreSQL: SQLite's one writer
serializes them). A merged buyer's events lie in several partitions, whose journeys steps run at once: each read
the buyer's last run, and both inserted the next occurrence, so the second failed with a unique violation into
its backoff (its events, and the partition's later ones, waiting meanwhile)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from sqlalchemy import select
from sqlalchemy.engine import Engine
from tests.adversarial.interleave import committed_buyer, in_thread, wait_until_blocked

from offerloop.db.uow import Database
from offerloop.delivery import repository
from offerloop.delivery import service as delivery_service
from offerloop.delivery.journeys import engine
from offerloop.delivery.schemas import JourneyIn
from offerloop.models import JourneyRun

T0 = datetime(2026, 11, 28, 10, 0, tzinfo=UTC)

JOURNEY = """
name: {name}
category: marketing
reentry: {reentry}
trigger: {{event: Order Completed}}
steps:
  - send: {{channel: inapp, subject: "Thanks", text: "thanks"}}
"""


@pytest.fixture
def shared(engine: Engine) -> Iterator[tuple[Database, str, str]]:
    with committed_buyer(engine, "byr_jrace", T0) as (db, ws):
        with db.write() as session:
            for reentry in ("always", "never"):
                body = JourneyIn(yaml=JOURNEY.format(name=reentry, reentry=reentry))
                delivery_service.save_journey(
                    session=session, workspace_id=ws, name=reentry, body=body, now=T0
                )
        yield db, ws, "byr_jrace"


def _enter(session, ws: str, name: str, buyer: str, message_id: str) -> bool:  # type: ignore[no-untyped-def]
    row = repository.journey(session, ws, name)
    assert row is not None
    entry = engine.Entry(buyer_id=buyer, trigger_id=message_id, name="Order Completed", properties={},
                         timezone=None, timestamp=T0, seq=1)  # fmt: skip
    return engine.enter(session, ws, row, engine.definition(row), entry, T0)


def _runs(db: Database, ws: str, name: str) -> list[tuple[int, str]]:
    with db.read() as session:
        rows = session.execute(
            select(JourneyRun.occurrence, JourneyRun.trigger_message_id)
            .where(JourneyRun.workspace_id == ws, JourneyRun.journey == name)
            .order_by(JourneyRun.occurrence)
        ).all()
        return [(int(o), str(m)) for o, m in rows]


@pytest.mark.parametrize(
    ("name", "runs"), [("always", [(1, "order-1"), (2, "order-2")]), ("never", [(1, "order-1")])]
)
def test_two_partitions_entering_a_merged_buyer_at_once_both_succeed(shared, name, runs) -> None:
    db, ws, buyer = shared
    entered: list[bool] = []
    with db.write() as first:  # the journeys step of the partition of the buyer's own events
        assert _enter(first, ws, name, buyer, "order-1")
        first.flush()
        # The journeys step of the partition of the events of a buyer merged into it, at the same time.
        thread, failed = in_thread(
            db, lambda session: entered.append(_enter(session, ws, name, buyer, "order-2"))
        )
        wait_until_blocked(db, thread)  # on the first's uncommitted run
    thread.join()
    assert failed == []
    assert entered == [name == "always"]
    assert _runs(db, ws, name) == runs
