"""The append log and its consumers, in process: acknowledgement appends only, exactly once, drain,
ordered partitions, poisoned events parked and replayed, the pipeline API, concurrent appenders."""

from __future__ import annotations

import random
import threading
import time
from collections.abc import Iterator
from datetime import timedelta
from typing import Any

import pytest
import support
from sqlalchemy import Engine, delete, func, select, text
from tests.conftest import basic, bearer

from offerloop.core.clock import utcnow
from offerloop.db.uow import Database
from offerloop.events import service as event_service
from offerloop.jobs import queue
from offerloop.jobs import runner as jobs_runner
from offerloop.models import Event, EventDedup, Job, ParkedEvent, Workspace
from offerloop.pipeline import checkpoints, registry, runner, status
from offerloop.pipeline import log as pipeline_log
from offerloop.pipeline.runner import kinds
from offerloop.workspaces import service as workspace_service
from offerloop.workspaces.schemas import WorkspaceCreated


@pytest.fixture(autouse=True)
def _eight_partitions(monkeypatch: pytest.MonkeyPatch) -> None:
    """These tests need buyers in distinct partitions, also on SQLite (whose default is one)."""
    monkeypatch.setattr(runner.config, "partitions", 8)


def _ingest(db: Database, workspace_id: str, messages: list[dict[str, Any]]) -> Any:
    batch = event_service.prepare_batch(messages, received_at=utcnow(), max_event_bytes=32 * 1024)
    with db.write() as session:
        return event_service.ingest(session=session, workspace_id=workspace_id, batch=batch)


def _track(i: int, user: str, name: str = "Clicked") -> dict[str, Any]:
    return {
        "type": "track",
        "userId": user,
        "event": name,
        "messageId": f"m-{i}",
        "timestamp": "2026-11-01T10:00:00Z",
    }


def _calls(db: Database, workspace_id: str, consumer: str) -> list[tuple[str | None, int, str | None]]:
    with db.read() as session:
        rows = session.execute(
            text(
                "SELECT buyer_id, seq, name FROM pipeline_test_calls WHERE workspace_id = :ws AND consumer = :c ORDER BY id"
            ),
            {"ws": workspace_id, "c": consumer},
        ).all()
    return [(b, int(s), n) for b, s, n in rows]


def _users_in_distinct_partitions(db: Database, workspace_id: str, n: int) -> list[str]:
    """``n`` users whose buyers (resolved by the real identity stage, drained inline) are in distinct
    partitions; their identify events are in the log before the test's own."""
    users = [f"u{i}" for i in range(40)]
    _ingest(db, workspace_id, [{"type": "identify", "userId": u, "messageId": f"id-{u}"} for u in users])
    with db.read() as session:
        buyers = support.buyers(session, workspace_id)
    chosen, parts = [], set()
    for user in users:
        part = pipeline_log.partition_of(buyers[user], runner.config.partitions)
        if part not in parts:
            parts.add(part)
            chosen.append(user)
        if len(chosen) == n:
            return chosen
    raise AssertionError("not enough partitions")


def test_ingest_appends_and_acknowledges_without_processing(client, db, write_headers, workspace) -> None:
    pipeline_log.set_inline(db, False)  # nothing drains: what the acknowledgement itself did is visible
    r = client.post(
        "/v1/batch",
        json={
            "batch": [_track(1, "u1"), _track(2, "u2"), _track(1, "u1"), {"type": "track", "userId": "u3"}]
        },
        headers=write_headers,
    )
    assert r.status_code == 200
    assert {k: r.json()[k] for k in ("accepted", "duplicates", "quarantined")} == {
        "accepted": 2,
        "duplicates": 1,
        "quarantined": 1,
    }
    with db.read() as session:
        rows = session.execute(
            select(Event.message_id, Event.buyer_id, Event.part)
            .where(Event.workspace_id == workspace.id)
            .order_by(Event.id)
        ).all()
        dedup = set(
            session.scalars(select(EventDedup.message_id).where(EventDedup.workspace_id == workspace.id))
        )
    # The acknowledgement ran no consumer (the real ones are registered): the log holds the events as
    # sent, buyer unknown, until a consumer step resolves them.
    assert [tuple(r) for r in rows] == [("m-1", None, None), ("m-2", None, None)]
    assert dedup == {"m-1", "m-2"}
    runner.drain(db, workspace_id=workspace.id)
    with db.read() as session:
        buyers = support.buyers(session, workspace.id)
        owners = session.execute(
            select(Event.message_id, Event.buyer_id)
            .where(Event.workspace_id == workspace.id)
            .order_by(Event.id)
        ).all()
    assert [tuple(r) for r in owners] == [("m-1", buyers["u1"]), ("m-2", buyers["u2"])]
    # Exactly once at any distance in time: the same messageIds later are duplicates, and stored once.
    again = client.post(
        "/v1/batch", json={"batch": [_track(2, "u2"), _track(1, "u9")]}, headers=write_headers
    )
    assert (again.json()["accepted"], again.json()["duplicates"]) == (0, 2)


