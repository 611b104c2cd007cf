"""How many buyer partitions a workspace's log has: fixed at its first event, from the setting (by default
one on SQLite, whose single writer gains nothing from more, and eight on PostgreSQL). A later change of the
setting applies to new workspaces only: a buyer's events must all stay in one partition, or its newer
events can be applied before older ones waiting in another and the features watermark skips those."""

from __future__ import annotations

from collections import Counter

from sqlalchemy import select
from tests.conftest import msg

from offerloop.models import BuyerFeatures, Event, PipelineOrigin
from offerloop.pipeline import runner


def _send(client, headers, start: int, n: int) -> None:
    batch = [
        msg(type="track", userId=f"u{i % 40}", event="Lesson Started", messageId=f"m{start + i}")
        for i in range(n)
    ]
    assert client.post("/v1/batch", headers=headers, json={"batch": batch}).status_code == 200


def test_the_count_is_fixed_at_the_first_event_and_a_new_setting_does_not_move_buyers(
    client, db, write_headers, workspace, monkeypatch
) -> None:
    assert runner.config.partitions is None  # the tests run with the default
    expected = 1 if db.dialect == "sqlite" else 8
    _send(client, write_headers, 0, 80)
    with db.read() as session:
        stored = session.scalar(
            select(PipelineOrigin.partitions).where(PipelineOrigin.workspace_id == workspace.id)
        )
        before = dict(
            session.execute(
                select(Event.buyer_id, Event.part).where(Event.workspace_id == workspace.id)
            ).all()
        )
    assert stored == expected
    if expected == 1:
        assert set(before.values()) == {0}
    else:  # 40 random buyer ids: in several of the eight (all in one: a chance of 8 ** -39)
        assert set(before.values()) <= set(range(8)) and len(set(before.values())) > 1

    monkeypatch.setattr(runner.config, "partitions", 3)  # an operator changes the setting
    _send(client, write_headers, 80, 80)
    with db.read() as session:
        rows = session.execute(
            select(Event.buyer_id, Event.part).where(Event.workspace_id == workspace.id)
        ).all()
        folded = dict(
            session.execute(
                select(BuyerFeatures.buyer_id, BuyerFeatures.state).where(
                    BuyerFeatures.workspace_id == workspace.id
                )
            ).all()
        )
    assert all(part == before[buyer] for buyer, part in rows)  # every buyer kept its partition
    per_buyer = Counter(buyer for buyer, _ in rows)
    assert {b: folded[b]["n"] for b in per_buyer} == dict(per_buyer)  # and every event was folded once
