"""attr: fractional attribution credit per conversion (issue 13)

Revision ID: attr_20261206
Revises: triggers_20261206
Create Date: 2026-12-06 12:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from offerloop.db.types import UTCDateTime

revision: str = "attr_20261206"
down_revision: str | None = "health_20261206"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "attribution_credits",
        sa.Column("workspace_id", sa.String(40), nullable=False),
        sa.Column("model", sa.String(16), nullable=False),
        sa.Column("conversion_id", sa.String(120), nullable=False),
        sa.Column("channel", sa.String(16), nullable=False),
        sa.Column("source", sa.String(200), nullable=False),
        sa.Column("campaign", sa.String(200), nullable=False),
        sa.Column("content", sa.String(200), nullable=False),
        sa.Column("conversion", sa.String(255), nullable=False),
        sa.Column("buyer_id", sa.String(40), nullable=False),
        sa.Column("converted_at", UTCDateTime(), nullable=False),
        sa.Column("share", sa.Float(), nullable=False),
        sa.Column("value_minor", sa.Float(), nullable=False),
        sa.Column("currency", sa.String(3), nullable=True),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspaces.id"],
            name=op.f("fk_attribution_credits_workspace_id_workspaces"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "workspace_id",
            "model",
            "conversion",
            "conversion_id",
            "channel",
            "source",
            "campaign",
            "content",
            name=op.f("pk_attribution_credits"),
        ),
    )
    op.create_index(
        op.f("ix_attribution_credits_workspace_id_model_converted_at"),
        "attribution_credits",
        ["workspace_id", "model", "converted_at"],
    )
    op.create_index(
        op.f("ix_attribution_credits_workspace_id_buyer_id"),
        "attribution_credits",
        ["workspace_id", "buyer_id"],
    )


def downgrade() -> None:
    op.drop_table("attribution_credits")
