"""delivery: journey versions, journey runs, the outbox, suppressions and per-workspace delivery settings

Revision ID: delivery_20261206
Revises: layout_20261206
Create Date: 2026-12-06 05:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from offerloop.db.types import BigIntPK, JSONType, UTCDateTime

revision: str = "delivery_20261206"
down_revision: str | None = "layout_20261206"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _workspace_fk(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["workspace_id"],
        ["workspaces.id"],
        name=op.f(f"fk_{table}_workspace_id_workspaces"),
        ondelete="CASCADE",
    )


def upgrade() -> None:
    op.create_table(
        "journey_versions",
        sa.Column("id", BigIntPK, primary_key=True, autoincrement=True),
        sa.Column("workspace_id", sa.String(40), nullable=False),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("latest", sa.Boolean(), nullable=False),
        sa.Column("paused", sa.Boolean(), server_default=sa.false(), nullable=False),
        sa.Column("definition", JSONType, nullable=False),
        sa.Column("content_version", sa.String(80), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        _workspace_fk("journey_versions"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_journey_versions")),
        sa.UniqueConstraint(
            "workspace_id", "name", "version", name=op.f("uq_journey_versions_workspace_id_name_version")
        ),
    )
    op.create_index(
        op.f("ix_journey_versions_workspace_id_latest"), "journey_versions", ["workspace_id", "latest"]
    )
    op.create_table(
        "journey_runs",
        sa.Column("id", BigIntPK, primary_key=True, autoincrement=True),
        sa.Column("workspace_id", sa.String(40), nullable=False),
        sa.Column("journey", sa.String(64), nullable=False),
        sa.Column("version", sa.Integer(), nullable=False),
        sa.Column("buyer_id", sa.String(40), nullable=False),
        sa.Column("occurrence", sa.Integer(), nullable=False),
        sa.Column("state", sa.String(12), nullable=False),
        sa.Column("step", sa.String(64), nullable=True),
        sa.Column("due_at", UTCDateTime(), nullable=True),
        sa.Column("context", JSONType, nullable=False),
        sa.Column("trigger_message_id", sa.String(255), nullable=True),
        sa.Column("started_at", UTCDateTime(), nullable=False),
        sa.Column("ended_at", UTCDateTime(), nullable=True),
        sa.Column("end_reason", sa.String(200), nullable=True),
        _workspace_fk("journey_runs"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_journey_runs")),
        sa.UniqueConstraint(
            "workspace_id",
            "journey",
            "buyer_id",
            "occurrence",
            name=op.f("uq_journey_runs_workspace_id_journey_buyer_id_occurrence"),
        ),
    )
    op.create_index(
        op.f("ix_journey_runs_workspace_id_buyer_id_state"),
        "journey_runs",
        ["workspace_id", "buyer_id", "state"],
    )
    op.create_index(
        op.f("ix_journey_runs_workspace_id_journey_state"),
        "journey_runs",
        ["workspace_id", "journey", "state"],
    )
    op.create_table(
        "delivery_outbox",
        sa.Column("id", BigIntPK, primary_key=True, autoincrement=True),
        sa.Column("workspace_id", sa.String(40), nullable=False),
        sa.Column("key", sa.String(255), nullable=False),
        sa.Column("run_id", sa.BigInteger(), nullable=True),
        sa.Column("journey", sa.String(64), nullable=True),
        sa.Column("step", sa.String(64), nullable=True),
        sa.Column("buyer_id", sa.String(40), nullable=False),
        sa.Column("channel", sa.String(12), nullable=False),
        sa.Column("category", sa.String(16), nullable=False),
        sa.Column("status", sa.String(12), nullable=False),
        sa.Column("message_id", sa.String(255), nullable=False),
        sa.Column("recipient", sa.String(320), nullable=True),
        sa.Column("subject", sa.Text(), nullable=True),
        sa.Column("body", JSONType, nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("detail", sa.Text(), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("not_before", UTCDateTime(), nullable=True),
        sa.Column("sent_at", UTCDateTime(), nullable=True),
        sa.Column("read_at", UTCDateTime(), nullable=True),
        _workspace_fk("delivery_outbox"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_delivery_outbox")),
        sa.UniqueConstraint("workspace_id", "key", name=op.f("uq_delivery_outbox_workspace_id_key")),
    )
    op.create_index(
        op.f("ix_delivery_outbox_workspace_id_buyer_id_channel_sent_at"),
        "delivery_outbox", ["workspace_id", "buyer_id", "channel", "sent_at"],
    )  # fmt: skip
    op.create_index(
        op.f("ix_delivery_outbox_workspace_id_status_id"), "delivery_outbox", ["workspace_id", "status", "id"]
    )
    op.create_table(
        "delivery_suppressions",
        sa.Column("id", BigIntPK, primary_key=True, autoincrement=True),
        sa.Column("workspace_id", sa.String(40), nullable=False),
        sa.Column("channel", sa.String(12), nullable=False),
        sa.Column("address", sa.String(320), nullable=False),
        sa.Column("scope", sa.String(12), nullable=False),
        sa.Column("reason", sa.String(200), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        _workspace_fk("delivery_suppressions"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_delivery_suppressions")),
        sa.UniqueConstraint(
            "workspace_id",
            "channel",
            "address",
            name=op.f("uq_delivery_suppressions_workspace_id_channel_address"),
        ),
    )
    op.create_table(
        "delivery_settings",
        sa.Column("workspace_id", sa.String(40), nullable=False),
        sa.Column("settings", JSONType, nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        _workspace_fk("delivery_settings"),
        sa.PrimaryKeyConstraint("workspace_id", name=op.f("pk_delivery_settings")),
    )


def downgrade() -> None:
    for table in (
        "delivery_settings",
        "delivery_suppressions",
        "delivery_outbox",
        "journey_runs",
        "journey_versions",
    ):
        op.drop_table(table)
