"""storefront: the hosted pages' buy-form submissions (one order per form, however often it is sent)

Revision ID: storefront_20261207
Revises: console_20261206
Create Date: 2026-12-07 09:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from offerloop.db.types import UTCDateTime

revision: str = "storefront_20261207"
down_revision: str | None = "console_20261206"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "storefront_checkouts",
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("workspace_id", sa.String(40), nullable=False),
        sa.Column("offer_key", sa.String(120), nullable=False),
        sa.Column("order_id", sa.String(40), nullable=True),
        sa.Column("shows_deliverable", sa.Boolean(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspaces.id"],
            ondelete="CASCADE",
            name=op.f("fk_storefront_checkouts_workspace_id_workspaces"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_storefront_checkouts")),
    )


def downgrade() -> None:
    op.drop_table("storefront_checkouts")
