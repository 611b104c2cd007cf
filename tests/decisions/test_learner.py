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
