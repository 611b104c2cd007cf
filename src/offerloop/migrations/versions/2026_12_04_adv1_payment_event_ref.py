"""payment events: the payment they are about (intent or invoice), so an event that arrives before its order
is known by that payment is applied when it is

Revision ID: adv1_20261204
Revises: gdpr_20261204
Create Date: 2026-12-04 21:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "adv1_20261204"
down_revision: str | None = "gdpr_20261204"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("payment_events", schema=None) as batch_op:
        batch_op.add_column(sa.Column("payment_ref", sa.String(length=200), nullable=True))
        batch_op.create_index(
            batch_op.f("ix_payment_events_provider_payment_ref"), ["provider", "payment_ref"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("payment_events", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_payment_events_provider_payment_ref"))
        batch_op.drop_column("payment_ref")
