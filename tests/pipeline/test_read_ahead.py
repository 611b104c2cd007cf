"""A consumer step on SQLite reads its events, and the features consumer folds them and infers personas, in a
read transaction before the step's write transaction (outside the one writer lock every ingest batch needs).
What it leaves must be exactly what a step inside one transaction leaves, and a read made stale by a commit in
between (a merge, a rebuild, a persona change, a new event) must not be written as it was read."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import Engine, delete, select, text, update
from tests.pipeline_consumers import harness
from tests.pipeline_consumers.test_equivalence import DEMO, configure, snapshot

from offerloop.core.clock import utcnow
from offerloop.db.uow import Database
from offerloop.features import service as features_service
from offerloop.features.consumers import apply_features, apply_prepared, prepare_features
from offerloop.jobs import runner as jobs_runner
from offerloop.models import BuyerFeatures, BuyerPersona, Event, Job, Workspace
from offerloop.personas import service as persona_service
from offerloop.pipeline import log as pipeline_log
from offerloop.pipeline import metrics, runner
from offerloop.pipeline.registry import consumers
from offerloop.sim.audience import Audience
from offerloop.workspaces import service as workspace_service

START = datetime(2026, 6, 1, tzinfo=UTC)


@pytest.fixture
def sqlite_db(engine: Engine, monkeypatch: pytest.MonkeyPatch) -> Iterator[Database]:
    """Real transactions on the test database (the read-ahead is SQLite's: elsewhere it reads nothing), in a
    process whose consumers read ahead (a worker's)."""
    if engine.dialect.name != "sqlite":
        pytest.skip(
            "the read-ahead spares SQLite's one writer lock; PostgreSQL steps read in their transaction"
        )
    monkeypatch.setattr(runner, "_reading_ahead", True)
    database = Database(engine)
    made: list[str] = []
    database.info = made  # type: ignore[attr-defined]
    yield database
    with database.write() as session:
        for ws in made:
            for table in ("persona_history", "buyer_personas", "buyer_features", "touchpoints", "events"):
                session.execute(text(f"DELETE FROM {table} WHERE workspace_id = :ws"), {"ws": ws})
            session.execute(delete(Job).where(Job.workspace_id == ws))
            session.execute(delete(Workspace).where(Workspace.id == ws))


def _workspace(db: Database, name: str) -> str:
    with db.write() as session:
        ws = workspace_service.create_workspace(session=session, name=name).id
        configure(session, ws)
    db.info.append(ws)  # type: ignore[attr-defined]
    return ws


def _append(db: Database, ws: str, audience: Audience) -> int:
    appended = 0
    for messages in audience.batches(100):
        with db.write() as session:
            appended += len(harness.append(session, ws, messages, START + timedelta(seconds=appended)))
    return appended


def _used() -> tuple[float, float]:
    return (
        metrics.READ_AHEAD.labels("used")._value.get(),  # type: ignore[attr-defined]
        metrics.READ_AHEAD.labels("stale")._value.get(),  # type: ignore[attr-defined]
    )


def _run_workers(db: Database, ws: str) -> None:
    """Run due consumer jobs as a worker thread does (claim one, read ahead, step) until nothing is due."""
    for _ in range(1000):
        ran = jobs_runner.run_due(db, owner="t", only=runner.kinds(), limit=1)  # as a runner thread claims
        if not ran:
            with db.read() as session:
                if runner.caught_up(session, ws):
                    return
                pending = session.scalar(
                    select(Job.id).where(Job.workspace_id == ws, Job.state == "queued").limit(1)
                )
            assert pending is None, "due jobs left that run_due did not claim"
            return
    raise AssertionError("workers never caught up")


def _job(db: Database, ws: str, kind: str) -> Job:
    with db.read() as session:
        job = session.scalars(select(Job).where(Job.workspace_id == ws, Job.kind == kind)).one()
        session.expunge(job)
    return job


def _step(db: Database, ws: str, name: str, ahead: runner.Ahead | None) -> datetime | None:
    consumer = next(c for c in consumers() if c.name == name)
    now = utcnow()
    with db.write() as session:
        job = session.scalars(select(Job).where(Job.workspace_id == ws, Job.kind == f"consumer:{name}")).one()
        return runner.step(session, db, consumer, job, now=now, ahead=ahead)


def test_steps_read_ahead_leave_exactly_what_steps_in_one_transaction_leave(sqlite_db, monkeypatch) -> None:
    monkeypatch.setattr(runner.config, "batch", 150)  # several steps per stage, riders included
    audience = Audience(buyers=40, events=900, seed=5, start=START - timedelta(days=30))
    plain, ahead = _workspace(sqlite_db, "plain"), _workspace(sqlite_db, "ahead")
    assert _append(sqlite_db, plain, audience) == _append(sqlite_db, ahead, audience) > 800
    runner.drain(sqlite_db, workspace_id=plain)  # a request's catch-up: every step inside its transaction
    used, stale = _used()
    _run_workers(sqlite_db, ahead)
    used_after, stale_after = _used()
    assert used_after - used >= 2 * 6  # both stages, every step of ~900 events in steps of 150
    assert stale_after == stale
    with sqlite_db.read() as session:
        left, right = snapshot(session, plain), snapshot(session, ahead)
        assert len(left["features"]) > 20 and len(left["personas"]) > 20 and left["history"]
    assert left == right


def test_a_read_ahead_made_stale_by_a_merge_is_read_again(sqlite_db) -> None:
    """A merge committed between the read-ahead and the step repoints an event to the winner: the step must
    apply the event as stored now (to the winner), not as it was read."""
    ws = _workspace(sqlite_db, "merge")
    track = {"type": "track", "event": "Lesson Completed", "timestamp": "2026-05-30T10:00:00Z"}
    messages = [
        {**track, "anonymousId": "a1", "messageId": "m1"},
        {**track, "anonymousId": "a2", "messageId": "m2"},
        {**track, "anonymousId": "a2", "messageId": "m3"},
    ]
    with sqlite_db.write() as session:
        harness.append(session, ws, messages, START)
    _step(sqlite_db, ws, "identity", None)
    with sqlite_db.read() as session:
        owner = dict(
            session.execute(select(Event.message_id, Event.buyer_id).where(Event.workspace_id == ws)).all()
        )
    first, second = owner["m1"], owner["m2"]
    assert first != second
    ahead = runner._read_ahead(sqlite_db, _job(sqlite_db, ws, "consumer:features"), utcnow())
    assert ahead is not None and [e.buyer_id for e in ahead.events] == [first, second, second]
    assert set(ahead.plans) == {"features"}
    with sqlite_db.write() as session:  # the merge's repointing of the loser's events, committed meanwhile
        session.execute(
            update(Event).where(Event.workspace_id == ws, Event.buyer_id == second).values(buyer_id=first)
        )
    used, stale = _used()
    _step(sqlite_db, ws, "features", ahead)
    assert _used() == (used, stale + 1)
    with sqlite_db.read() as session:
        rows = dict(
            session.execute(
                select(BuyerFeatures.buyer_id, BuyerFeatures.applied_seq).where(
                    BuyerFeatures.workspace_id == ws
                )
            ).all()
        )
    assert list(rows) == [first]  # all three events are the winner's; the loser never got a row


def test_an_event_appended_after_the_read_ahead_is_not_left_behind(sqlite_db) -> None:
    """The step runs with what it read ahead, and finds the event appended since (its append's wake-up skipped
    the row this step holds): it asks to run again instead of going idle with the event pending."""
    ws = _workspace(sqlite_db, "late")
    track = {"type": "track", "event": "Clicked", "userId": "u", "timestamp": "2026-05-30T10:00:00Z"}
    with sqlite_db.write() as session:
        harness.append(session, ws, [{**track, "messageId": "m1"}], START)
    ahead = runner._read_ahead(sqlite_db, _job(sqlite_db, ws, "consumer:identity"), utcnow())
    assert ahead is not None and len(ahead.events) == 1 and not ahead.more
    with sqlite_db.write() as session:
        harness.append(session, ws, [{**track, "messageId": "m2"}], START)
    assert _step(sqlite_db, ws, "identity", ahead) is not None  # used, and more to do
    assert _step(sqlite_db, ws, "identity", None) is None
    with sqlite_db.read() as session:
        assert runner.checkpoints.cursor_of(
            session, ws, "consumer:identity", pipeline_log.key_of(ws, pipeline_log.IDENTITY_PART)
        ) == pipeline_log.head(session, ws)


def _prepared(db: Database, ws: str) -> tuple[list[Any], Any]:
    consumer = next(c for c in consumers() if c.name == "features")
    job = _job(db, ws, "consumer:features")
    with db.read() as session:
        events = pipeline_log.read(session, ws, after=int(job.cursor or 0), up_to=None, part=0, limit=10_000)
        plan = prepare_features(session, ws, events)
    assert consumer.prepare is prepare_features and plan is not None
    return events, plan


def _state(db: Database, ws: str) -> dict[str, Any]:
    with db.read() as session:
        features = {
            b: (s, seq, r)
            for b, s, seq, r in session.execute(
                select(
                    BuyerFeatures.buyer_id,
                    BuyerFeatures.state,
                    BuyerFeatures.applied_seq,
                    BuyerFeatures.rebuild,
                ).where(BuyerFeatures.workspace_id == ws)
            )
        }
        personas = dict(
            session.execute(
                select(BuyerPersona.buyer_id, BuyerPersona.persona).where(BuyerPersona.workspace_id == ws)
            ).all()
        )
    return {"features": features, "personas": personas}


CHANGES = ["rebuild", "persona", "templates", "none", "rebuilt:none", "rebuilt:new-event"]


@pytest.mark.parametrize("change", CHANGES)
def test_a_features_plan_is_written_only_if_what_it_read_still_holds(sqlite_db, change) -> None:
    """Prepared in one transaction, applied in a later one: a buyer flagged for a rebuild (a merge, a replayed
    parked event) or whose persona row changed in between is redone from its events, the other buyers' part of
    the plan is written; new templates make every buyer stale. A buyer flagged before (rebuilt in the plan from
    its stored events) that got another event since must be rebuilt again. Either way the result is what
    applying the events in one transaction gives."""
    audience = Audience(buyers=12, events=300, seed=9, start=START - timedelta(days=30))
    plain, ws = _workspace(sqlite_db, f"plain-{change}"), _workspace(sqlite_db, f"plan-{change}")
    for target in (plain, ws):
        _append(sqlite_db, target, audience)
        _step(sqlite_db, target, "identity", None)
        with sqlite_db.write() as session:  # some state first, so that rows exist to be changed
            events = pipeline_log.read(session, target, after=0, up_to=None, part=0, limit=150)
            apply_features(session, target, events)
            session.execute(
                update(Job)
                .where(Job.workspace_id == target, Job.kind == "consumer:features")
                .values(cursor=events[-1].seq)
            )
    with sqlite_db.read() as session:
        rest = pipeline_log.read(session, ws, after=events[-1].seq, up_to=None, part=0, limit=10_000)
        have = set(session.scalars(select(BuyerFeatures.buyer_id).where(BuyerFeatures.workspace_id == ws)))
        buyer = next(e.buyer_id for e in rest if e.buyer_id in have)
        keys = {
            target: buyer if target == ws else _same_buyer(session, ws, target, buyer)
            for target in (plain, ws)
        }
        who = session.execute(
            select(Event.user_id, Event.anonymous_id)
            .where(Event.workspace_id == ws, Event.buyer_id == buyer)
            .limit(1)
        ).one()
    if change.startswith("rebuilt:"):  # flagged before the plan: the plan rebuilds it from its stored events
        for target in (plain, ws):
            with sqlite_db.write() as session:
                features_service.rebuild_on_apply(
                    session=session, workspace_id=target, buyer_ids={keys[target]}
                )
    events, plan = _prepared(sqlite_db, ws)
    assert buyer in plan.features.marks_read and (buyer in plan.features.replayed) is change.startswith(
        "rebuilt:"
    )
    for target in (plain, ws):  # the same change in both workspaces, in a transaction of its own
        with sqlite_db.write() as session:
            key = keys[target]
            if change == "rebuild":
                features_service.rebuild_on_apply(session=session, workspace_id=target, buyer_ids={key})
            elif change == "persona":
                session.execute(
                    update(BuyerPersona)
                    .where(BuyerPersona.workspace_id == target, BuyerPersona.buyer_id == key)
                    .values(persona="someone-else")
                )
            elif change == "templates":
                source = (DEMO / "personas.yaml").read_text()  # stored again: a new version
                persona_service.set_templates(session=session, workspace_id=target, source=source, actor="t")
            elif change == "rebuilt:new-event":  # resolved to the buyer after the plan read its events
                late = {
                    "type": "track",
                    "event": "Lesson Completed",
                    "messageId": "late",
                    "timestamp": "2026-05-31T10:00:00Z",
                }
                late |= {"userId": who[0]} if who[0] else {"anonymousId": who[1]}
                harness.append(session, target, [late], START + timedelta(days=1))
        if change == "rebuilt:new-event":
            _step(sqlite_db, target, "identity", None)
    with sqlite_db.write() as session:
        stale = features_service.stale_buyers(session=session, workspace_id=ws, plan=plan.features)
        assert plan.personas is not None
        stale |= persona_service.stale_buyers(session=session, workspace_id=ws, plan=plan.personas)
        expected = {
            "rebuild": {buyer}, "persona": {buyer}, "templates": set(plan.personas.posteriors), "none": set(),
            "rebuilt:none": set(), "rebuilt:new-event": {buyer},
        }  # fmt: skip
        assert stale == expected[change] and len(plan.personas.posteriors) > 1
        apply_prepared(session, ws, events, plan)
    with sqlite_db.write() as session:
        after = events[0].seq - 1 - _offset(sqlite_db, ws, plain)
        apply_features(
            session, plain, pipeline_log.read(session, plain, after=after, up_to=None, part=0, limit=10_000)
        )
    assert _by_key(sqlite_db, ws) == _by_key(sqlite_db, plain)


def _offset(db: Database, ws: str, other: str) -> int:
    """How far ``other``'s seqs are from ``ws``'s for the same event (the two logs were appended alike)."""
    with db.read() as session:
        first = {
            w: session.scalar(select(Event.id).where(Event.workspace_id == w).order_by(Event.id).limit(1))
            for w in (ws, other)
        }
    return int(first[ws]) - int(first[other])


def _same_buyer(session: Any, ws: str, other: str, buyer: str) -> str:
    """The buyer of ``other`` that is ``buyer`` of ``ws`` (the first event's messageId names it in both)."""
    message = session.scalar(
        select(Event.message_id)
        .where(Event.workspace_id == ws, Event.buyer_id == buyer)
        .order_by(Event.id)
        .limit(1)
    )
    return str(
        session.scalar(select(Event.buyer_id).where(Event.workspace_id == other, Event.message_id == message))
    )


def _by_key(db: Database, ws: str) -> dict[str, Any]:
    with db.read() as session:
        snap = snapshot(session, ws)
    return {"features": snap["features"], "personas": snap["personas"], "history": snap["history"]}


def test_the_read_ahead_reads_nothing_for_a_row_with_a_poisoned_event(sqlite_db) -> None:
    ws = _workspace(sqlite_db, "poisoned")
    with sqlite_db.write() as session:
        harness.append(session, ws, [{"type": "track", "event": "x", "userId": "u", "messageId": "m"}], START)
    job = _job(sqlite_db, ws, "consumer:identity")
    assert runner._read_ahead(sqlite_db, job, utcnow()) is not None
    job.payload = {"seq": 1, "attempts": 1, "error": "boom"}
    assert runner._read_ahead(sqlite_db, job, utcnow()) is None


def test_only_a_process_that_answers_no_requests_reads_ahead_by_default(sqlite_db, monkeypatch) -> None:
    monkeypatch.setattr(runner.config, "read_ahead", None)
    assert runner.PipelineWorkers(sqlite_db, serving=True).read_ahead is False
    assert runner.PipelineWorkers(sqlite_db, serving=False).read_ahead is True
    monkeypatch.setattr(runner.config, "read_ahead", True)
    assert runner.PipelineWorkers(sqlite_db, serving=True).read_ahead is True
    ws = _workspace(sqlite_db, "off")
    with sqlite_db.write() as session:
        harness.append(session, ws, [{"type": "track", "event": "x", "userId": "u", "messageId": "m"}], START)
    job = _job(sqlite_db, ws, "consumer:identity")
    assert runner._read_ahead_of(sqlite_db, job.id, utcnow()) is not None
    monkeypatch.setattr(runner, "_reading_ahead", False)
    assert runner._read_ahead_of(sqlite_db, job.id, utcnow()) is None


def test_appends_and_merges_between_each_read_ahead_and_its_write_leave_what_a_plain_drain_leaves(
    sqlite_db, monkeypatch
) -> None:
    """A worker's steps while the log grows and merges commit under them: after every features read-ahead, the
    next batch is appended and the identity stage runs (its merges commit) before the step's write. Every event
    ends up folded exactly once into the buyer the same log drained in one go gives it, with the same buyers,
    owners, touchpoints and merges. (Not the same floats: features fold in the order the steps cut the log —
    sums of floats differ in their last bits — and persona history records when each step saw a change; the
    same holds between two runs without the read-ahead whose steps are cut differently.)"""
    monkeypatch.setattr(runner.config, "batch", 120)
    audience = Audience(buyers=60, events=2400, seed=13, start=START - timedelta(days=30))
    batches = list(audience.batches(100))
    # Merges while the buyer stage works: a device's anonymous events and its user's known buyer early on, the
    # identify that links them (merging the two) two batches later: while the buyer stage reads the first.
    for k in range(40):
        at = f"2026-05-{10 + k % 15:02d}T10:00:00Z"
        early, late = batches[2 + k % 10], batches[4 + k % 10]
        early += [
            {"type": "track", "event": "Lesson Completed", "anonymousId": f"dev-{k}", "messageId": f"a-{k}-{i}",
             "timestamp": at} for i in range(3)
        ]  # fmt: skip
        early.append({"type": "identify", "userId": f"user-{k}", "messageId": f"u-{k}", "timestamp": at})
        late.append({"type": "identify", "userId": f"user-{k}", "anonymousId": f"dev-{k}", "messageId": f"l-{k}",
                     "timestamp": at})  # fmt: skip
    plain, ws = _workspace(sqlite_db, "plain-live"), _workspace(sqlite_db, "live")
    sent = 0
    for messages in batches:
        with sqlite_db.write() as session:
            sent += len(harness.append(session, plain, messages, START + timedelta(seconds=sent)))
    runner.drain(sqlite_db, workspace_id=plain)
    todo = list(batches)
    appended = [0]

    def append_next() -> None:
        if todo:
            with sqlite_db.write() as session:
                at = START + timedelta(seconds=appended[0])
                appended[0] += len(harness.append(session, ws, todo.pop(0), at))

    identity = next(c for c in consumers() if c.stage == "identity")
    original = runner._read_ahead_of
    between = {"identity steps": 0}

    def interleaved(db: Database, job_id: int, now: datetime) -> Any:
        ahead = original(db, job_id, now)
        with db.read() as session:
            job = session.get(Job, job_id)
            assert job is not None
            session.expunge(job)
        if job.workspace_id == ws and job.kind == "consumer:features":
            append_next()
            with db.read() as session:
                head = pipeline_log.head(session, ws)
            if runner._advance(db, identity, ws, pipeline_log.IDENTITY_PART, head, float("inf")):
                between["identity steps"] += 1
        return ahead

    for kind in runner.kinds():
        monkeypatch.setitem(
            jobs_runner._kinds, kind, dataclasses.replace(jobs_runner._kinds[kind], read_ahead=interleaved)
        )
    seen_stale: list[set[str]] = []
    stale_buyers = features_service.stale_buyers

    def spy(**kw: Any) -> set[str]:
        seen_stale.append(stale_buyers(**kw))
        return seen_stale[-1]

    monkeypatch.setattr(features_service, "stale_buyers", spy)
    append_next()
    used = _used()[0]
    while todo:
        _run_workers(sqlite_db, ws)
        append_next()
    _run_workers(sqlite_db, ws)
    used_after = _used()[0]
    assert appended[0] == sent and between["identity steps"] > 5
    # every buyer-stage step was checked per buyer (the stale cases themselves: the parametrized test above)
    assert used_after - used > 10 and len(seen_stale) > 10
    with sqlite_db.read() as session:
        assert runner.caught_up(session, ws)
        left, right = snapshot(session, plain), snapshot(session, ws)
        assert len(left["merges"]) >= 40 and len(left["features"]) > 30
    for part in ("buyers", "owners", "touchpoints", "merges", "conflicts", "rewards"):
        assert left[part] == right[part], part

    def folded(snap: dict[str, Any]) -> dict[Any, Any]:
        return {
            key: (state["n"], state["f"].get("orders:count")) for key, (state, _) in snap["features"].items()
        }

    assert folded(left) == folded(right)
    assert set(left["personas"]) == set(right["personas"])
