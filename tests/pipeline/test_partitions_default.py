"""How many buyer partitions a workspace's log has when the setting is left alone: one on SQLite (its
single writer gains nothing from more, and each partition costs a step), eight on PostgreSQL."""

from __future__ import annotations

from sqlalchemy import select
from tests.conftest import msg

from offerloop.models import Event
from offerloop.pipeline import runner


def test_the_default_follows_the_database_and_the_setting_wins(client, db, write_headers, workspace) -> None:
    assert runner.config.partitions is None  # the tests run with the default
    batch = [msg(type="track", userId=f"u{i}", event="Clicked", messageId=f"m{i}") for i in range(40)]
    assert client.post("/v1/batch", headers=write_headers, json={"batch": batch}).status_code == 200
    with db.read() as session:
        expected = 1 if db.dialect == "sqlite" else 8
        assert runner.partitions_for(session) == expected
        parts = set(session.scalars(select(Event.part).where(Event.workspace_id == workspace.id)))
    if expected == 1:
        assert parts == {0}
    else:  # 40 random buyer ids: in several of the eight (all in one: a chance of 8 ** -39)
        assert parts <= set(range(8)) and len(parts) > 1
    runner.config.partitions = 3
    try:
        with db.read() as session:
            assert runner.partitions_for(session) == 3
    finally:
        runner.config.partitions = None