def test_drain_applies_every_event_once_in_order_per_buyer(db, workspace, test_consumers) -> None:
    rng = random.Random(7)
    users = [f"u{i}" for i in range(12)]
    sent: list[str] = []
    for batch in range(10):
        messages = [_track(batch * 20 + i, rng.choice(users)) for i in range(20)]
        sent += [m["userId"] for m in messages]
        _ingest(db, workspace.id, messages)  # inline mode: processed right after each commit
    with db.read() as session:
        log = session.execute(
            select(Event.id, Event.buyer_id, Event.part)
            .where(Event.workspace_id == workspace.id)
            .order_by(Event.id)
        ).all()
        buyers = support.buyers(session, workspace.id)
    assert [b for _, b, _ in log] == [buyers[u] for u in sent]  # the real identity stage resolved each
    assert all(p == pipeline_log.partition_of(b, runner.config.partitions) for _, b, p in log)
    calls = _calls(db, workspace.id, "test_recorder")
    assert sorted(s for _, s, _ in calls) == [s for s, _, _ in log]  # each event exactly once
    for user in users:
        seqs = [s for b, s, _ in calls if b == buyers[user]]
        assert seqs == sorted(seqs) and len(seqs) == sent.count(user)


def _run_all(db: Database, now: Any) -> None:
    """Worker passes at ``now`` until nothing more is due."""
    for _ in range(200):
        if not jobs_runner.run_due(db, owner="test", now=now, only=runner.kinds(), limit=50):
            return
    raise AssertionError("the pipeline did not settle")


def test_a_poisoned_event_is_retried_then_parked_and_nothing_else_waits(
    client, db, workspace, test_consumers
) -> None:
    a, b = _users_in_distinct_partitions(db, workspace.id, 2)
    pipeline_log.set_inline(db, False)  # run the consumers as workers do, with a controlled clock
    _ingest(db, workspace.id, [_track(1, a), _track(2, a, "Poison"), _track(3, a), _track(4, b)])
    t0 = utcnow() + timedelta(seconds=1)
    _run_all(db, t0)
    seq = {m: s for s, m in _seqs(db, workspace.id) if m.startswith("m-")}

    def calls(consumer: str) -> list[tuple[str | None, int, str | None]]:
        return [c for c in _calls(db, workspace.id, consumer) if c[1] in seq.values()]

    with db.read() as session:
        buyer_a = support.buyers(session, workspace.id)[a]
    # Other consumers, and the poisoned consumer's other partitions, went on; a's partition waits.
    assert sorted(s for _, s, _ in calls("test_recorder")) == sorted(seq.values())
    assert [s for _, s, _ in calls("test_poisoned")] in (
        [seq["m-1"], seq["m-4"]],
        [seq["m-4"], seq["m-1"]],
    )
    key = pipeline_log.key_of(workspace.id, pipeline_log.partition_of(buyer_a, runner.config.partitions))
    with db.read() as session:
        job = session.scalars(select(Job).where(Job.kind == "consumer:test_poisoned", Job.key == key)).one()
        assert (job.cursor, job.payload["seq"], job.payload["attempts"]) == (seq["m-1"], seq["m-2"], 1)
        assert job.run_at > t0  # backing off
    now = t0
    for _ in range(runner.config.max_attempts - 1):
        now += timedelta(hours=1)
        _run_all(db, now)
    with db.read() as session:
        parked = session.scalars(select(ParkedEvent).where(ParkedEvent.workspace_id == workspace.id)).all()
        got = [(p.consumer, p.seq, p.message_id, p.attempts, p.status) for p in parked]
        error, parked_id = parked[0].error, parked[0].id
    assert got == [("test_poisoned", seq["m-2"], "m-2", runner.config.max_attempts, "parked")]
    assert error == "ValueError: cannot digest m-2"
    # Past the parked event, the partition went on; the failed attempts left nothing behind.
    assert sorted(s for _, s, _ in calls("test_poisoned")) == sorted([seq["m-1"], seq["m-3"], seq["m-4"]])

    headers = bearer(workspace.secret_key)
    status = {c["name"]: c for c in client.get("/v1/pipeline", headers=headers).json()["consumers"]}
    assert {n: (status[n]["lag"], status[n]["parked"], status[n]["head_seq"]) for n in support.NAMES} == {
        n: (0, 1 if n == "test_poisoned" else 0, seq["m-4"]) for n in support.NAMES
    }
    listed = client.get("/v1/pipeline/parked", headers=headers).json()
    assert [(i["id"], i["seq"], i["status"]) for i in listed["items"]] == [(parked_id, seq["m-2"], "parked")]
    still = client.post(f"/v1/pipeline/parked/{parked_id}/replay", headers=headers)
    assert (still.status_code, still.json()["status"]) == (422, "parked")
    support.CURED.add("m-2")  # the consumer's bug is fixed: the replay applies the event
    done = client.post(f"/v1/pipeline/parked/{parked_id}/replay", headers=headers)
    assert (done.status_code, done.json()) == (200, {"id": parked_id, "status": "replayed", "error": None})
    assert [n for _, _, n in calls("test_poisoned")].count("Poison") == 1
    assert client.post(f"/v1/pipeline/parked/{parked_id}/replay", headers=headers).status_code == 409
    assert (
        client.get("/v1/pipeline/parked", params={"status": "replayed"}, headers=headers).json()["items"][0][
            "attempts"
        ]
        == runner.config.max_attempts + 1
    )


