"""console: team members (users) of a workspace and their console sessions; indexes for the home page

The console's home counts today's events and active buyers (a covering index on events by workspace and
received time, with the buyer: an index-only range scan, on every monthly partition on PostgreSQL) and
today's new buyers (buyers by workspace and creation time) and today's revenue (paid orders by workspace and
payment time: the analytics reads of a window no longer scan every paid order).

Revision ID: console_20261206
Revises: analytics_20261206
Create Date: 2026-12-06 16:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from offerloop.db.types import UTCDateTime

revision: str = "console_20261206"
down_revision: str | None = "sums_20261206"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "users",
        sa.Column("id", sa.String(40), nullable=False),
        sa.Column("workspace_id", sa.String(40), nullable=False),
        sa.Column("email", sa.String(320), nullable=False),
        sa.Column("role", sa.String(16), nullable=False),
        sa.Column("password_hash", sa.String(255), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("disabled_at", UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspaces.id"],
            ondelete="CASCADE",
            name=op.f("fk_users_workspace_id_workspaces"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_users")),
        sa.UniqueConstraint("workspace_id", "email", name=op.f("uq_users_workspace_id_email")),
    )
    op.create_index(op.f("ix_users_email"), "users", ["email"])
    op.create_table(
        "console_sessions",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("user_id", sa.String(40), nullable=False),
        sa.Column("workspace_id", sa.String(40), nullable=False),
        sa.Column("csrf_token", sa.String(64), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("expires_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["user_id"], ["users.id"], ondelete="CASCADE", name=op.f("fk_console_sessions_user_id_users")
        ),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspaces.id"],
            ondelete="CASCADE",
            name=op.f("fk_console_sessions_workspace_id_workspaces"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_console_sessions")),
    )
    op.create_index(op.f("ix_console_sessions_user_id"), "console_sessions", ["user_id"])

    op.create_index(
        op.f("ix_events_workspace_id_received_at_buyer_id"),
        "events",
        ["workspace_id", "received_at", "buyer_id"],
    )
    op.create_index(op.f("ix_buyers_workspace_id_created_at"), "buyers", ["workspace_id", "created_at"])
    op.create_index(op.f("ix_orders_workspace_id_paid_at"), "orders", ["workspace_id", "paid_at"])


def downgrade() -> None:
    op.drop_index(op.f("ix_orders_workspace_id_paid_at"), table_name="orders")
    op.drop_index(op.f("ix_buyers_workspace_id_created_at"), table_name="buyers")
    op.drop_index(op.f("ix_events_workspace_id_received_at_buyer_id"), table_name="events")
    op.drop_index(op.f("ix_console_sessions_user_id"), table_name="console_sessions")
    op.drop_table("console_sessions")
    op.drop_index(op.f("ix_users_email"), table_name="users")
    op.drop_table("users")
