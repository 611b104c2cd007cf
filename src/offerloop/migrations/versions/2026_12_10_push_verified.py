"""push subscriptions: whether their owner was vouched for (secret key or buyer token); rows stored before with a
userId are not (the write key could name any userId then), so they receive pushes again once re-registered

Revision ID: push_verified_20261210
Revises: report_views_20261209
Create Date: 2026-12-10 09:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "push_verified_20261210"
down_revision: str | None = "report_views_20261209"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("push_subscriptions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("verified", sa.Boolean(), server_default=sa.false(), nullable=False))


def downgrade() -> None:
    with op.batch_alter_table("push_subscriptions", schema=None) as batch_op:
        batch_op.drop_column("verified")