def _seqs(db: Database, workspace_id: str) -> list[tuple[int, str]]:
    with db.read() as session:
        rows = session.execute(
            select(Event.id, Event.message_id).where(Event.workspace_id == workspace_id).order_by(Event.id)
        ).all()
    return [(int(s), m) for s, m in rows]


def test_pipeline_endpoints_refuse_bad_input_and_other_workspaces(
    client, db, workspace, other_workspace, test_consumers
) -> None:
    pipeline_log.set_inline(db, False)
    _ingest(db, workspace.id, [_track(1, "u1", "Poison")])
    now = utcnow() + timedelta(seconds=1)
    for _ in range(runner.config.max_attempts):
        _run_all(db, now)
        now += timedelta(hours=1)
    mine, theirs = bearer(workspace.secret_key), bearer(other_workspace.secret_key)
    parked_id = client.get("/v1/pipeline/parked", headers=mine).json()["items"][0]["id"]
    assert client.get("/v1/pipeline/parked", headers=theirs).json() == {"items": [], "next_cursor": None}
    other = client.post(f"/v1/pipeline/parked/{parked_id}/replay", headers=theirs)
    assert (other.status_code, other.json()["error"]["code"]) == (404, "parked_event_not_found")
    assert {c["name"]: c["parked"] for c in client.get("/v1/pipeline", headers=theirs).json()["consumers"]}[
        "test_poisoned"
    ] == 0
    for path, params in [
        ("/v1/pipeline/parked", {"limit": 0}),
        ("/v1/pipeline/parked", {"limit": 5000}),
        ("/v1/pipeline/parked", {"status": "bogus"}),
        ("/v1/pipeline/parked", {"cursor": "x"}),
    ]:
        assert client.get(path, params=params, headers=mine).status_code == 422
    for bad in ("abc", "0", "-3", str(2**70)):
        assert client.post(f"/v1/pipeline/parked/{bad}/replay", headers=mine).status_code == 422
    assert client.post(f"/v1/pipeline/parked/{parked_id + 1000}/replay", headers=mine).status_code == 404
    assert client.get("/v1/pipeline", headers=basic(workspace.write_key)).status_code in (401, 403)
    assert client.get("/v1/pipeline").status_code == 401


# -- concurrent appenders: a real engine, committed data, cleaned up after ---------------------------------


@pytest.fixture
def real_db(engine: Engine) -> Iterator[tuple[Database, WorkspaceCreated]]:
    database = Database(engine)
    with database.write() as session:
        ws = workspace_service.create_workspace(session=session, name="Concurrent")
    yield database, ws
    with database.write() as session:
        session.execute(delete(Job).where(Job.workspace_id == ws.id))
        session.execute(text("DELETE FROM pipeline_test_calls WHERE workspace_id = :ws"), {"ws": ws.id})
        session.execute(delete(Workspace).where(Workspace.id == ws.id))


