"""consumers: a per-buyer watermark on feature state (highest event seq applied) and a rebuild flag

Revision ID: consumers_20261205
Revises: log_20261205
Create Date: 2026-12-05 02:10:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "consumers_20261205"
down_revision: str | None = "log_20261205"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("buyer_features") as batch:
        batch.add_column(sa.Column("applied_seq", sa.BigInteger(), nullable=False, server_default="0"))
        batch.add_column(sa.Column("rebuild", sa.Boolean(), nullable=False, server_default=sa.false()))
    # State built inline before this revision holds every stored event of its buyer: mark it so, so a
    # consumer that starts from the beginning of the log does not apply those events a second time.
    op.execute(
        "UPDATE buyer_features SET applied_seq = COALESCE((SELECT MAX(e.id) FROM events e "
        "WHERE e.workspace_id = buyer_features.workspace_id AND e.buyer_id = buyer_features.buyer_id), 0)"
    )


def downgrade() -> None:
    with op.batch_alter_table("buyer_features") as batch:
        batch.drop_column("rebuild")
        batch.drop_column("applied_seq")
