"""Batch kinds: a claim that finds one due job of a batch kind takes more of them; transactional ones run in
one transaction with a savepoint each, ``register_batch`` handlers answer per job."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import select

from offerloop.db.uow import Database, after_commit
from offerloop.jobs import queue, runner
from offerloop.models.jobs import Job

T0 = datetime(2026, 12, 5, 12, 0, tzinfo=UTC)
calls: list[tuple[str, ...]] = []
woken: list[str] = []


@runner.register("test.tx_batch", batch=3, max_attempts=2, backoff_base_s=10, backoff_cap_s=10)
def _tx(ctx: runner.Context) -> datetime | None:
    assert ctx.session is not None
    calls.append(("tx", ctx.job.key))
    # Work of the job in its transaction: a follow-up job, and a hook for after the commit.
    queue.enqueue(
        ctx.session, kind="test.tx_follow", key=ctx.job.key, run_at=T0 + timedelta(days=1), now=ctx.now
    )
    after_commit(ctx.session, lambda: woken.append(ctx.job.key))
    if ctx.job.key == "bad":
        raise RuntimeError("bad job")
    return ctx.now + timedelta(hours=1) if ctx.job.key == "again" else None


@runner.register("test.tx_follow")
def _follow(ctx: runner.Context) -> datetime | None:
    return None


@runner.register_batch("test.fn_batch", size=4, max_attempts=2, backoff_base_s=10, backoff_cap_s=10)
def _fn(ctx: runner.BatchContext) -> runner.BatchResult:
    keys = tuple(j.key for j in ctx.jobs)
    calls.append(("fn", *keys))
    if "explode" in keys:
        raise RuntimeError("the whole call failed")
    answer: dict[int, datetime | BaseException | None] = {}
    for job in ctx.jobs:
        if job.key.startswith("fail"):
            answer[job.id] = ValueError(f"{job.key} refused")
        elif job.key.startswith("again"):
            answer[job.id] = ctx.now + timedelta(minutes=5)
        elif not job.key.startswith("silent"):
            answer[job.id] = None
    return answer


@pytest.fixture(autouse=True)
def _reset() -> None:
    calls.clear()
    woken.clear()


def _enqueue(db: Database, kind: str, *keys: str) -> None:
    with db.write() as s:
        for key in keys:
            queue.enqueue(s, kind=kind, key=key, now=T0)


def _states(db: Database, kind: str) -> dict[str, tuple[str, int, str | None]]:
    with db.read() as s:
        jobs = s.scalars(select(Job).where(Job.kind == kind))
        return {j.key: (j.state, j.attempts, j.last_error) for j in jobs}


def test_one_claim_takes_a_batch_and_a_failing_job_rolls_back_alone(db: Database) -> None:
    _enqueue(db, "test.tx_batch", "a", "bad", "again", "d")
    ran = runner.run_due(db, owner="w1", now=T0, only=("test.tx_batch",))  # limit 1: the batch fills it
    assert [(r.key, r.status) for r in ran] == [("a", "done"), ("bad", "retrying"), ("again", "again")]
    assert ran[1].error == "RuntimeError: bad job"
    assert calls == [("tx", "a"), ("tx", "bad"), ("tx", "again")]
    # The failing job's follow-up and after-commit hook went with its savepoint; the others' stayed.
    assert sorted(_states(db, "test.tx_follow")) == ["a", "again"]
    assert woken == ["a", "again"]
    states = _states(db, "test.tx_batch")
    assert states["a"] == ("done", 0, None)
    assert states["bad"] == ("queued", 1, "RuntimeError: bad job")
    assert states["again"] == ("queued", 0, None)
    assert states["d"] == ("queued", 0, None)  # beyond the batch size: the next claim's
    ran = runner.run_due(db, owner="w1", now=T0, only=("test.tx_batch",))
    assert [(r.key, r.status) for r in ran] == [("d", "done")]
    ran = runner.run_due(db, owner="w1", now=T0 + timedelta(seconds=13), only=("test.tx_batch",))
    assert [(r.key, r.status) for r in ran] == [("bad", "parked")]


def test_a_batch_handler_answers_per_job(db: Database) -> None:
    _enqueue(db, "test.fn_batch", "ok", "fail-1", "again-1", "silent", "ok-2")
    ran = runner.run_due(db, owner="w1", now=T0, only=("test.fn_batch",))
    assert calls == [("fn", "ok", "fail-1", "again-1", "silent")]  # one call, claim order, four at most
    assert [(r.key, r.status, r.error) for r in ran] == [
        ("ok", "done", None),
        ("fail-1", "retrying", "ValueError: fail-1 refused"),
        ("again-1", "again", None),
        ("silent", "done", None),  # left out of the answer: done
    ]
    states = _states(db, "test.fn_batch")
    assert states["fail-1"] == ("queued", 1, "ValueError: fail-1 refused")
    assert states["again-1"] == ("queued", 0, None)
    assert states["ok-2"] == ("queued", 0, None)
    assert [(r.key, r.status) for r in runner.run_due(db, owner="w1", now=T0, only=("test.fn_batch",))] == [
        ("ok-2", "done")
    ]


def test_a_batch_handler_that_raises_fails_every_job_of_its_call(db: Database) -> None:
    _enqueue(db, "test.fn_batch", "x", "explode")
    ran = runner.run_due(db, owner="w1", now=T0, only=("test.fn_batch",))
    assert [(r.key, r.status, r.error) for r in ran] == [
        ("x", "retrying", "RuntimeError: the whole call failed"),
        ("explode", "retrying", "RuntimeError: the whole call failed"),
    ]
    ran = runner.run_due(db, owner="w1", now=T0 + timedelta(seconds=13), only=("test.fn_batch",))
    assert sorted((r.key, r.status) for r in ran) == [("explode", "parked"), ("x", "parked")]  # backoff order


def test_a_batch_whose_lease_was_taken_over_is_lost_not_finished(db: Database) -> None:
    _enqueue(db, "test.fn_batch", "ok")

    @runner.register_batch("test.fn_stolen", size=2)
    def _stolen(ctx: runner.BatchContext) -> runner.BatchResult:
        with ctx.db.write() as s:  # another worker takes the jobs over meanwhile
            for job in s.scalars(select(Job).where(Job.id.in_([j.id for j in ctx.jobs]))):
                job.lease_owner = "w2"
        return {j.id: None for j in ctx.jobs}

    _enqueue(db, "test.fn_stolen", "s1", "s2")
    ran = runner.run_due(db, owner="w1", now=T0, only=("test.fn_stolen",))
    assert [(r.key, r.status) for r in ran] == [("s1", "lost"), ("s2", "lost")]
    assert _states(db, "test.fn_stolen") == {"s1": ("queued", 0, None), "s2": ("queued", 0, None)}


def test_batch_registration_is_checked() -> None:
    with pytest.raises(ValueError, match="transactional"):
        runner.register("test.bad_batch", transactional=False, batch=5)
    with pytest.raises(ValueError, match="at least one"):
        runner.register_batch("test.bad_size", size=0)


prepared: list[tuple[str, ...]] = []


def _read_ahead(session: object, jobs: tuple[Job, ...], deps: object) -> None:
    prepared.append(tuple(j.key for j in jobs))
    if "poison" in prepared[-1]:
        raise RuntimeError("read-ahead broke")


@runner.register("test.prepared", batch=3, prepare=_read_ahead)
def _prepared(ctx: runner.Context) -> datetime | None:
    calls.append(("prepared", ctx.job.key))
    return None


def test_a_batch_kind_reads_ahead_once_for_its_held_jobs_and_runs_even_if_that_fails(db: Database) -> None:
    prepared.clear()
    _enqueue(db, "test.prepared", "p1", "p2", "p3", "p4")
    ran = runner.run_due(db, owner="w1", now=T0, only=("test.prepared",))
    assert [(r.key, r.status) for r in ran] == [("p1", "done"), ("p2", "done"), ("p3", "done")]
    assert prepared == [("p1", "p2", "p3")]  # once, before the first job, with every held job
    assert calls == [("prepared", "p1"), ("prepared", "p2"), ("prepared", "p3")]

    prepared.clear()
    calls.clear()
    _enqueue(db, "test.prepared", "poison", "p5")
    ran = runner.run_due(db, owner="w1", now=T0, only=("test.prepared",))
    # p4 was left from the first claim; the read-ahead failing costs nothing but the read-ahead
    assert sorted((r.key, r.status) for r in ran) == [("p4", "done"), ("p5", "done"), ("poison", "done")]
    assert len(prepared) == 1 and sorted(prepared[0]) == ["p4", "p5", "poison"]
    assert _states(db, "test.prepared")["poison"] == ("done", 0, None)
