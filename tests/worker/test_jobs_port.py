"""Renders, fulfilment and learning on the one jobs mechanism, driven by `run_due` with a fake clock: one job per
version, a dead worker's render taken over once its lease runs out, fulfilment retried then delivered once or
parked where the order shows it, and learning at most once per placement per interval."""

from __future__ import annotations

import threading
import time
from datetime import timedelta

import pytest
from sqlalchemy import delete, event, func, select
from tests.assembly.test_artifacts_api import buyer, setup_workspace
from tests.checkout.test_checkout_flow import allowed, buy, pay, setup

from offerloop.assembly import rendering as assembly_rendering
from offerloop.assembly import service as assembly_service
from offerloop.assembly import tasks as assembly_tasks
from offerloop.checkout import service as checkout_service
from offerloop.checkout import tasks as checkout_tasks  # noqa: F401  (registers the fulfilment job)
from offerloop.core.clock import utcnow
from offerloop.db.uow import Database
from offerloop.decisions import service as decisions_service
from offerloop.decisions import tasks as decisions_tasks  # noqa: F401  (registers the learning jobs)
from offerloop.decisions.schemas import ActionIn, DecideRequest
from offerloop.entitlements import service as entitlements_service
from offerloop.jobs import lease, queue, runner
from offerloop.models import ArtifactFile, ArtifactVersion, Decision, Entitlement, FulfilmentTask
from offerloop.models.jobs import Job

RENDER = assembly_service.RENDER_KIND
FULFIL = checkout_service.FULFIL_KIND


def _jobs(db, kind: str, key: str | None = None) -> list[Job]:
    with db.read() as session:
        query = select(Job).where(Job.kind == kind)
        rows = list(session.scalars(query if key is None else query.where(Job.key == key)))
        for row in rows:
            session.expunge(row)
        return rows


def _artifact(client, secret_headers, write_headers) -> str:
    setup_workspace(client, secret_headers)
    buyer(client, write_headers, "ana", "Ana Lima", "idea", 1, "sell my first template")
    r = client.post(
        "/v1/artifacts", headers=secret_headers, json={"user_id": "ana", "policy": "starter-workbook"}
    )
    assert r.status_code == 202, r.text
    return str(r.json()["id"])


def _files(db, artifact_id: str) -> list[tuple[int, str]]:
    with db.read() as session:
        rows = session.execute(
            select(ArtifactFile.version, ArtifactFile.format).where(ArtifactFile.artifact_id == artifact_id)
        )
        return sorted((v, f) for v, f in rows)


def _version(db, artifact_id: str, number: int) -> ArtifactVersion:
    with db.read() as session:
        row = session.scalars(
            select(ArtifactVersion).where(
                ArtifactVersion.artifact_id == artifact_id, ArtifactVersion.version == number
            )
        ).one()
        session.expunge(row)
        return row


FORMATS = ["email", "html", "markdown", "pdf"]


# -- renders -------------------------------------------------------------------------------------------------


def test_one_render_job_per_version_even_when_enqueued_twice(client, db, secret_headers, write_headers):
    art = _artifact(client, secret_headers, write_headers)
    key = assembly_service.render_key(art, 1)
    with db.write() as session:  # the same version queued again (a retried request, a second trigger)
        queue.enqueue(session, kind=RENDER, key=key, workspace_id=_version(db, art, 1).workspace_id)
    assert [(j.state, j.attempts) for j in _jobs(db, RENDER, key)] == [("queued", 0)]
    assert assembly_service.run_pending(db=db) == [(art, 1, "ready")]
    assert assembly_service.run_pending(db=db) == []
    assert [j.state for j in _jobs(db, RENDER, key)] == ["done"]
    assert _files(db, art) == [(1, f) for f in FORMATS]
    # the job run again over a rendered version is a no-op: nothing rendered, the files untouched
    rendered_at = _version(db, art, 1).rendered_at
    with db.write() as session:
        queue.enqueue(session, kind=RENDER, key=key, workspace_id=_version(db, art, 1).workspace_id)
    assert assembly_service.run_pending(db=db) == []
    assert _version(db, art, 1).rendered_at == rendered_at and _files(db, art) == [(1, f) for f in FORMATS]


