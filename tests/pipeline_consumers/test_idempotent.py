"""Consumers see events again (a replayed batch, a parked event, a merged buyer's events read late in
another partition) and nothing counts twice; a failing trigger fails its own event only."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from sqlalchemy import func, select
from tests.assembly.test_artifacts_api import POLICY, setup_workspace
from tests.conftest import bearer, msg
from tests.pipeline_consumers import harness
from tests.pipeline_consumers.test_equivalence import START, configure, open_decisions, snapshot

from offerloop.assembly import service as assembly_service
from offerloop.db.uow import Database
from offerloop.features import service as features_service
from offerloop.models import Artifact, BuyerFeatures, BuyerPersona, Decision, Merge, Touchpoint
from offerloop.pipeline import runner
from offerloop.pipeline.log import partition_of
from offerloop.sim.audience import Audience

AT = datetime(2026, 11, 1, 10, 0, tzinfo=UTC)


def test_partition_of_is_stable_and_in_range():
    assert [partition_of(f"byr_{i}", 8) for i in range(8)] == [partition_of(f"byr_{i}", 8) for i in range(8)]
    assert {partition_of(f"byr_{i}", 8) for i in range(200)} == set(range(8))
    # blake2b, not hash(): the same number in every process (pinned so a change of function is noticed)
    assert [partition_of(b, 8) for b in ("byr_a", "byr_b", "byr_c")] == [0, 1, 7]


def test_replaying_the_whole_log_changes_nothing(db: Database, workspace):
    ws = workspace.id
    with db.write() as session:
        configure(session, ws)
    batches = list(Audience(buyers=20, events=1_200, seed=3, start=START - timedelta(days=365)).batches(100))
    with db.write() as session:
        for i, messages in enumerate(batches):
            harness.append(session, ws, messages, START + timedelta(minutes=i))
            if i == 6:
                harness.process(session, ws)
                open_decisions(session, ws)
    # The rest by the real runner (partitioned by buyer), then every event once more by hand, now that
    # the decisions are open: the state every later replay must leave as it is.
    runner.drain(db, workspace_id=ws)
    with db.write() as session:
        harness.process(session, ws)
    with db.read() as session:
        before = snapshot(session, ws)
        marks = dict(
            session.execute(
                select(BuyerFeatures.buyer_id, BuyerFeatures.applied_seq).where(
                    BuyerFeatures.workspace_id == ws
                )
            ).all()
        )
        stamps = dict(
            session.execute(
                select(BuyerPersona.buyer_id, BuyerPersona.updated_at).where(BuyerPersona.workspace_id == ws)
            ).all()
        )
    assert before["merges"] and before["touchpoints"] and any(r[2] for r in before["rewards"])
    with db.write() as session:
        harness.process(session, ws, batch=333)  # again, from the start, cut differently
    with db.read() as session:
        assert snapshot(session, ws) == before
        assert (
            dict(
                session.execute(
                    select(BuyerFeatures.buyer_id, BuyerFeatures.applied_seq).where(
                        BuyerFeatures.workspace_id == ws
                    )
                ).all()
            )
            == marks
        )
        assert (
            dict(
                session.execute(
                    select(BuyerPersona.buyer_id, BuyerPersona.updated_at).where(
                        BuyerPersona.workspace_id == ws
                    )
                ).all()
            )
            == stamps
        )


def _features(session, ws: str, buyer_id: str) -> dict[str, Any]:
    row = session.scalars(select(BuyerFeatures).where(BuyerFeatures.buyer_id == buyer_id)).one()
    return {"state": row.state, "applied_seq": row.applied_seq, "rebuild": row.rebuild}


@pytest.mark.parametrize("loser_partition_first", [False, True])
def test_a_merged_buyers_events_read_late_in_another_partition_count_once(
    db: Database, workspace, loser_partition_first
):
    ws = workspace.id
    anon = [
        msg(type="track", event="Lesson Completed", anonymousId="anon-1", messageId=f"l{i}") for i in range(3)
    ]
    known = [msg(type="track", event="Lesson Completed", userId="u1", messageId=f"w{i}") for i in range(2)]
    with db.write() as session:
        harness.append(session, ws, anon + known, AT)
        harness.process(session, ws, only=lambda c: c.stage == "identity")
        log = harness.read_log(session, ws)
        loser, winner = log[0].buyer_id, log[3].buyer_id
        assert loser != winner
        # The winner's partition is processed; the loser's partition lags behind.
        harness.stage("buyer")[0].fn(session, ws, [e for e in log if e.buyer_id == winner])
        harness.append(
            session, ws, [msg(type="identify", userId="u1", anonymousId="anon-1", messageId="m")], AT
        )
        harness.process(session, ws, after=log[-1].seq, only=lambda c: c.stage == "identity")
        session.flush()
        assert session.scalar(select(func.count()).select_from(Merge).where(Merge.workspace_id == ws)) == 1
        everything = harness.read_log(session, ws)
        assert {e.buyer_id for e in everything} == {winner}
        merge_event = [e for e in everything if e.message_id == "m"]
        late = [e for e in everything if e.message_id.startswith("l")]  # read now: their buyer is the winner
        apply = harness.stage("buyer")[0].fn
        for part in [late, merge_event] if loser_partition_first else [merge_event, late]:
            apply(session, ws, part)
        apply(session, ws, everything)  # and a replay of all of it
        got = _features(session, ws, winner)
        assert got["state"]["n"] == 6 and got["applied_seq"] == everything[-1].seq and not got["rebuild"]
        assert session.scalars(select(BuyerFeatures).where(BuyerFeatures.buyer_id == loser)).all() == []
        rebuilt = features_service.rebuild(session=session, workspace_id=ws, buyer_ids=[winner])
        assert _features(session, ws, winner)["state"] == got["state"] and winner in rebuilt


def _artifacts(session, ws: str) -> list[str]:
    return sorted(session.scalars(select(Artifact.buyer_id).where(Artifact.workspace_id == ws)))


def _quiz_triggers_a_policy(client, workspace) -> None:
    """The workspace's corpus and a composition policy (no review) triggered by "Quiz Completed"."""
    secret = bearer(workspace.secret_key)
    setup_workspace(client, secret)
    r = client.put("/v1/policies", headers=secret,
                   json={"text": POLICY.replace("{REVIEW}", "never"), "triggers": [{"event": "Quiz Completed"}]})  # fmt: skip
    assert r.status_code == 200, r.text


