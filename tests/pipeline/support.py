"""Test consumers for the pipeline, registered beside the real ones (identity, features, rewards,
triggers): a recorder and a poisoned consumer. The recorder writes one row per (consumer, event) it is
given, in the step's transaction, so "processed exactly once" and "in order per buyer" can be counted;
the buyer it records is the one the real identity stage resolved (``buyers`` maps userIds to them)."""

from __future__ import annotations

import os
from collections.abc import Sequence

from sqlalchemy import Connection, Engine, select, text
from sqlalchemy.orm import Session

from offerloop.models import Buyer
from offerloop.pipeline.registry import LogEvent, consumer, unregister
from offerloop.worker import registry

# ``id`` numbers the calls in the order they were made, across processes.
CALLS_DDL = (
    "CREATE TABLE IF NOT EXISTS pipeline_test_calls ({id}, workspace_id VARCHAR(40) NOT NULL, "
    "consumer VARCHAR(64) NOT NULL, buyer_id VARCHAR(80), seq BIGINT NOT NULL, name VARCHAR(255), pid INTEGER NOT NULL)"
)
CURED: set[str] = set()  # message ids the poisoned consumer digests after all (a fixed bug, for replay)
REAL = ("identity", "features", "rewards", "triggers")
TEST = ("test_recorder", "test_poisoned")
NAMES = (*REAL, *TEST)


def create_calls_table(bind: Engine | Connection) -> None:
    key = (
        "id BIGSERIAL PRIMARY KEY"
        if bind.dialect.name == "postgresql"
        else "id INTEGER PRIMARY KEY AUTOINCREMENT"
    )
    if isinstance(bind, Engine):
        with bind.begin() as conn:
            conn.execute(text(CALLS_DDL.format(id=key)))
    else:
        bind.execute(text(CALLS_DDL.format(id=key)))


def buyers(session: Session, workspace_id: str) -> dict[str, str]:
    """userId -> the live buyer the identity stage resolved it to."""
    rows = session.execute(
        select(Buyer.user_id, Buyer.id).where(
            Buyer.workspace_id == workspace_id, Buyer.user_id.is_not(None), Buyer.merged_into_id.is_(None)
        )
    ).all()
    return {u: b for u, b in rows}


def _record(name: str, session: Session, workspace_id: str, events: Sequence[LogEvent]) -> None:
    session.execute(
        text(
            "INSERT INTO pipeline_test_calls (workspace_id, consumer, buyer_id, seq, name, pid) "
            "VALUES (:ws, :c, :b, :s, :n, :p)"
        ),
        [
            {"ws": workspace_id, "c": name, "b": e.buyer_id, "s": e.seq, "n": e.name, "p": os.getpid()}
            for e in events
        ],
    )


def recorder(session: Session, workspace_id: str, events: Sequence[LogEvent]) -> None:
    _record("test_recorder", session, workspace_id, events)


def poisoned(session: Session, workspace_id: str, events: Sequence[LogEvent]) -> None:
    """Records like the recorder, but raises on any event named "Poison"."""
    _record("test_poisoned", session, workspace_id, events)
    for e in events:
        if e.name == "Poison" and e.message_id not in CURED:
            raise ValueError(f"cannot digest {e.message_id}")


def register(*, poison: bool = False) -> None:
    registry.load()  # the real consumers first: the test ones run beside them
    consumer("test_recorder", stage="buyer")(recorder)
    if poison:
        consumer("test_poisoned", stage="buyer", order=200)(poisoned)


def unregister_all() -> None:
    for name in TEST:
        unregister(name)