def test_a_render_whose_worker_died_is_rendered_once_by_another_worker(
    client, db, secret_headers, write_headers
):
    art = _artifact(client, secret_headers, write_headers)
    t0 = utcnow() + timedelta(seconds=1)
    with db.write() as session:  # worker "dead" claims the job and starts rendering, then is killed
        claimed = lease.claim(
            session, owner="dead", now=t0, lease_s=assembly_tasks.RENDER_LEASE_S, kinds=(RENDER,)
        )
        assert [j.key for j in claimed] == [assembly_service.render_key(art, 1)]
        row = session.scalars(select(ArtifactVersion).where(ArtifactVersion.artifact_id == art)).one()
        row.status = "rendering"
    # while the dead worker's lease runs, nobody else takes the job
    assert (
        assembly_service.run_pending(db=db, now=t0 + timedelta(seconds=assembly_tasks.RENDER_LEASE_S - 1))
        == []
    )
    assert _version(db, art, 1).status == "rendering"
    later = t0 + timedelta(seconds=assembly_tasks.RENDER_LEASE_S + 1)
    assert assembly_service.run_pending(db=db, now=later) == [(art, 1, "ready")]
    assert assembly_service.run_pending(db=db, now=later + timedelta(hours=1)) == []
    [job] = _jobs(db, RENDER, assembly_service.render_key(art, 1))
    assert (job.state, job.lease_owner, job.attempts) == ("done", None, 0)
    assert _files(db, art) == [(1, f) for f in FORMATS]


def test_a_render_that_keeps_failing_parks_and_the_version_shows_it(
    client, db, secret_headers, write_headers, monkeypatch
):
    art = _artifact(client, secret_headers, write_headers)

    def broken(**_: object) -> str:
        raise RuntimeError("renderer unavailable")

    monkeypatch.setattr(assembly_rendering, "render_version", broken)
    now = utcnow()
    for _ in range(assembly_tasks.RENDER_MAX_ATTEMPTS - 1):
        assert assembly_service.run_pending(db=db, now=now) == []
        assert _version(db, art, 1).status == "rendering"  # still being retried
        now += timedelta(hours=1)
    assert assembly_service.run_pending(db=db, now=now) == []
    version = _version(db, art, 1)
    assert (version.status, version.error) == ("failed", "RuntimeError: renderer unavailable")
    [job] = _jobs(db, RENDER, assembly_service.render_key(art, 1))
    assert (job.state, job.attempts) == ("parked", assembly_tasks.RENDER_MAX_ATTEMPTS)


def test_keep_lease_renews_while_the_work_runs(engine):
    db = Database(engine)  # its own connections: the renewing thread and this one work side by side
    key = f"k-{utcnow().timestamp()}"
    with db.write() as session:
        queue.enqueue(session, kind="test.long", key=key)
    t0 = utcnow()
    try:
        with db.write() as session:
            [job] = lease.claim(session, owner="w1", now=t0, lease_s=0.3, kinds=("test.long",))
            session.expunge(job)
        first = job.lease_until
        assert first is not None and job.key == key
        ctx = runner.Context(job=job, now=t0, owner="w1", db=db)
        renewed = threading.Event()
        with runner.keep_lease(ctx, 0.3):
            deadline = time.monotonic() + 10
            while time.monotonic() < deadline and not renewed.is_set():
                [seen] = _jobs(db, "test.long", key)
                if seen.lease_until is not None and seen.lease_until > first:
                    renewed.set()
                renewed.wait(0.02)
        assert renewed.is_set()
    finally:
        with db.write() as session:
            session.execute(delete(Job).where(Job.kind == "test.long", Job.key == key))


# -- fulfilment ----------------------------------------------------------------------------------------------


