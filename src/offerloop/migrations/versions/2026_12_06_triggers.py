"""triggers: the ticks of scheduled journeys and the turnaround promises of micro-offers

Revision ID: triggers_20261206
Revises: feedback_20261206
Create Date: 2026-12-06 09:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from offerloop.db.types import BigIntPK, UTCDateTime

revision: str = "triggers_20261206"
down_revision: str | None = "feedback_20261206"
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
        "journey_ticks",
        sa.Column("id", BigIntPK, primary_key=True, autoincrement=True),
        sa.Column("workspace_id", sa.String(40), nullable=False),
        sa.Column("journey", sa.String(64), nullable=False),
        sa.Column("tick", sa.String(40), nullable=False),
        sa.Column("cursor", sa.String(120), nullable=True),
        sa.Column("entered", sa.Integer(), nullable=False),
        sa.Column("done", sa.Boolean(), nullable=False),
        sa.Column("started_at", UTCDateTime(), nullable=False),
        sa.Column("finished_at", UTCDateTime(), nullable=True),
        _workspace_fk("journey_ticks"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_journey_ticks")),
        sa.UniqueConstraint(
            "workspace_id", "journey", "tick", name=op.f("uq_journey_ticks_workspace_id_journey_tick")
        ),
    )
    op.create_table(
        "promises",
        sa.Column("id", BigIntPK, primary_key=True, autoincrement=True),
        sa.Column("workspace_id", sa.String(40), nullable=False),
        sa.Column("order_id", sa.String(40), nullable=False),
        sa.Column("buyer_id", sa.String(40), nullable=False),
        sa.Column("offer_key", sa.String(120), nullable=False),
        sa.Column("policy_id", sa.String(120), nullable=False),
        sa.Column("turnaround_hours", sa.Integer(), nullable=False),
        sa.Column("paid_at", UTCDateTime(), nullable=False),
        sa.Column("due_at", UTCDateTime(), nullable=False),
        sa.Column("status", sa.String(12), nullable=False),
        sa.Column("on_time", sa.Boolean(), nullable=True),
        sa.Column("artifact_id", sa.String(40), nullable=True),
        sa.Column("met_at", UTCDateTime(), nullable=True),
        sa.Column("late_at", UTCDateTime(), nullable=True),
        _workspace_fk("promises"),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_promises")),
        sa.UniqueConstraint("workspace_id", "order_id", name=op.f("uq_promises_workspace_id_order_id")),
    )
    op.create_index(op.f("ix_promises_workspace_id_status_id"), "promises", ["workspace_id", "status", "id"])
    op.create_index(
        op.f("ix_promises_workspace_id_buyer_id_status"), "promises", ["workspace_id", "buyer_id", "status"]
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_promises_workspace_id_buyer_id_status"), table_name="promises")
    op.drop_index(op.f("ix_promises_workspace_id_status_id"), table_name="promises")
    op.drop_table("promises")
    op.drop_table("journey_ticks")
