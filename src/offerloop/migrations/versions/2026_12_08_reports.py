"""reports: snapshots of the heavy reports, one per workspace, kind and parameters

Revision ID: reports_20261208
Revises: moneyreads_20261207
Create Date: 2026-12-08 09:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from offerloop.db.types import JSONType, UTCDateTime

revision: str = "reports_20261208"
down_revision: str | None = "moneyreads_20261207"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "report_snapshots",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("workspace_id", sa.String(40), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("key", sa.String(64), nullable=False),
        sa.Column("params", JSONType, nullable=False),
        sa.Column("body", JSONType, nullable=True),
        sa.Column("error", JSONType, nullable=True),
        sa.Column("compute_s", sa.Float(), nullable=False),
        sa.Column("computed_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspaces.id"],
            ondelete="CASCADE",
            name=op.f("fk_report_snapshots_workspace_id_workspaces"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_report_snapshots")),
        sa.UniqueConstraint(
            "workspace_id", "kind", "key", name=op.f("uq_report_snapshots_workspace_id_kind_key")
        ),
    )


def downgrade() -> None:
    op.drop_table("report_snapshots")