@pytest.fixture
def api(client, secret_headers):
    client.headers_ = secret_headers
    return client


def _grants(db, workspace_id: str, component: str, ref: str) -> int:
    with db.read() as session:
        query = select(func.count()).where(
            Entitlement.workspace_id == workspace_id,
            Entitlement.component == component,
            Entitlement.ref == ref,
        )
        return int(session.scalar(query) or 0)


def test_fulfilment_failing_twice_then_succeeding_grants_once(
    api, db, workspace, secret_headers, write_headers, monkeypatch
):
    setup(api, secret_headers, write_headers)
    order = buy(api, secret_headers, "pricing-playbook")
    real = entitlements_service.grant
    calls = {"download": 0}

    def flaky(**kw):
        if kw["component"] == "download":
            calls["download"] += 1
            if calls["download"] <= 2:
                raise ConnectionError("storage unavailable")
        return real(**kw)

    monkeypatch.setattr(entitlements_service, "grant", flaky)
    pay(api, secret_headers, order["id"])
    now = utcnow()
    done = checkout_service.run_fulfilment(db=db, now=now)
    assert sorted((c, s) for _, c, s in done) == [
        ("assessment", "done"),
        ("download", "retrying"),
        ("module", "done"),
    ]
    task = {
        t["component"]: t
        for t in api.get(f"/v1/orders/{order['id']}", headers=secret_headers).json()["fulfilment"]
    }
    assert (task["download"]["status"], task["download"]["attempts"]) == ("pending", 1)
    assert task["download"]["last_error"] == "ConnectionError: storage unavailable"
    assert (
        checkout_service.run_fulfilment(db=db, now=now + timedelta(seconds=20)) == []
    )  # backing off (≥ 24 s)
    now += timedelta(seconds=37)  # past the first backoff (30 s ± 20 %)
    assert [s for _, _, s in checkout_service.run_fulfilment(db=db, now=now)] == ["retrying"]
    now += timedelta(seconds=73)  # past the second (60 s ± 20 %)
    assert [(c, s) for _, c, s in checkout_service.run_fulfilment(db=db, now=now)] == [("download", "done")]
    assert checkout_service.run_fulfilment(db=db, now=now + timedelta(days=1)) == []
    assert calls["download"] == 3 and _grants(db, workspace.id, "download", "pricing-playbook-pdf") == 1
    assert allowed(api, secret_headers, "download", "pricing-playbook-pdf")
    task = {
        t["component"]: t
        for t in api.get(f"/v1/orders/{order['id']}", headers=secret_headers).json()["fulfilment"]
    }
    assert (task["download"]["status"], task["download"]["attempts"]) == ("done", 3)


def test_fulfilment_parks_after_max_attempts_the_order_shows_it_and_retry_queues_it_again(
    api, db, secret_headers, write_headers
):
    # launch-workbook's deliverable names a policy that is not loaded here: it fails every time
    setup(api, secret_headers, write_headers)
    order = buy(api, secret_headers, "launch-workbook")
    pay(api, secret_headers, order["id"])
    now = utcnow()
    seen = []
    for _ in range(checkout_service.MAX_ATTEMPTS):
        seen += [s for _, c, s in checkout_service.run_fulfilment(db=db, now=now) if c == "deliverable"]
        now += timedelta(hours=2)  # past any backoff (capped at one hour)
    assert seen == ["retrying"] * (checkout_service.MAX_ATTEMPTS - 1) + ["failed"]
    assert checkout_service.run_fulfilment(db=db, now=now + timedelta(days=30)) == []
    got = api.get(f"/v1/orders/{order['id']}", headers=secret_headers).json()
    assert got["status"] == "paid"
    task = {t["component"]: t for t in got["fulfilment"]}["deliverable"]
    assert (task["status"], task["attempts"]) == ("failed", checkout_service.MAX_ATTEMPTS)
    assert "launch-workbook" in task["last_error"]
    with db.read() as session:
        task_id = session.scalar(
            select(FulfilmentTask.id).where(
                FulfilmentTask.order_id == order["id"], FulfilmentTask.component == "deliverable"
            )
        )
    [job] = _jobs(db, FULFIL, str(task_id))
    assert (job.state, job.attempts) == ("parked", checkout_service.MAX_ATTEMPTS)
    r = api.post(
        f"/v1/orders/{order['id']}/fulfilment/deliverable/launch-workbook/retry", headers=secret_headers
    )
    assert r.status_code == 200 and r.json()["status"] == "pending"
    [job] = _jobs(db, FULFIL, job.key)
    assert (job.state, job.attempts) == ("queued", 0)
    assert [(c, s) for _, c, s in checkout_service.run_fulfilment(db=db)] == [("deliverable", "retrying")]