def test_concurrent_appenders_never_let_a_consumer_skip_a_seq(real_db, test_consumers) -> None:
    database, ws = real_db
    stop = threading.Event()
    errors: list[BaseException] = []

    def append(worker: int) -> None:
        rng = random.Random(worker)
        try:
            for b in range(25):
                _ingest(
                    database,
                    ws.id,
                    [_track(worker * 10_000 + b * 10 + i, f"u{rng.randrange(9)}") for i in range(10)],
                )
        except BaseException as exc:  # reported by the main thread
            errors.append(exc)

    def consume() -> None:
        while not stop.is_set():
            runner.catch_up(database, workspace_id=ws.id, wait_s=5.0)

    appenders = [threading.Thread(target=append, args=(w,)) for w in range(4)]
    consumer = threading.Thread(target=consume)
    consumer.start()
    for t in appenders:
        t.start()
    for t in appenders:
        t.join()
    stop.set()
    consumer.join()
    runner.drain(database, workspace_id=ws.id)
    assert errors == []
    seqs = [s for s, _ in _seqs(database, ws.id)]
    assert len(seqs) == 1000
    with database.read() as session:
        unresolved = session.scalar(
            select(Event.id).where(Event.workspace_id == ws.id, Event.buyer_id.is_(None)).limit(1)
        )
    assert unresolved is None  # the identity stage skipped nothing
    assert (
        sorted(s for _, s, _ in _calls(database, ws.id, "test_recorder")) == seqs
    )  # nor did the buyer stage


def test_an_open_append_holds_back_later_appends_of_its_workspace(real_db) -> None:
    database, ws = real_db
    release, b_done = threading.Event(), threading.Event()

    def slow() -> None:
        batch = event_service.prepare_batch([_track(1, "a")], received_at=utcnow(), max_event_bytes=32 * 1024)
        with database.write() as session:
            event_service.ingest(session=session, workspace_id=ws.id, batch=batch)
            release.wait(30)

    def fast() -> None:
        _ingest(database, ws.id, [_track(2, "b")])
        b_done.set()

    a = threading.Thread(target=slow)
    a.start()
    while True:  # wait until a's transaction has appended (its id drawn, not committed)
        with database.read() as session:
            # a holds its workspace's feed lock while it appends: a try for it fails (and one that succeeds is
            # let go at once). Not any advisory lock in pg_locks: that view is the whole server's, where other
            # databases' tests (another xdist worker's) hold theirs — b then started before a appended.
            if (
                database.dialect == "sqlite"
                or not session.execute(
                    text("SELECT pg_try_advisory_xact_lock(hashtext(:k))"), {"k": f"offerloop.log:{ws.id}"}
                ).scalar()
            ):
                break
    b = threading.Thread(target=fast)
    b.start()
    # b cannot take ids and commit before a: a consumer reading now could otherwise pass a's event by.
    assert not b_done.wait(0.3)
    release.set()
    a.join()
    b.join()
    assert [m for _, m in _seqs(database, ws.id)] == ["m-1", "m-2"]


