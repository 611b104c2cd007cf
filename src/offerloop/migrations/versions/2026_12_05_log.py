"""log: events become the append log (exactly-once index, buyer partition, monthly PG partitions),
parked events and the consumers' origin

Revision ID: log_20261205
Revises: jobs_20261205
Create Date: 2026-12-05 02:10:00
"""

from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

from offerloop.db.types import BigIntPK, UTCDateTime

revision: str = "log_20261205"
down_revision: str | None = "jobs_20261205"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

_COLUMNS = (
    "id, workspace_id, message_id, type, name, buyer_id, user_id, anonymous_id, group_id, previous_id, "
    "timestamp, original_timestamp, sent_at, received_at, properties, traits, context, weight, confidence, "
    "high_signal, suppressed"
)


def _month(year: int, month: int) -> tuple[datetime, datetime]:
    start = datetime(year, month, 1, tzinfo=UTC)
    return start, datetime(year + month // 12, month % 12 + 1, 1, tzinfo=UTC)


def _partition(start: datetime, end: datetime) -> None:
    op.execute(
        f"CREATE TABLE IF NOT EXISTS events_y{start:%Y}m{start:%m} PARTITION OF events "
        f"FOR VALUES FROM ('{start.isoformat()}') TO ('{end.isoformat()}')"
    )


def _partition_postgres() -> None:
    bind = op.get_bind()
    op.execute("ALTER TABLE events RENAME TO events_unpartitioned")
    op.execute("ALTER TABLE events_unpartitioned RENAME CONSTRAINT pk_events TO pk_events_unpartitioned")
    op.execute("ALTER TABLE events_unpartitioned DROP CONSTRAINT uq_events_workspace_id_message_id")
    op.execute(
        "ALTER INDEX ix_events_buyer_id_timestamp RENAME TO ix_events_unpartitioned_buyer_id_timestamp"
    )
    # The id sequence outlives the old table: the log keeps its numbering.
    op.execute("ALTER SEQUENCE events_id_seq OWNED BY NONE")
    op.execute(
        """
        CREATE TABLE events (
            id BIGINT NOT NULL DEFAULT nextval('events_id_seq'),
            workspace_id VARCHAR(40) NOT NULL,
            message_id VARCHAR(255) NOT NULL,
            type VARCHAR(16) NOT NULL,
            name VARCHAR(255),
            buyer_id VARCHAR(40),
            user_id VARCHAR(255),
            anonymous_id VARCHAR(255),
            group_id VARCHAR(255),
            previous_id VARCHAR(255),
            timestamp TIMESTAMP WITH TIME ZONE NOT NULL,
            original_timestamp TIMESTAMP WITH TIME ZONE,
            sent_at TIMESTAMP WITH TIME ZONE,
            received_at TIMESTAMP WITH TIME ZONE NOT NULL,
            properties JSONB,
            traits JSONB,
            context JSONB,
            weight FLOAT NOT NULL,
            confidence FLOAT NOT NULL,
            high_signal BOOLEAN NOT NULL,
            suppressed BOOLEAN NOT NULL,
            part INTEGER,
            CONSTRAINT pk_events PRIMARY KEY (id, received_at),
            CONSTRAINT fk_events_workspace_id_workspaces FOREIGN KEY (workspace_id)
                REFERENCES workspaces (id) ON DELETE CASCADE
        ) PARTITION BY RANGE (received_at)
        """
    )
    now = datetime.now(UTC)
    months = {(now.year, now.month), (now.year + now.month // 12, now.month % 12 + 1)}
    first, last = bind.execute(
        sa.text("SELECT min(received_at), max(received_at) FROM events_unpartitioned")
    ).one()
    if first is not None:
        y, m = first.astimezone(UTC).year, first.astimezone(UTC).month
        while (y, m) <= (last.astimezone(UTC).year, last.astimezone(UTC).month):
            months.add((y, m))
            y, m = y + m // 12, m % 12 + 1
    for y, m in sorted(months):
        _partition(*_month(y, m))
    # A safety net: an append never fails for want of a partition (the monthly job moves such rows out).
    op.execute("CREATE TABLE events_default PARTITION OF events DEFAULT")
    op.execute(f"INSERT INTO events ({_COLUMNS}) SELECT {_COLUMNS} FROM events_unpartitioned")
    op.execute("DROP TABLE events_unpartitioned")
    op.execute("ALTER SEQUENCE events_id_seq OWNED BY events.id")
    op.create_index("ix_events_buyer_id_timestamp", "events", ["buyer_id", "timestamp"])


def upgrade() -> None:
    bind = op.get_bind()
    postgres = bind.dialect.name == "postgresql"
    op.create_table(
        "event_dedup",
        sa.Column("workspace_id", sa.String(40), nullable=False),
        sa.Column("message_id", sa.String(255), nullable=False),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspaces.id"],
            name=op.f("fk_event_dedup_workspace_id_workspaces"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("workspace_id", "message_id", name=op.f("pk_event_dedup")),
    )
    op.execute(
        "INSERT INTO event_dedup (workspace_id, message_id) SELECT workspace_id, message_id FROM events"
    )
    op.create_table(
        "pipeline_origin",
        sa.Column("workspace_id", sa.String(40), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspaces.id"],
            name=op.f("fk_pipeline_origin_workspace_id_workspaces"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("workspace_id", name=op.f("pk_pipeline_origin")),
    )
    # Events stored so far were processed inline when they arrived: consumers start after them.
    op.execute(
        "INSERT INTO pipeline_origin (workspace_id, seq) SELECT workspace_id, max(id) FROM events GROUP BY workspace_id"
    )
    op.create_table(
        "parked_events",
        sa.Column("id", BigIntPK, primary_key=True, autoincrement=True),
        sa.Column("consumer", sa.String(64), nullable=False),
        sa.Column("workspace_id", sa.String(40), nullable=False),
        sa.Column("seq", sa.BigInteger(), nullable=False),
        sa.Column("message_id", sa.String(255), nullable=False),
        sa.Column("error", sa.Text(), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("parked_at", UTCDateTime(), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("resolved_at", UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspaces.id"],
            name=op.f("fk_parked_events_workspace_id_workspaces"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_parked_events")),
        sa.UniqueConstraint(
            "workspace_id", "consumer", "seq", name=op.f("uq_parked_events_workspace_id_consumer_seq")
        ),
    )
    op.create_index(
        op.f("ix_parked_events_workspace_id_status_id"), "parked_events", ["workspace_id", "status", "id"]
    )

    # On PostgreSQL events is partitioned: its key becomes (id, received_at), which a foreign key cannot name.
    with op.batch_alter_table("touchpoints", schema=None) as batch_op:
        batch_op.drop_constraint("fk_touchpoints_event_id_events", type_="foreignkey")
    if postgres:
        _partition_postgres()
    else:
        with op.batch_alter_table("events", schema=None) as batch_op:
            batch_op.drop_constraint("uq_events_workspace_id_message_id", type_="unique")
            batch_op.add_column(sa.Column("part", sa.Integer(), nullable=True))
    op.create_index(op.f("ix_events_workspace_id_id"), "events", ["workspace_id", "id"])
    op.create_index(op.f("ix_events_workspace_id_part_id"), "events", ["workspace_id", "part", "id"])


def downgrade() -> None:
    bind = op.get_bind()
    op.drop_index(op.f("ix_events_workspace_id_part_id"), table_name="events")
    op.drop_index(op.f("ix_events_workspace_id_id"), table_name="events")
    if bind.dialect.name == "postgresql":
        op.execute("ALTER TABLE events RENAME TO events_partitioned")
        op.execute("ALTER TABLE events_partitioned RENAME CONSTRAINT pk_events TO pk_events_partitioned")
        op.execute(
            "ALTER INDEX ix_events_buyer_id_timestamp RENAME TO ix_events_partitioned_buyer_id_timestamp"
        )
        op.execute("ALTER SEQUENCE events_id_seq OWNED BY NONE")
        op.execute(
            "CREATE TABLE events (LIKE events_partitioned INCLUDING DEFAULTS, CONSTRAINT pk_events PRIMARY KEY (id), "
            "CONSTRAINT fk_events_workspace_id_workspaces FOREIGN KEY (workspace_id) REFERENCES workspaces (id) "
            "ON DELETE CASCADE)"
        )
        op.execute(f"INSERT INTO events ({_COLUMNS}) SELECT {_COLUMNS} FROM events_partitioned")
        op.execute("DROP TABLE events_partitioned CASCADE")
        op.execute("ALTER SEQUENCE events_id_seq OWNED BY events.id")
        op.execute("ALTER TABLE events DROP COLUMN part")
        op.create_index("ix_events_buyer_id_timestamp", "events", ["buyer_id", "timestamp"])
        op.create_unique_constraint(
            "uq_events_workspace_id_message_id", "events", ["workspace_id", "message_id"]
        )
    else:
        with op.batch_alter_table("events", schema=None) as batch_op:
            batch_op.drop_column("part")
            batch_op.create_unique_constraint(
                "uq_events_workspace_id_message_id", ["workspace_id", "message_id"]
            )
    with op.batch_alter_table("touchpoints", schema=None) as batch_op:
        batch_op.create_foreign_key(
            "fk_touchpoints_event_id_events", "events", ["event_id"], ["id"], ondelete="CASCADE"
        )
    op.drop_table("parked_events")
    op.drop_table("pipeline_origin")
    op.drop_table("event_dedup")
