"""subscriptions: the count of lifecycle steps recorded, which names each step's buyer event (two steps dated
the same millisecond were one messageId, the second dropped as a duplicate)

Revision ID: subscription_steps_20261211
Revises: push_verified_20261210
Create Date: 2026-12-11 09:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "subscription_steps_20261211"
down_revision: str | None = "push_verified_20261210"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("subscriptions", schema=None) as batch_op:
        batch_op.add_column(sa.Column("steps", sa.Integer(), server_default="0", nullable=False))


def downgrade() -> None:
    with op.batch_alter_table("subscriptions", schema=None) as batch_op:
        batch_op.drop_column("steps")
