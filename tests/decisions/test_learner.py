"""The in-process learner: closes windows, trains each placement with new rewards, once."""

from __future__ import annotations

from datetime import timedelta

from offerloop.core.clock import utcnow
from offerloop.decisions import service as decisions_service
from offerloop.decisions.schemas import ActionIn, DecideRequest
from offerloop.models import Decision
from offerloop.worker.learner import Learner

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
    learner = Learner(db)
    results = sorted(learner.run_once(), key=lambda r: r["placement"])
    assert [
        (r["workspace_id"], r["placement"], r["learned"], r["version"])
        for r in results
        if r["workspace_id"] == workspace.id
    ] == [
        (workspace.id, "checkout", 4, 1),
        (workspace.id, "home", 4, 1),
    ]
    again = [r for r in learner.run_once() if r["workspace_id"] == workspace.id]
    assert again == []


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
    results = [r for r in Learner(db).run_once() if r["workspace_id"] == workspace.id]
    assert sorted((r["placement"], r["learned"], r["version"]) for r in results) == [
        ("checkout", 2, 1),
        ("home", 2, 1),
    ]
    with db.read() as session:
        report = decisions_service.evaluate(session=session, workspace_id=workspace.id, placement="home")
    assert report["decisions"] == 1  # the poisoned row is left out, never a 500
