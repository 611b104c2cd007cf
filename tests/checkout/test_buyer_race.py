"""A checkout for a new buyer whom the identity consumer is creating at the same moment names that buyer
instead of failing on the duplicate identity (PostgreSQL: two real transactions that overlap)."""

from __future__ import annotations

import threading
import time

import pytest
from sqlalchemy import text
from tests.checkout.log import forget_queued_work, processed

from offerloop.checkout import service as checkout_service
from offerloop.core.clock import utcnow
from offerloop.db.uow import Database
from offerloop.identity import service as identity_service
from offerloop.workspaces import service as workspace_service


def _blocked_on_a_lock(db: Database, statement: str) -> bool:
    with db.read() as session:
        return bool(
            session.scalar(
                text(
                    "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database() "
                    "AND wait_event_type = 'Lock' AND query LIKE :q"
                ),
                {"q": statement + "%"},
            )
        )


def test_a_checkout_racing_the_identity_consumer_for_a_new_buyer_names_that_buyer(engine) -> None:
    if engine.dialect.name != "postgresql":
        pytest.skip("SQLite has one writer at a time: the two transactions cannot overlap")
    db = Database(engine)
    with db.write() as session:
        ws = workspace_service.create_workspace(session=session, name="buyer race").id
    stored, release, found = threading.Event(), threading.Event(), {}

    def consumer() -> None:  # resolves the identify that came in through /v1/identify; commits when told
        with db.write() as session:
            found["consumer"] = identity_service.identify_now(
                session=session, workspace_id=ws, message_id="nia-1", user_id="nia", anonymous_id=None,
                traits={}, at=utcnow(),
            )  # fmt: skip
            stored.set()
            assert release.wait(30)

    def checkout() -> None:
        with db.write() as session:
            found["checkout"] = checkout_service.buyer_for(session=session, workspace_id=ws, user_id="nia")

    first = threading.Thread(target=consumer)
    first.start()
    assert stored.wait(30)
    second = threading.Thread(target=checkout)
    second.start()
    deadline = time.monotonic() + 30
    while not _blocked_on_a_lock(db, "COPY identities"):  # the checkout's insert waits on the same identity
        assert time.monotonic() < deadline and second.is_alive(), "the checkout never reached the identity"
        time.sleep(0.01)
    release.set()
    first.join(30)
    second.join(30)
    assert set(found) == {"consumer", "checkout"} and found["checkout"] == found["consumer"]
    processed(db, ws)  # the identify the checkout appended resolves to the same buyer
    with db.read() as session:
        nia = identity_service.lookup(session=session, workspace_id=ws, user_id="nia")
    assert nia.id == found["consumer"]
    forget_queued_work(db, ws)