# -- learning ------------------------------------------------------------------------------------------------

OUTCOME = {"event": "Lesson Completed", "window_days": 1, "default_reward": 0.0}
LESSONS = [ActionIn(key=f"l{i}", kind="lesson", title=f"L{i}", outcome=OUTCOME) for i in range(3)]
LEARNING = (decisions_service.CLOSE_KIND, decisions_service.LEARN_KIND)


def _learning(db, workspace_id: str, now) -> list[tuple[str, str, str]]:
    ran = []
    while batch := runner.run_due(db, owner="learner", now=now, only=LEARNING, limit=10):
        ran += [(r.kind, r.key, r.status) for r in batch if r.workspace_id == workspace_id]
    return ran


def _decide_and_reward(db, workspace_id: str, placement: str, user: str, at) -> None:
    with db.write() as session:
        out = decisions_service.decide(
            session=session, workspace_id=workspace_id, buyer_id=None, consent_personalization=None,
            request=DecideRequest(anonymous_id=user, placement=placement), holdout_share=0.0, now=at,
        )  # fmt: skip
        session.flush()
        decision = session.get(Decision, out.decision_id)
        assert decision is not None
        decision.buyer_id = f"b-{user}"
        session.flush()
        event = (f"b-{user}", "Lesson Completed", {}, at + timedelta(minutes=1), f"m-{user}")
        assert decisions_service.on_events(session=session, workspace_id=workspace_id, events=[event]) == 1


def test_learning_runs_once_per_placement_per_interval(db, workspace):
    ws = workspace.id
    with db.write() as session:
        decisions_service.upsert_actions(session=session, workspace_id=ws, actions=LESSONS)
    t0 = utcnow()
    for i in range(
        3
    ):  # rewards arriving over 30 s: one learn job per placement, due an interval after the first
        _decide_and_reward(db, ws, "home", f"h{i}", t0 + timedelta(seconds=10 * i))
        _decide_and_reward(db, ws, "cart", f"c{i}", t0 + timedelta(seconds=10 * i))
    learn_jobs = [j for j in _jobs(db, decisions_service.LEARN_KIND) if j.workspace_id == ws]
    assert sorted(j.key for j in learn_jobs) == [f"{ws}:cart", f"{ws}:home"]
    assert _learning(db, ws, t0 + timedelta(seconds=30)) == []  # not before the interval is over
    ran = _learning(db, ws, t0 + timedelta(seconds=95))
    assert sorted(ran) == [(decisions_service.LEARN_KIND, f"{ws}:cart", "done"),
                           (decisions_service.LEARN_KIND, f"{ws}:home", "done")]  # fmt: skip
    with db.read() as session:
        assert [decisions_service.current_policy(session, ws, p)[0] for p in ("cart", "home")] == [1, 1]
    assert _learning(db, ws, t0 + timedelta(seconds=200)) == []  # nothing new: nothing runs
    _decide_and_reward(db, ws, "home", "h9", t0 + timedelta(seconds=300))  # a new reward: home again
    assert _learning(db, ws, utcnow() + timedelta(seconds=30)) == []
    ran = _learning(db, ws, utcnow() + timedelta(seconds=61))
    assert ran == [(decisions_service.LEARN_KIND, f"{ws}:home", "done")]
    with db.read() as session:
        assert decisions_service.current_policy(session, ws, "home")[0] == 2