def test_a_trigger_that_raises_fails_only_its_event(client, db: Database, workspace, monkeypatch):
    ws = workspace.id
    _quiz_triggers_a_policy(client, workspace)
    people = ["ann", "bob", "cat"]
    with db.write() as session:
        harness.append(session, ws, [msg(type="identify", userId=p, messageId=f"{p}-id", traits={"name": p}) for p in people], AT)  # fmt: skip
        harness.append(session, ws, [msg(type="track", event="Quiz Completed", userId=p, messageId=f"{p}-q") for p in people], AT + timedelta(seconds=1))  # fmt: skip
        harness.process(session, ws, only=lambda c: c.stage == "identity")
    with db.read() as session:
        log = harness.read_log(session, ws)
    bob = next(e for e in log if e.message_id == "bob-q")
    compose = assembly_service._compose

    def buggy(session, workspace_id, policy, buyer_id, *args):  # type: ignore[no-untyped-def]
        if buyer_id == bob.buyer_id:
            raise RuntimeError("composer bug")
        return compose(session, workspace_id, policy, buyer_id, *args)

    monkeypatch.setattr(assembly_service, "_compose", buggy)
    triggers = next(c for c in harness.stage("buyer") if c.name == "triggers")
    with pytest.raises(assembly_service.TriggerFailed) as failed, db.write() as session:
        triggers.fn(session, ws, log)
    assert failed.value.seq == bob.seq and isinstance(failed.value.__cause__, RuntimeError)
    # What the runner does next: the batch again, event by event; the one that raises is parked.
    parked = []
    for event in log:
        try:
            with db.write() as session:
                triggers.fn(session, ws, [event])
        except assembly_service.TriggerFailed as exc:
            parked.append(exc.seq)
    with db.read() as session:
        others = sorted(e.buyer_id for e in log if e.message_id in ("ann-q", "cat-q"))
        assert parked == [bob.seq] and _artifacts(session, ws) == others
    monkeypatch.setattr(assembly_service, "_compose", compose)
    for _ in range(2):  # the parked event replayed once fixed, then seen again: one artifact
        with db.write() as session:
            triggers.fn(session, ws, log)
    with db.read() as session:
        assert _artifacts(session, ws) == sorted([*others, bob.buyer_id])
        assert (
            session.scalar(select(func.count()).select_from(Touchpoint).where(Touchpoint.workspace_id == ws))
            == 0
        )
        assert (
            session.scalar(select(func.count()).select_from(Decision).where(Decision.workspace_id == ws)) == 0
        )


def test_a_trigger_seen_again_after_its_buyer_merged_fires_once(client, db: Database, workspace):
    """The quiz event made an artifact for the anonymous buyer; the buyer then merged into a known one (events
    repointed to the survivor, the artifact stays the merged-away buyer's): seeing the event again — a replay,
    a late read in another partition — must not make a second deliverable."""
    ws = workspace.id
    _quiz_triggers_a_policy(client, workspace)
    triggers = next(c for c in harness.stage("buyer") if c.name == "triggers")
    with db.write() as session:
        harness.append(
            session, ws, [msg(type="identify", userId="u1", messageId="u1-id", traits={"name": "U"})], AT
        )
        harness.append(session, ws, [msg(type="track", event="Quiz Completed", anonymousId="anon-1", messageId="q")],
                       AT + timedelta(seconds=1))  # fmt: skip
        harness.process(session, ws, only=lambda c: c.stage == "identity")
        quiz = next(e for e in harness.read_log(session, ws) if e.message_id == "q")
        triggers.fn(session, ws, [quiz])
        first = _artifacts(session, ws)
        assert first == [quiz.buyer_id]
        harness.append(session, ws, [msg(type="identify", userId="u1", anonymousId="anon-1", messageId="m")],
                       AT + timedelta(seconds=2))  # fmt: skip
        harness.process(session, ws, after=quiz.seq, only=lambda c: c.stage == "identity")
        session.flush()
        again = next(e for e in harness.read_log(session, ws) if e.message_id == "q")
        assert again.buyer_id != quiz.buyer_id  # repointed to the survivor
        for _ in range(2):
            triggers.fn(session, ws, [again])
        assert _artifacts(session, ws) == first
