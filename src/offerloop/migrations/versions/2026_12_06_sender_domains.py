"""sender domains: the domains the operator allowed each workspace to send e-mail From

Revision ID: senders_20261206
Revises: analytics_20261206
Create Date: 2026-12-06 16:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from offerloop.db.types import UTCDateTime

revision: str = "senders_20261206"
down_revision: str | None = "analytics_20261206"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "delivery_sender_domains",
        sa.Column("workspace_id", sa.String(40), nullable=False),
        sa.Column("domain", sa.String(length=253), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspaces.id"],
            name=op.f("fk_delivery_sender_domains_workspace_id_workspaces"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("workspace_id", "domain", name=op.f("pk_delivery_sender_domains")),
    )


def downgrade() -> None:
    op.drop_table("delivery_sender_domains")
