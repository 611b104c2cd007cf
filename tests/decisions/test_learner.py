"""Learning as jobs: windows close at their end, each placement with new rewards learns once per interval."""

from __future__ import annotations

from datetime import timedelta

from offerloop.core.clock import utcnow
from offerloop.decisions import service as decisions_service
from offerloop.decisions import tasks  # noqa: F401  (registers the learning jobs)
from offerloop.decisions.schemas import ActionIn, DecideRequest
from offerloop.jobs import queue, runner
from offerloop.models import Decision

LEARNING = (decisions_service.CLOSE_KIND, decisions_service.LEARN_KIND)


def _run(db, now):
    """Every learning job due at ``now``: (kind, key, status) of each run."""
    ran = []
    while batch := runner.run_due(db, owner="test", now=now, only=LEARNING, limit=10):
        ran += batch
    return ran


def _learned(db, workspace_id: str, placement: str) -> int:
    with db.read() as session:
        return decisions_service.current_policy(session, workspace_id, placement)[0]


ACTIONS = [ActionIn(key=f"l{i}", kind="lesson", title=f"L{i}", outcome={"event": "Lesson Completed", "window_days": 1,
                                                                         "default_reward": 0.0}) for i in range(3)]  # fmt: skip


def test_a_pass_closes_windows_and_trains_each_placement_once(db, workspace):
    with db.write() as session:
        decisions_service.upsert_actions(session=session, workspace_id=workspace.id, actions=ACTIONS)
        for placement in ("home", "checkout"):
            for i in range(4):
                out = decisions_service.decide(
                    session=session, workspace_id=workspace.id, buyer_id=None, consent_personalization=None,
                    request=DecideRequest(anonymous_id=f"{placement}-{i}", placement=placement), holdout_share=0.0,
                    now=utcnow() - timedelta(days=3),
                )  # fmt: skip
                session.flush()
                if i < 2:  # two rewarded now; the other two only when their window closes
                    d = session.get(Decision, out.decision_id)
                    assert d is not None
                    d.reward, d.reward_at, d.reward_source = 1.0, utcnow(), "test"
    now = utcnow()
    closed = [r for r in _run(db, now) if r.workspace_id == workspace.id]
    assert [(r.kind, r.key, r.status) for r in closed] == [
        (decisions_service.CLOSE_KIND, workspace.id, "done")  # every window closed: none left to wait for
    ]
    # learning waits one interval after the rewards (on PostgreSQL, live-server tests leave other workspaces' jobs)
    assert [r for r in _run(db, now + timedelta(seconds=59)) if r.workspace_id == workspace.id] == []
    learned = [r for r in _run(db, now + timedelta(seconds=61)) if r.workspace_id == workspace.id]
    assert sorted((r.key, r.status) for r in learned) == [
        (f"{workspace.id}:checkout", "done"),
        (f"{workspace.id}:home", "done"),
    ]
    assert [_learned(db, workspace.id, p) for p in ("checkout", "home")] == [1, 1]
    with db.read() as session:
        assert decisions_service.learn(session=session, workspace_id=workspace.id, placement="home") == {
            "version": 1, "learned": 0,  # all 4 (2 rewarded, 2 closed with the default) were learned
        }  # fmt: skip
    assert [r for r in _run(db, now + timedelta(days=30)) if r.workspace_id == workspace.id] == []


SALES = [ActionIn(key=f"s{i}", kind="offer", title=f"S{i}", outcome={"event": "Order Completed", "window_days": 1,
                  "value_property": "total"}) for i in range(2)]  # fmt: skip


def _decide(session, workspace_id: str, placement: str, anonymous_id: str, buyer_id: str | None = None):
    out = decisions_service.decide(
        session=session, workspace_id=workspace_id, buyer_id=buyer_id, consent_personalization=None,
        request=DecideRequest(anonymous_id=anonymous_id, placement=placement), holdout_share=0.0,
        now=utcnow() - timedelta(hours=1),
    )  # fmt: skip
    session.flush()
    return session.get(Decision, out.decision_id)