def test_one_step_runs_every_free_buyer_stage_consumer_of_the_partition(
    db, workspace, test_consumers
) -> None:
    (a,) = _users_in_distinct_partitions(db, workspace.id, 1)
    pipeline_log.set_inline(db, False)
    _ingest(db, workspace.id, [_track(1, a), _track(2, a), _track(3, a)])
    now = utcnow() + timedelta(seconds=1)
    identity = pipeline_log.kind_of("identity")
    while jobs_runner.run_due(db, owner="test", now=now, only=(identity,)):
        pass
    seqs = [s for s, m in _seqs(db, workspace.id) if m.startswith("m-")]
    with db.read() as session:
        buyer_a = support.buyers(session, workspace.id)[a]
    key = pipeline_log.key_of(workspace.id, pipeline_log.partition_of(buyer_a, runner.config.partitions))
    with db.write() as session:  # another worker holds the rewards consumer's row of that partition
        held = session.scalars(select(Job).where(Job.kind == "consumer:rewards", Job.key == key)).one()
        before = held.cursor
        held.lease_owner, held.lease_until = "elsewhere", now + timedelta(hours=1)
        # a consumer with a poisoned event waiting keeps its own row; one whose poison was cleared rides
        row = {j.kind: j for j in session.scalars(select(Job).where(Job.key == key))}
        row["consumer:test_poisoned"].payload = {"seq": seqs[0], "attempts": 1, "error": "x"}
        row["consumer:triggers"].payload = {"seq": seqs[0], "attempts": 1, "error": "x"}
    with db.write() as session:  # cleared (stored as JSON null, not SQL NULL)
        session.scalars(
            select(Job).where(Job.kind == "consumer:triggers", Job.key == key)
        ).one().payload = None

    ran = jobs_runner.run_due(db, owner="test", now=now, only=(pipeline_log.kind_of("features"),), limit=1)
    assert [(r.kind, r.key, r.status) for r in ran] == [("consumer:features", key, "done")]

    def rows() -> dict[str, tuple[int, str, str | None]]:
        with db.read() as session:
            jobs = session.scalars(select(Job).where(Job.key == key, Job.kind.like("consumer:%"))).all()
            # the identity stage's one row per workspace shares the key of partition 0
            return {j.kind: (int(j.cursor or 0), j.state, j.lease_owner) for j in jobs if j.kind != identity}

    # One step: features and every other free consumer at its checkpoint; the held row is left alone.
    assert rows() == {
        "consumer:features": (seqs[-1], "done", None),
        "consumer:rewards": (before, "queued", "elsewhere"),
        "consumer:triggers": (seqs[-1], "done", None),
        "consumer:invoices": (seqs[-1], "done", None),
        "consumer:analytics": (seqs[-1], "done", None),
        "consumer:journeys": (seqs[-1], "done", None),
        "consumer:test_recorder": (seqs[-1], "done", None),
        "consumer:test_poisoned": (before, "queued", None),
    }
    assert sorted(s for _, s, _ in _calls(db, workspace.id, "test_recorder") if s in seqs) == seqs
    with db.write() as session:  # the other worker died: its lease runs out and the row is taken over
        session.scalars(
            select(Job).where(Job.kind == "consumer:rewards", Job.key == key)
        ).one().lease_until = now
    _run_all(db, now + timedelta(seconds=1))
    assert rows()["consumer:rewards"] == (seqs[-1], "done", None)
    assert rows()["consumer:test_poisoned"] == (seqs[-1], "done", None)
    assert sorted(s for _, s, _ in _calls(db, workspace.id, "test_recorder") if s in seqs) == seqs


def test_last_in_parts_is_each_partitions_last_event_in_its_own_range(db, workspace) -> None:
    users = _users_in_distinct_partitions(db, workspace.id, 3)
    _ingest(db, workspace.id, [_track(i, users[i % 3]) for i in range(9)])
    with db.read() as session:
        log = [
            (int(s), int(p))
            for s, p in session.execute(
                select(Event.id, Event.part).where(
                    Event.workspace_id == workspace.id, Event.part.is_not(None)
                )
            )
        ]
        parts = sorted({p for _, p in log})
        seqs = {p: sorted(s for s, q in log if q == p) for p in parts}
        buyers = support.buyers(session, workspace.id)
        # the chosen users' partitions: each holds their three events (others may hold one identify)
        a, b, c = (pipeline_log.partition_of(buyers[u], runner.config.partitions) for u in users)
        # a: past its third-to-last event; b: caught up; c: from the start; 99 holds no events
        after = {a: seqs[a][-3], b: seqs[b][-1], c: 0, 99: 0}
        up_to = max(s for s, _ in log) - 1
        got = pipeline_log.last_in_parts(session, workspace.id, after, up_to)
    expected = {}
    for p, low in after.items():
        inside = [s for s in seqs.get(p, []) if low < s <= up_to]
        if inside:
            expected[p] = max(inside)
    assert got == expected and a in got and b not in got and c in got and 99 not in got


