"""reports: when a snapshot was last shown (viewed_at), so snapshots nobody computes or views are pruned

Revision ID: report_views_20261209
Revises: lineage_20261208
Create Date: 2026-12-09 09:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from offerloop.db.types import UTCDateTime

revision: str = "report_views_20261209"
down_revision: str | None = "lineage_20261208"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("report_snapshots", schema=None) as batch_op:
        batch_op.add_column(sa.Column("viewed_at", UTCDateTime(), nullable=True))
        batch_op.create_index(batch_op.f("ix_report_snapshots_computed_at"), ["computed_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("report_snapshots", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_report_snapshots_computed_at"))
        batch_op.drop_column("viewed_at")