def test_a_reward_that_is_not_a_finite_number_is_not_a_reward(db, workspace):
    """One buyer's "inf", "nan" or "1e999" total must not become a reward (it made every later learning pass
    and every evaluation fail); a finite total still is one."""
    with db.write() as session:
        decisions_service.upsert_actions(session=session, workspace_id=workspace.id, actions=SALES)
        made = [_decide(session, workspace.id, "shop", f"anon-{i}") for i in range(5)]
        for d in made:
            d.buyer_id = f"buyer-{d.id}"
        session.flush()
        totals = ["inf", "nan", "1e999", "-inf", "42.5"]
        events = [(d.buyer_id, "Order Completed", {"total": t}, utcnow(), f"m{i}")
                  for i, (d, t) in enumerate(zip(made, totals, strict=True))]  # fmt: skip
        assert decisions_service.on_events(session=session, workspace_id=workspace.id, events=events) == 1
        assert [d.reward for d in made] == [None, None, None, None, 42.5]


def test_a_stored_poisoned_reward_or_a_failing_placement_never_stops_the_others(db, workspace, monkeypatch):
    with db.write() as session:
        decisions_service.upsert_actions(session=session, workspace_id=workspace.id, actions=ACTIONS)
        for placement in ("home", "checkout", "cart"):
            for i in range(2):
                d = _decide(session, workspace.id, placement, f"{placement}-{i}")
                # "home" holds a value stored before rewards were checked
                d.reward = float("inf") if placement == "home" and i == 0 else 1.0
                d.reward_at, d.reward_source = utcnow(), "test"
    real_learn = decisions_service.learn

    def failing(*, session, workspace_id, placement, **kw):
        if placement == "cart":
            raise RuntimeError("injected failure")
        return real_learn(session=session, workspace_id=workspace_id, placement=placement, **kw)

    monkeypatch.setattr(decisions_service, "learn", failing)
    now = utcnow()
    with db.write() as session:  # the rewards above were set by hand: queue what their arrival queues
        for placement in ("home", "checkout", "cart"):
            queue.enqueue(session, kind=decisions_service.LEARN_KIND, workspace_id=workspace.id,
                          key=decisions_service.learn_key(workspace.id, placement), now=now)  # fmt: skip
    ran = [r for r in _run(db, now) if r.workspace_id == workspace.id]
    assert sorted((r.key.split(":")[1], r.status) for r in ran) == [
        ("cart", "retrying"),
        ("checkout", "done"),
        ("home", "done"),
    ]
    assert [_learned(db, workspace.id, p) for p in ("cart", "checkout", "home")] == [0, 1, 1]
    with db.read() as session:
        report = decisions_service.evaluate(session=session, workspace_id=workspace.id, placement="home")
    assert report["decisions"] == 1  # the poisoned row is left out, never a 500


def test_model_versions_newest_first_without_payload(db, workspace, other_workspace) -> None:
    with db.write() as session:
        for placement, note in (("home", "a"), ("email", "b"), ("home", "c")):
            decisions_service.publish(session=session, workspace_id=workspace.id, placement=placement,
                                      policy=decisions_service.new_policy(), rewards_learned=7, note=note)  # fmt: skip
        decisions_service.publish(session=session, workspace_id=other_workspace.id, placement="home",
                                  policy=decisions_service.new_policy())  # fmt: skip
    with db.read() as session:
        got = decisions_service.model_versions(session=session, workspace_id=workspace.id, limit=2)
        everything = decisions_service.model_versions(session=session, workspace_id=workspace.id)
    assert [(v.placement, v.version, v.note, v.rewards_learned) for v in got] == [
        ("home", 2, "c", 7),
        ("email", 1, "b", 7),
    ]
    assert [(v.placement, v.version) for v in everything] == [("home", 2), ("email", 1), ("home", 1)]