def test_a_fresh_read_applies_a_backlog_only_until_its_deadline(db, workspace, monkeypatch) -> None:
    pipeline_log.set_inline(db, False)
    _ingest(db, workspace.id, [_track(i, f"u{i % 7}") for i in range(50)])
    monkeypatch.setattr(runner.config, "batch", 10)
    seqs = [s for s, _ in _seqs(db, workspace.id)]

    def identity() -> tuple[int, str]:
        with db.read() as session:
            job = session.scalars(
                select(Job).where(Job.kind == "consumer:identity", Job.workspace_id == workspace.id)
            ).one()
            return int(job.cursor or 0), job.state

    # Past its deadline after one step: that step's progress is committed, the rest is left to workers.
    assert runner.catch_up(db, workspace_id=workspace.id, wait_s=0.0) is False
    assert identity() == (seqs[9], "queued")
    assert runner.catch_up(db, workspace_id=workspace.id, wait_s=0.0) is False
    assert identity() == (seqs[19], "queued")
    runner.drain(db, workspace_id=workspace.id)  # unbounded: everything
    assert identity() == (seqs[49], "done")
    assert runner.catch_up(db, workspace_id=workspace.id, wait_s=0.0) is True


def test_a_busy_buyer_partition_never_loses_the_wake_up_of_an_identity_step(real_db, monkeypatch) -> None:
    """The interleaving that left a partition idle with events pending (two workers on PostgreSQL): a buyer
    step holds its row, so the identity step's wake-up skips it; the buyer step goes idle and rechecks
    while the identity step has not committed. The recheck must wait for it, then queue the row."""
    database, ws = real_db
    if database.dialect != "postgresql":
        pytest.skip("SQLite's one writer orders every step before or after the identity step")
    monkeypatch.setattr(runner.config, "partitions", 8)
    _ingest(database, ws.id, [{"type": "identify", "userId": "a", "messageId": "id-a"}])
    runner.drain(database, workspace_id=ws.id)
    _ingest(database, ws.id, [_track(1, "a")])  # appended; the identity stage has not run
    with database.read() as session:
        buyer = support.buyers(session, ws.id)["a"]
    part = pipeline_log.partition_of(buyer, 8)
    key = pipeline_log.key_of(ws.id, part)
    by_name = {c.name: c for c in registry.consumers()}
    held, skipped, commit_identity = threading.Event(), threading.Event(), threading.Event()

    def buyer_step() -> None:  # a worker's rewards step on the partition: holds the row, then goes idle
        with database.write() as session:
            row = session.scalars(
                select(Job).where(Job.kind == "consumer:rewards", Job.key == key).with_for_update()
            ).one()
            held.set()
            assert skipped.wait(30)
            row.state = "done"

    def identity_step() -> None:  # assigns the event to the partition and bumps it, commits when told
        with database.write() as session:
            job = session.scalars(
                select(Job)
                .where(Job.kind == "consumer:identity", Job.workspace_id == ws.id)
                .with_for_update()
            ).one()
            assert runner.step(session, database, by_name["identity"], job, now=utcnow()) is None
            skipped.set()
            assert commit_identity.wait(30)

    b = threading.Thread(target=buyer_step)
    b.start()
    assert held.wait(30)
    i = threading.Thread(target=identity_step)
    i.start()
    b.join(30)
    recheck = threading.Thread(target=runner.recheck, args=(database, [by_name["rewards"]], ws.id, part))
    recheck.start()
    recheck.join(0.3)
    assert recheck.is_alive()  # waiting for the identity step still committing
    commit_identity.set()
    i.join(30)
    recheck.join(30)
    with database.read() as session:
        state = session.scalar(select(Job.state).where(Job.kind == "consumer:rewards", Job.key == key))
    assert state == "queued"


def test_past_its_deadline_a_fresh_read_starts_no_further_partition(db, workspace) -> None:
    users = _users_in_distinct_partitions(db, workspace.id, 5)
    pipeline_log.set_inline(db, False)
    _ingest(db, workspace.id, [_track(i, users[i % 5]) for i in range(20)])
    now = utcnow() + timedelta(seconds=1)
    while jobs_runner.run_due(db, owner="test", now=now, only=(pipeline_log.kind_of("identity"),)):
        pass  # the identity stage is done: five buyer partitions are pending

    def cursors() -> dict[str, int]:
        with db.read() as session:
            return dict(
                session.execute(select(Job.key, Job.cursor).where(Job.kind == "consumer:features")).all()
            )

    before = cursors()
    assert runner.catch_up(db, workspace_id=workspace.id, wait_s=0.0) is False
    moved = [k for k, c in cursors().items() if c != before.get(k)]
    assert len(moved) == 1  # one step (the partition's whole stage), then the deadline stopped it
    runner.drain(db, workspace_id=workspace.id)
    assert len([k for k, c in cursors().items() if c != before.get(k)]) == 5


