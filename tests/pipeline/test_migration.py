"""Existing events migrate into the log: ids kept, messageIds in the exactly-once index, consumers start
after them, and new appends continue the numbering (on PostgreSQL, into monthly partitions)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import Engine, create_engine, text

from offerloop.db import migrate
from offerloop.db.engine import make_engine


@pytest.fixture
def fresh(tmp_path: Path, engine: Engine) -> Iterator[Engine]:
    if engine.dialect.name != "postgresql":
        eng = make_engine(f"sqlite:///{tmp_path / 'old.db'}")
        yield eng
        eng.dispose()
        return
    admin = create_engine(engine.url.set(database="postgres"), isolation_level="AUTOCOMMIT")
    name = f"{engine.url.database}_migration"
    with admin.connect() as conn:
        conn.execute(text(f"DROP DATABASE IF EXISTS {name}"))
        conn.execute(text(f"CREATE DATABASE {name}"))
    eng = make_engine(engine.url.set(database=name).render_as_string(hide_password=False))
    yield eng
    eng.dispose()
    with admin.connect() as conn:
        conn.execute(text(f"DROP DATABASE IF EXISTS {name}"))
    admin.dispose()


def test_existing_events_migrate_into_the_log(fresh: Engine) -> None:
    with fresh.begin() as conn:
        command.upgrade(migrate.alembic_config(connection=conn), "jobs_20261205")
        conn.execute(
            text(
                "INSERT INTO workspaces (id, name, created_at, signal_config_version) VALUES ('ws_a', 'A', :t, 0)"
            ),
            {"t": datetime(2026, 1, 1, tzinfo=UTC)},
        )
        for i, month in enumerate((3, 3, 7), start=1):
            conn.execute(
                text(
                    "INSERT INTO events (workspace_id, message_id, type, buyer_id, timestamp, received_at, weight, confidence, high_signal, suppressed) "
                    "VALUES ('ws_a', :m, 'track', 'b_1', :t, :t, 1.0, 1.0, false, false)"
                ),
                {"m": f"old-{i}", "t": datetime(2026, month, 2, tzinfo=UTC)},
            )
        conn.execute(
            text(
                "INSERT INTO touchpoints (workspace_id, buyer_id, event_id, occurred_at, channel, flags) "
                "VALUES ('ws_a', 'b_1', 1, :t, 'email', '[]')"
            ),
            {"t": datetime(2026, 3, 2, tzinfo=UTC)},
        )
    migrate.upgrade(fresh)
    with fresh.begin() as conn:
        assert conn.execute(text("SELECT id, message_id, buyer_id, part FROM events ORDER BY id")).all() == [
            (1, "old-1", "b_1", None), (2, "old-2", "b_1", None), (3, "old-3", "b_1", None),
        ]  # fmt: skip
        assert conn.execute(text("SELECT workspace_id, message_id FROM event_dedup ORDER BY message_id")).all() == [
            ("ws_a", "old-1"), ("ws_a", "old-2"), ("ws_a", "old-3"),
        ]  # fmt: skip
        assert conn.execute(text("SELECT workspace_id, seq FROM pipeline_origin")).all() == [("ws_a", 3)]
        assert conn.execute(text("SELECT count(*) FROM touchpoints")).scalar() == 1
        conn.execute(
            text(
                "INSERT INTO events (workspace_id, message_id, type, timestamp, received_at, weight, confidence, high_signal, suppressed) "
                "VALUES ('ws_a', 'new-1', 'track', :t, :t, 1.0, 1.0, false, false)"
            ),
            {"t": datetime.now(UTC)},
        )
        assert conn.execute(text("SELECT id FROM events WHERE message_id = 'new-1'")).scalar() == 4
        if fresh.dialect.name == "postgresql":
            parts = dict(
                conn.execute(text("SELECT tableoid::regclass::text, count(*) FROM events GROUP BY 1")).all()
            )
            now = datetime.now(UTC)
            assert parts == {"events_y2026m03": 2, "events_y2026m07": 1, f"events_y{now:%Y}m{now:%m}": 1}


def test_a_workspace_whose_log_is_partitioned_keeps_the_old_count(fresh: Engine) -> None:
    """Servers before the layout migration split every log into 8 buyer partitions: those workspaces keep
    8 (their buyers' pending events stay where they are); a workspace with no partitioned event yet gets
    its count at its first event, from the setting."""
    with fresh.begin() as conn:
        command.upgrade(migrate.alembic_config(connection=conn), "keys_20261205")
        for ws in ("ws_a", "ws_b", "ws_c"):
            conn.execute(
                text(
                    "INSERT INTO workspaces (id, name, created_at, signal_config_version) VALUES (:w, 'W', :t, 0)"
                ),
                {"w": ws, "t": datetime(2026, 1, 1, tzinfo=UTC)},
            )
        for ws, part in (("ws_a", 5), ("ws_b", None)):
            conn.execute(
                text(
                    "INSERT INTO events (workspace_id, message_id, type, buyer_id, part, timestamp, received_at, weight, confidence, high_signal, suppressed) "
                    "VALUES (:w, 'm-1', 'track', 'b_1', :p, :t, :t, 1.0, 1.0, false, false)"
                ),
                {"w": ws, "p": part, "t": datetime(2026, 12, 5, tzinfo=UTC)},
            )
        command.upgrade(migrate.alembic_config(connection=conn), "head")
        rows = dict(conn.execute(text("SELECT workspace_id, partitions FROM pipeline_origin")).all())
    assert rows == {"ws_a": 8}
