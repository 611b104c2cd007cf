"""offerloop evaluate: estimates match an independent computation on the stored log."""

from __future__ import annotations

import statistics

from sqlalchemy import select
from typer.testing import CliRunner

from offerloop.decisions import service as decisions_service
from offerloop.decisions.schemas import ActionIn, DecideRequest
from offerloop.models import Decision
from offerloop.workspaces import service as workspace_service

ACTIONS = [
    ActionIn(
        key=f"a{i}",
        kind="lesson",
        title=f"Lesson {i}",
        priority=10 - i,
        outcome={"event": "Lesson Completed", "match_property": "lesson_id", "window_days": 7},
    )
    for i in range(3)
]


def test_rules_only_estimates_match_a_hand_computation(db, workspace):
    with db.write() as session:
        decisions_service.upsert_actions(session=session, workspace_id=workspace.id, actions=ACTIONS)
        for i in range(60):
            out = decisions_service.decide(
                session=session, workspace_id=workspace.id, buyer_id=None, consent_personalization=None,
                request=DecideRequest(anonymous_id=f"e{i}", placement="home", k=3), holdout_share=0.25,
            )  # fmt: skip
            session.flush()
            d = session.get(Decision, out.decision_id)
            assert d is not None
            # A fixed reward rule: a0 pays 1 on even buyers, a1 pays 0.5, a2 nothing.
            d.reward = {"a0": 1.0 if i % 2 == 0 else 0.0, "a1": 0.5, "a2": 0.0}[d.chosen_key]
        session.flush()
        rows = session.scalars(select(Decision).where(Decision.workspace_id == workspace.id)).all()
        report = decisions_service.evaluate(session=session, workspace_id=workspace.id, placement="home")

    # Rules-only shows the first candidate (a0): weight 1/propensity when a0 was logged, else 0.
    terms = [(d.reward / d.propensity if d.chosen_index == 0 else 0.0) for d in rows]
    weights = [(1 / d.propensity if d.chosen_index == 0 else 0.0) for d in rows]
    rules = report["policies"]["rules_only"]
    assert report["decisions"] == 60
    # matched: decisions that logged the policy's action (a0, the first candidate), and how many paid
    assert rules["scored"] == 60
    assert rules["matched"] == sum(1 for d in rows if d.chosen_index == 0)
    assert rules["matched_rewarded"] == sum(1 for d in rows if d.chosen_index == 0 and d.reward > 0)
    assert rules["effective_sample_size"] == rules["ips"]["effective_sample_size"]
    ess = sum(weights) ** 2 / sum(w * w for w in weights)
    assert rules["enough_data"] is (rules["matched"] >= 30 and ess >= 30)
    assert abs(rules["ips"]["value"] - statistics.fmean(terms)) < 1e-12
    assert abs(rules["snips"]["value"] - sum(terms) / sum(weights)) < 1e-12
    # uniform random: weight (1/3)/propensity on every decision
    rnd = report["policies"]["random"]
    assert (
        abs(rnd["ips"]["value"] - statistics.fmean(d.reward * (1 / 3) / d.propensity for d in rows)) < 1e-12
    )
    # Nothing was learned: the "model" decisions were the cold start's uniform exploration, not a model's,
    # so the online comparison has no model group, no holdout decision made while a model served, and
    # claims nothing.
    assert {d.model_version for d in rows if d.policy == "model"} == {0}
    online = report["online"]["overall"]
    assert (online["holdout_n"], online["model_n"]) == (0, 0)
    assert (online["lift"], online["verdict"]) == (None, "not enough data")
    assert "model" not in report["policies"]  # no snapshot existed before any decision


def test_evaluate_cli_prints_the_table(tmp_path, monkeypatch):
    from offerloop.cli.common import database
    from offerloop.cli.main import app
    from offerloop.config import Settings

    url = f"sqlite:///{tmp_path / 'eval.db'}"
    monkeypatch.setenv("OFFERLOOP_DATABASE_URL", url)
    with database(Settings(database_url=url)) as db, db.write() as session:
        ws = workspace_service.create_workspace(session=session, name="eval")
        decisions_service.upsert_actions(session=session, workspace_id=ws.id, actions=ACTIONS)
        for i in range(10):
            out = decisions_service.decide(
                session=session, workspace_id=ws.id, buyer_id=None, consent_personalization=None,
                request=DecideRequest(anonymous_id=f"c{i}", placement="home"), holdout_share=0.5,
            )  # fmt: skip
            session.flush()
            d = session.get(Decision, out.decision_id)
            assert d is not None
            d.reward = 1.0 if d.chosen_key == "a0" else 0.0
    result = CliRunner().invoke(app, ["evaluate", "-w", ws.id, "--placement", "home"], catch_exceptions=False)
    assert result.exit_code == 0, result.stdout
    assert "10 rewarded decisions in placement home" in result.stdout
    for name in ("rules_only", "random", "popularity", "online lift", "overall"):
        assert name in result.stdout
