"""buyers: consent to AI-rewritten content (allowed | originals_only | reviewed_only; NULL = not stated)

Revision ID: guard_20261205
Revises: adv1_20261204
Create Date: 2026-12-05 00:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "guard_20261205"
down_revision: str | None = "adv1_20261204"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("buyers", schema=None) as batch_op:
        batch_op.add_column(sa.Column("consent_ai_rewrite", sa.String(length=20), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("buyers", schema=None) as batch_op:
        batch_op.drop_column("consent_ai_rewrite")
