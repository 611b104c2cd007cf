"""A features step and a merge that flags the same buyer, committing in either order while the other runs
(PostgreSQL: SQLite's one writer serializes them). CI once saw the first order fail the step with a
unique violation into its backoff, and a read in the meantime counted 0 of a merged buyer's 11 lessons."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from sqlalchemy import event, select
from sqlalchemy.engine import Engine
from tests.adversarial.interleave import committed_buyer, in_thread, wait_until_blocked

from offerloop.db.uow import Database
from offerloop.features import repository
from offerloop.features.state import new_state
from offerloop.models import BuyerFeatures

T0 = datetime(2026, 11, 28, 10, 0, tzinfo=UTC)
LESSONS = {"f": {"lessons_started": 4}}  # what the step computed from the buyer's own events only


@pytest.fixture
def shared(engine: Engine) -> Iterator[tuple[Database, str, str]]:
    with committed_buyer(engine, "byr_race", T0) as (db, ws):
        yield db, ws, "byr_race"


def _row(db: Database, buyer_id: str) -> tuple[bool, int, dict[str, object]]:
    with db.read() as session:
        row = session.scalars(select(BuyerFeatures).where(BuyerFeatures.buyer_id == buyer_id)).one()
        return row.rebuild, row.applied_seq, row.state


def test_a_step_saving_a_new_row_after_a_merge_flagged_it_keeps_the_flag(shared) -> None:
    db, ws, buyer = shared
    with db.write() as step:
        assert repository.marked_states(step, ws, [buyer]) == {}  # no row yet: the step will insert one
        with db.write() as merge:  # identity resolution merges another buyer into this one and commits
            repository.mark_rebuild(merge, ws, {buyer}, 1, new_state(), T0)
        repository.save_states(step, ws, {buyer: LESSONS}, {buyer: 11}, set(), 1, {buyer: T0}, {buyer: T0})
    # The merge's row stands, flagged: the buyer is rebuilt from every stored event at its next apply.
    assert _row(db, buyer) == (True, 0, new_state())


def test_a_merge_flagging_a_row_a_step_inserts_meanwhile_flags_it(shared) -> None:
    db, ws, buyer = shared
    failed: list[BaseException] = []
    with db.write() as step:
        repository.save_states(step, ws, {buyer: LESSONS}, {buyer: 11}, set(), 1, {buyer: T0}, {buyer: T0})
        step.flush()

        def merge() -> None:  # sees no row (the step has not committed), inserts one, waits on the step's
            try:
                with db.write() as session:
                    repository.mark_rebuild(session, ws, {buyer}, 1, new_state(), T0)
            except BaseException as exc:  # reported to the test thread
                failed.append(exc)

        thread = threading.Thread(target=merge)
        thread.start()
        wait_until_blocked(db, thread)  # on the step's uncommitted row
    thread.join()
    assert failed == []
    assert _row(db, buyer) == (True, 11, LESSONS)  # the step's state, flagged for the rebuild


def test_a_step_whose_new_row_commits_while_a_merge_flags_it_loses_no_flag(shared, engine: Engine) -> None:
    """The step's first row commits right after the merge's first statement on the buyer's row (or, when that
    statement waits for the step, while it waits). The merge updated the rows it saw (none: the step had not
    committed), then looked for the rows still missing, found the step's, and inserted nothing: the flag was lost,
    and the step's next apply skipped the merged events below its watermark (CI: 4 of a buyer's 11 lessons)."""
    db, ws, buyer = shared
    tester = threading.current_thread()
    looked, committed = threading.Event(), threading.Event()

    def pause_after_first_look(_conn: object, _cursor: object, statement: str, *_: object) -> None:
        # Only the merge (the other thread) pauses, once, after its first statement on buyer_features.
        if threading.current_thread() is not tester and "buyer_features" in statement and not looked.is_set():
            looked.set()
            assert committed.wait(60), "the step never committed"

    event.listen(engine, "after_cursor_execute", pause_after_first_look)
    try:
        with db.write() as step:
            assert repository.marked_states(step, ws, [buyer]) == {}  # no row yet: the step inserts one
            repository.save_states(
                step, ws, {buyer: LESSONS}, {buyer: 11}, set(), 1, {buyer: T0}, {buyer: T0}
            )
            step.flush()
            thread, failed = in_thread(
                db, lambda session: repository.mark_rebuild(session, ws, {buyer}, 1, new_state(), T0)
            )
            wait_until_blocked(db, thread, or_when=looked.is_set)
        committed.set()
        thread.join()
    finally:
        committed.set()
        event.remove(engine, "after_cursor_execute", pause_after_first_look)
    assert failed == []
    assert _row(db, buyer) == (True, 11, LESSONS)  # the step's state, flagged for the rebuild
