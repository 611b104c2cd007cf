"""ltv: per-buyer model scores (P(alive), expected purchases and value of the LTV fit) read as buyer features

Revision ID: ltv_20261206
Revises: triggers_20261206
Create Date: 2026-12-06 12:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from offerloop.db.types import UTCDateTime

revision: str = "ltv_20261206"
down_revision: str | None = "attr_20261206"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "buyer_scores",
        sa.Column("workspace_id", sa.String(40), nullable=False),
        sa.Column("buyer_id", sa.String(40), nullable=False),
        sa.Column("name", sa.String(64), nullable=False),
        sa.Column("value", sa.Float(), nullable=False),
        sa.Column("computed_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspaces.id"],
            ondelete="CASCADE",
            name=op.f("fk_buyer_scores_workspace_id_workspaces"),
        ),
        sa.ForeignKeyConstraint(
            ["buyer_id"], ["buyers.id"], ondelete="CASCADE", name=op.f("fk_buyer_scores_buyer_id_buyers")
        ),
        sa.PrimaryKeyConstraint("workspace_id", "buyer_id", "name", name=op.f("pk_buyer_scores")),
    )


def downgrade() -> None:
    op.drop_table("buyer_scores")