def test_outcome_windows_close_at_their_end_with_one_job_per_workspace(db, workspace):
    ws = workspace.id
    with db.write() as session:
        decisions_service.upsert_actions(session=session, workspace_id=ws, actions=LESSONS)
    t0 = utcnow()
    for i, placement in enumerate(("home", "home", "cart")):  # windows end at t0+1d, +1d 1h, +1d 2h
        with db.write() as session:
            decisions_service.decide(
                session=session, workspace_id=ws, buyer_id=None, consent_personalization=None,
                request=DecideRequest(anonymous_id=f"u{i}", placement=placement), holdout_share=0.0,
                now=t0 + timedelta(hours=i),
            )  # fmt: skip
    [close] = [j for j in _jobs(db, decisions_service.CLOSE_KIND) if j.key == ws]
    first_end = t0 + timedelta(days=1)
    assert (close.state, close.run_at) == ("queued", first_end)
    assert _learning(db, ws, first_end - timedelta(seconds=1)) == []
    # at the first end: that window closes; the job comes back for the next (an interval later at least)
    assert _learning(db, ws, first_end + timedelta(seconds=1)) == [
        (decisions_service.CLOSE_KIND, ws, "again")
    ]
    [close] = _jobs(db, decisions_service.CLOSE_KIND, ws)
    assert (close.state, close.run_at) == ("queued", t0 + timedelta(days=1, hours=1))
    assert [j.key for j in _jobs(db, decisions_service.LEARN_KIND) if j.workspace_id == ws] == [f"{ws}:home"]
    end = t0 + timedelta(days=2)
    assert _learning(
        db, ws, end
    ) == [  # in order of their times: home learns its first reward, then the rest close
        (decisions_service.LEARN_KIND, f"{ws}:home", "done"),
        (decisions_service.CLOSE_KIND, ws, "done"),  # no window left open: the job ends
    ]
    assert sorted(_learning(db, ws, end + timedelta(seconds=61))) == [
        (decisions_service.LEARN_KIND, f"{ws}:cart", "done"),
        (decisions_service.LEARN_KIND, f"{ws}:home", "done"),
    ]
    with db.read() as session:
        assert [decisions_service.current_policy(session, ws, p)[0] for p in ("cart", "home")] == [1, 2]


leases: list[float] = []


@runner.register("test.short", transactional=False, lease_s=7.0)
def _short(ctx: runner.Context) -> None:
    assert ctx.job.lease_until is not None
    leases.append((ctx.job.lease_until - ctx.now).total_seconds())


def test_each_claimed_job_gets_its_own_kinds_lease(db, workspace):
    """A worker running every kind (a 300 s learning lease among them) leases a short job for its own 7 s,
    so a killed worker's short job comes back in seconds, not minutes."""
    now = utcnow()
    with db.write() as session:
        queue.enqueue(session, kind="test.short", key="s", workspace_id=workspace.id, now=now)
    leases.clear()
    ran = runner.run_due(db, owner="w", now=now, only=("test.short", decisions_service.LEARN_KIND))
    assert [(r.key, r.status) for r in ran] == [("s", "done")] and leases == [7.0]


def test_an_idle_pass_only_reads(db, engine):
    """Idle workers poll every half second: with nothing due they must not open a write (SQLite's writer lock)."""
    seen: list[str] = []

    def record(conn, cursor, statement, *args) -> None:
        seen.append(" ".join(statement.split()))

    event.listen(engine, "before_cursor_execute", record)
    try:
        assert runner.run_due(db, owner="idle", now=utcnow(), only=("test.short",)) == []
    finally:
        event.remove(engine, "before_cursor_execute", record)
    statements = [s for s in seen if not s.startswith(("SAVEPOINT", "RELEASE", "ROLLBACK"))]
    assert len(statements) == 1 and statements[0].startswith("SELECT jobs.id FROM jobs WHERE jobs.state = ")
