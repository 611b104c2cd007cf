"""offerloop evaluate scores out of sample (issue 9, item 9): a model learned on pure-noise rewards looks
good when scored on the decisions it learned from, and is reported at the noise level."""

from __future__ import annotations

import itertools
import random
from datetime import timedelta

import pytest
from sqlalchemy import select
from typer.testing import CliRunner

from offerloop.core.clock import utcnow
from offerloop.decisions import evaluation, repository
from offerloop.decisions import service as decisions_service
from offerloop.decisions.schemas import ActionIn, DecideRequest
from offerloop.ml.base import load_policy
from offerloop.models import Decision
from offerloop.workspaces import service as workspace_service

ACTIONS = [
    ActionIn(key=f"a{i}", kind="lesson", title=f"Lesson {i}", priority=10 - i,
             outcome={"event": "Lesson Completed", "match_property": "lesson_id", "window_days": 7})
    for i in range(4)
]  # fmt: skip
RATE = 0.3  # every action pays with this probability, whoever the buyer: no policy can beat any other


@pytest.fixture(autouse=True)
def _seeded_ids(monkeypatch):
    # decide() seeds its exploration draw with the decision id: fixed ids make the logged actions fixed.
    counter = itertools.count()
    monkeypatch.setattr(decisions_service, "new_id", lambda prefix: f"{prefix}_{next(counter):026d}")


def _round(session, workspace_id, tag, at, n, rng):
    """n decisions at time ``at`` for n never-seen buyers (each with its own id feature), noise rewards."""
    for i in range(n):
        out = decisions_service.decide(
            session=session, workspace_id=workspace_id, buyer_id=None, consent_personalization=None,
            request=DecideRequest(anonymous_id=f"{tag}{i}", placement="home", context={"visitor": f"{tag}{i}"}),
            holdout_share=0.0, now=at + timedelta(seconds=i),
        )  # fmt: skip
        session.flush()
        d = session.get(Decision, out.decision_id)
        assert d is not None
        d.reward = 1.0 if rng.random() < RATE else 0.0
    session.flush()


def _learn_at(session, workspace_id, at):
    """Learn now, but date the snapshot and the learned decisions at ``at`` (the simulated clock)."""
    result = decisions_service.learn(session=session, workspace_id=workspace_id, placement="home")
    snap = repository.snapshot(session, workspace_id, "home", result["version"])
    assert snap is not None
    snap.created_at = at
    for d in session.scalars(select(Decision).where(Decision.workspace_id == workspace_id)):
        if d.learned_at is not None and d.learned_at > at:
            d.learned_at = at
    session.flush()
    return result["version"]


def _noise_log(session, workspace_id):
    rng = random.Random(11)
    t0 = utcnow() - timedelta(days=30)
    decisions_service.upsert_actions(session=session, workspace_id=workspace_id, actions=ACTIONS)
    _round(session, workspace_id, "w1-", t0, 300, rng)  # cold start: uniform, propensity 1/4
    assert _learn_at(session, workspace_id, t0 + timedelta(days=1)) == 1
    _round(session, workspace_id, "w2-", t0 + timedelta(days=2), 300, rng)  # served by v1
    assert _learn_at(session, workspace_id, t0 + timedelta(days=3)) == 2  # v2 learned week 2 as well
    return t0


def test_model_learned_on_noise_is_scored_out_of_sample(db, workspace):
    with db.write() as session:
        t0 = _noise_log(session, workspace.id)
        report = decisions_service.evaluate(session=session, workspace_id=workspace.id, placement="home")
        week2 = report_since = decisions_service.evaluate(
            session=session, workspace_id=workspace.id, placement="home", since=t0 + timedelta(days=2)
        )
        # The old way: the latest snapshot (v2) on every rewarded decision, all of which it learned from.
        rows = [r for r in _rows(session, workspace.id)]
        v2 = load_policy(repository.snapshot(session, workspace.id, "home", 2).payload)  # type: ignore[union-attr]
        in_sample = evaluation.estimate(
            rows, evaluation.progressive_model([("home", 2)] * len(rows), lambda _: v2)
        )
        mean_reward = sum(r.reward for r in rows) / len(rows)

    assert report["decisions"] == 600
    assert report["method"] == "out-of-sample: progressive validation over 600 decisions"
    model = report["policies"]["model"]
    # Week 1 came before any snapshot: only week 2 is scored, each decision by v1 (learned from week 1).
    assert (model["scored"], model["snapshots"]) == (300, {"home v1": 300})
    assert report["policies"]["rules_only"]["scored"] == 600
    assert week2["decisions"] == 300 and week2["policies"]["model"]["scored"] == 300
    assert report_since["policies"]["model"]["snapshots"] == {"home v1": 300}

    # In sample, memorising each visitor's noise looks like a large lift; out of sample there is none.
    assert in_sample is not None
    assert in_sample["snips"]["value"] - mean_reward > 0.2
    out = model["snips"]
    assert abs(out["value"] - mean_reward) < 0.06
    assert out["ci_low"] < mean_reward < out["ci_high"]
    pop = report["policies"]["popularity"]["snips"]
    assert pop["ci_low"] < mean_reward < pop["ci_high"]