def test_a_caught_up_workspace_is_told_by_one_statement_and_fresh_read_applies_a_backlog(
    db, workspace, monkeypatch
) -> None:
    monkeypatch.setattr(runner.config, "partitions", 1)
    pipeline_log.set_inline(db, False)
    with db.read() as session:
        assert runner.caught_up(session, workspace.id) is True  # an empty log
    _ingest(db, workspace.id, [_track(i, f"u{i % 3}") for i in range(12)])
    last = _seqs(db, workspace.id)[-1][0]
    with db.read() as session:
        assert runner.caught_up(session, workspace.id) is False
    with runner.fresh_read(db, workspace_id=workspace.id) as session:
        # The backlog was applied before this transaction began: it sees every consumer at the head.
        cursors = {kind: cursor for kind, _, cursor in checkpoints.cursors(session, workspace.id, kinds())}
        assert runner.caught_up(session, workspace.id) is True
    assert set(cursors) == set(kinds()) and set(cursors.values()) == {last}


def test_with_partitions_behind_the_head_caught_up_says_no_and_catch_up_finds_nothing_to_do(
    db, workspace
) -> None:
    users = _users_in_distinct_partitions(db, workspace.id, 2)
    pipeline_log.set_inline(db, False)
    _ingest(db, workspace.id, [_track(1, users[0]), _track(2, users[1])])
    runner.drain(db, workspace_id=workspace.id)
    with db.read() as session:
        # The first user's partition stops at its own event, below the head: the one statement cannot tell
        # it from a pending event, so the request falls back to the partition-by-partition check.
        assert runner.caught_up(session, workspace.id) is False
    generation = queue.generation()
    assert runner.catch_up(db, workspace_id=workspace.id, wait_s=0.0) is True
    assert queue.generation() == generation  # nothing was applied, nothing woken


def test_one_recheck_queues_each_idle_consumer_of_a_step_that_has_events_pending(
    real_db, monkeypatch
) -> None:
    """A buyer step and its riders recheck together (one read of their rows, one look at the log per checkpoint):
    each consumer done with events pending is queued again; one done and caught up stays done."""
    database, ws = real_db
    monkeypatch.setattr(runner.config, "partitions", 8)
    _ingest(database, ws.id, [_track(1, "a")])
    runner.drain(database, workspace_id=ws.id)
    _ingest(database, ws.id, [_track(2, "a")])
    with database.write() as session:
        job = session.scalars(
            select(Job).where(Job.kind == "consumer:identity", Job.workspace_id == ws.id).with_for_update()
        ).one()
        identity = next(c for c in registry.consumers() if c.stage == "identity")
        assert runner.step(session, database, identity, job, now=utcnow()) is None
    with database.read() as session:
        buyer = support.buyers(session, ws.id)["a"]
        head = pipeline_log.head(session, ws.id)
    part = pipeline_log.partition_of(buyer, 8)
    key = pipeline_log.key_of(ws.id, part)
    behind, caught_up = (
        [c for c in registry.consumers() if c.stage == "buyer"][:2],
        [c for c in registry.consumers() if c.stage == "buyer"][2],
    )
    with database.write() as session:  # the identity step queued them; they have gone idle since
        for row in session.scalars(select(Job).where(Job.workspace_id == ws.id, Job.key == key)):
            row.state = "done"
            if row.kind == pipeline_log.kind_of(caught_up.name):
                row.cursor = head

    runner.recheck(database, [*behind, caught_up], ws.id, part)

    with database.read() as session:
        states = dict(
            session.execute(
                select(Job.kind, Job.state).where(Job.workspace_id == ws.id, Job.key == key)
            ).all()
        )
    assert {
        pipeline_log.kind_of(c.name): states[pipeline_log.kind_of(c.name)] for c in [*behind, caught_up]
    } == {
        pipeline_log.kind_of(behind[0].name): "queued",
        pipeline_log.kind_of(behind[1].name): "queued",
        pipeline_log.kind_of(caught_up.name): "done",
    }


