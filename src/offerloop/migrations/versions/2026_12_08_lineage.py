"""lineage: an index on buyers (workspace_id, merged_into_id), so the buyers merged into a survivor (whose
orders, entitlements, subscriptions and deliverables are the survivor's) are one indexed probe per step

Revision ID: lineage_20261208
Revises: reports_20261208
Create Date: 2026-12-08 12:00:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "lineage_20261208"
down_revision: str | None = "reports_20261208"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

NAME = "ix_buyers_workspace_id_merged_into_id"


def upgrade() -> None:
    op.create_index(NAME, "buyers", ["workspace_id", "merged_into_id"], unique=False)


def downgrade() -> None:
    op.drop_index(NAME, table_name="buyers")