def _rows(session, workspace_id):
    decisions = repository.decisions_for_evaluation(session, workspace_id, "home")
    return [
        evaluation.LoggedRow(
            context={k: v for k, v in d.context.items() if k != "_outcome"},
            actions=[decisions_service.ModelAction(id=c["id"], features=c["features"]) for c in d.candidates],
            chosen=d.chosen_index,
            propensity=d.propensity,
            reward=d.reward,
            policy=d.policy,
            holdout=d.holdout,
            persona=d.persona,
            model_version=d.model_version,
        )
        for d in decisions
    ]


def test_a_snapshot_never_scores_a_decision_it_learned(db, workspace):
    """A decision dated before a snapshot but learned into it (a late import) is not scored by it."""
    with db.write() as session:
        t0 = _noise_log(session, workspace.id)
        # Back-date v1 after week 2's decisions: by time alone v1 would now score them...
        snap = repository.snapshot(session, workspace.id, "home", 1)
        assert snap is not None
        snap.created_at = t0 + timedelta(days=2, hours=1)
        # ...but week 2 was learned (into v2) after v1 existed, so v1 is still "before" it; and week 1,
        # learned into v1, is never scored by v1 or v2.
        report = decisions_service.evaluate(session=session, workspace_id=workspace.id, placement="home")
    assert report["policies"]["model"]["snapshots"] == {"home v1": 300}
    assert report["policies"]["model"]["scored"] == 300


@pytest.mark.parametrize("as_json", [False, True])
def test_evaluate_cli_says_out_of_sample(tmp_path, monkeypatch, as_json):
    from offerloop.cli.common import database
    from offerloop.cli.main import app
    from offerloop.config import Settings

    url = f"sqlite:///{tmp_path / 'oos.db'}"
    monkeypatch.setenv("OFFERLOOP_DATABASE_URL", url)
    with database(Settings(database_url=url)) as db, db.write() as session:
        ws = workspace_service.create_workspace(session=session, name="oos")
        _noise_log(session, ws.id)
    args = ["evaluate", "-w", ws.id, "--placement", "home"] + (["--json"] if as_json else [])
    result = CliRunner().invoke(app, args, catch_exceptions=False)
    assert result.exit_code == 0, result.stdout
    assert "out-of-sample: progressive validation over 600 decisions" in result.stdout
    if not as_json:
        assert "scored by snapshots: home v1 (300)" in result.stdout
        # like-for-like: the hint names the first decision the model was scored on (week 2's first)
        hint = next(line for line in result.stdout.splitlines() if "--since" in line)
        since = hint.split("--since ")[1]
        again = CliRunner().invoke(app, [*args, "--since", since], catch_exceptions=False)
        assert "progressive validation over 300 decisions" in again.stdout
        assert "--since" not in again.stdout
        lines = {line.split()[0]: line.split() for line in result.stdout.splitlines() if line.strip()}
        # policy, scored, matched, rewarded, ESS
        assert lines["model"][1] == "300"
        assert lines["rules_only"][1] == "600"
        assert "in-sample" not in result.stdout


def test_the_online_lift_compares_holdout_and_model_over_the_same_period(db, workspace):
    """Rewards jump from 0 to 1 for everyone after the first snapshot (a launch, a season): the model is no
    better than the holdout, so no lift may be claimed. Comparing with the cold start's holdout showed one."""

    def run(tag, at, n, reward):
        for i in range(n):
            out = decisions_service.decide(
                session=session, workspace_id=workspace.id, buyer_id=None, consent_personalization=None,
                request=DecideRequest(anonymous_id=f"{tag}{i}", placement="home"), holdout_share=0.5,
                now=at + timedelta(seconds=i),
            )  # fmt: skip
            session.flush()
            d = session.get(Decision, out.decision_id)
            assert d is not None
            d.reward = reward
        session.flush()

    with db.write() as session:
        t0 = utcnow() - timedelta(days=30)
        decisions_service.upsert_actions(session=session, workspace_id=workspace.id, actions=ACTIONS)
        run("cold-", t0, 120, 0.0)
        assert _learn_at(session, workspace.id, t0 + timedelta(days=1)) == 1
        run("live-", t0 + timedelta(days=2), 120, 1.0)
        online = decisions_service.evaluate(session=session, workspace_id=workspace.id, placement="home")[
            "online"
        ]
        live_holdout = sum(
            1 for d in session.scalars(select(Decision).where(Decision.workspace_id == workspace.id))
            if d.holdout and d.created_at >= t0 + timedelta(days=2)
        )  # fmt: skip
    overall = online["overall"]
    assert overall["holdout_n"] == live_holdout and overall["holdout"] == 1.0 and overall["model"] == 1.0
    assert overall["lift"] == 0.0 and overall["verdict"] == "not enough data"