def _lags_counted_one_by_one(session: Any, workspace_id: str) -> dict[str, tuple[int, int]]:
    """The formulation ``status.lags`` replaced: a count of the log per consumer and per partition."""

    def count(after: int, part: int | None = None, up_to: int | None = None) -> int:
        query = (
            select(func.count())
            .select_from(Event)
            .where(Event.workspace_id == workspace_id, Event.id > after)
        )
        if part is not None:
            query = query.where(Event.part == part)
        if up_to is not None:
            query = query.where(Event.id <= up_to)
        return int(session.scalar(query) or 0)

    out = {}
    origin = pipeline_log.origin(session, workspace_id)
    for c in registry.consumers():
        rows = session.execute(
            select(Job.key, Job.cursor).where(
                Job.kind == pipeline_log.kind_of(c.name), Job.workspace_id == workspace_id
            )
        ).all()
        cursors = {int(k.rsplit(":", 1)[1]): int(v or 0) for k, v in rows}
        if c.stage == "identity":
            cursor = cursors.get(pipeline_log.IDENTITY_PART, origin)
            out[c.name] = (cursor, count(cursor))
            continue
        gate = runner.gate(session, c, workspace_id)
        gate = origin if gate is None else gate
        lag, checkpoint = count(gate), gate
        for part, cursor in cursors.items():
            behind = count(cursor, part=part, up_to=gate)
            if behind:
                lag, checkpoint = lag + behind, min(checkpoint, cursor)
        out[c.name] = (checkpoint, lag)
    return out


def test_every_consumers_lag_from_one_count_equals_counting_each_consumer_and_partition(
    real_db, monkeypatch
) -> None:
    """``/metrics`` and the pipeline page count the log once per workspace (by partition and between the
    checkpoints), not once per consumer and partition: the same figures, over seeded random checkpoints."""
    database, ws = real_db
    monkeypatch.setattr(runner.config, "partitions", 8)
    _ingest(database, ws.id, [_track(i, f"u{i % 7}") for i in range(40)])
    runner.drain(database, workspace_id=ws.id)
    _ingest(database, ws.id, [_track(100 + i, f"u{i % 9}") for i in range(30)])  # not through identity yet
    with database.read() as session:
        head = pipeline_log.head(session, ws.id)
        low = pipeline_log.origin(session, ws.id)
    rng = random.Random(5)
    seen_lag = 0
    for _ in range(25):
        with database.write() as session:
            rows = session.scalars(select(Job).where(Job.workspace_id == ws.id, Job.kind.like("consumer:%")))
            for row in rows:
                row.cursor = rng.choice([low, head, rng.randint(low, head)])
        with database.read() as session:
            expected = _lags_counted_one_by_one(session, ws.id)
            assert status.lags(session, ws.id) == expected
        seen_lag += sum(lag for _, lag in expected.values())
    assert seen_lag > 0


def test_a_read_holding_an_idle_partition_never_loses_an_appends_wake_up(real_db, monkeypatch) -> None:
    """A fresh read locks the identity row, finds it already at its target and lets it go; an append that
    committed meanwhile skipped the locked row (SKIP LOCKED). The row must be queued again after the read commits:
    before, it stayed idle with the event pending (CI: a live server's workspace left so, then /readyz 'stuck')."""
    database, ws = real_db
    if database.dialect != "postgresql":
        pytest.skip("SQLite's one writer orders the append before or after the read's transaction")
    _ingest(database, ws.id, [_track(1, "a")])
    runner.drain(database, workspace_id=ws.id)
    with database.read() as session:
        head = pipeline_log.head(session, ws.id)
    locked, appended = threading.Event(), threading.Event()
    original = checkpoints.locked_if_free

    def held(session: Any, workspace_id: str, kind: str, key: str, now: Any) -> Any:
        job = original(session, workspace_id, kind, key, now)
        if job is not None and kind == "consumer:identity" and workspace_id == ws.id:
            locked.set()
            assert appended.wait(30)
        return job

    monkeypatch.setattr(checkpoints, "locked_if_free", held)
    identity = next(c for c in registry.consumers() if c.stage == "identity")
    reader = threading.Thread(
        target=runner._advance,
        args=(database, identity, ws.id, pipeline_log.IDENTITY_PART, head, time.monotonic() + 30),
    )
    reader.start()
    assert locked.wait(30)
    _ingest(database, ws.id, [_track(2, "a")])  # its wake-up skips the row the read holds
    appended.set()
    reader.join(30)
    with database.read() as session:
        state, cursor = session.execute(
            select(Job.state, Job.cursor).where(Job.workspace_id == ws.id, Job.kind == "consumer:identity")
        ).one()
    assert (state, cursor) == ("queued", head)
