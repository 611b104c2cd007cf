"""layout: each workspace keeps the number of buyer partitions its log was split into

Revision ID: layout_20261206
Revises: keys_20261205
Create Date: 2026-12-06 00:00:00

A buyer's events must all land in one partition, or its newer events can be applied before older ones
still waiting in another partition (the features watermark then skips those). The count is fixed per
workspace at its first event; the ``pipeline_partitions`` setting applies to workspaces created after.
Workspaces whose log already has partitions keep the count the servers used so far (8, the old default).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "layout_20261206"
down_revision: str | None = "keys_20261205"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("pipeline_origin") as batch_op:
        batch_op.add_column(sa.Column("partitions", sa.Integer(), nullable=True))
    op.execute(
        "INSERT INTO pipeline_origin (workspace_id, seq) SELECT DISTINCT workspace_id, 0 FROM events "
        "WHERE part IS NOT NULL AND workspace_id NOT IN (SELECT workspace_id FROM pipeline_origin)"
    )
    op.execute(
        "UPDATE pipeline_origin SET partitions = 8 WHERE workspace_id IN "
        "(SELECT DISTINCT workspace_id FROM events WHERE part IS NOT NULL)"
    )


def downgrade() -> None:
    with op.batch_alter_table("pipeline_origin") as batch_op:
        batch_op.drop_column("partitions")
