"""feedback: delivery reports (bounces, delays, delivery notices, complaints) and the outbox by Message-ID

Revision ID: feedback_20261206
Revises: invoices_20261206
Create Date: 2026-12-06 08:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from offerloop.db.types import BigIntPK, UTCDateTime

revision: str = "feedback_20261206"
down_revision: str | None = "invoices_20261206"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "delivery_reports",
        sa.Column("id", BigIntPK, primary_key=True, autoincrement=True),
        sa.Column("workspace_id", sa.String(40), nullable=False),
        sa.Column("outbox_id", sa.BigInteger(), nullable=False),
        sa.Column("buyer_id", sa.String(40), nullable=False),
        sa.Column("kind", sa.String(12), nullable=False),
        sa.Column("recipient", sa.String(320), nullable=False),
        sa.Column("format", sa.String(8), nullable=False),
        sa.Column("action", sa.String(16), nullable=True),
        sa.Column("status", sa.String(16), nullable=True),
        sa.Column("diagnostic", sa.String(500), nullable=True),
        sa.Column("reporter", sa.String(255), nullable=True),
        sa.Column("received_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspaces.id"],
            name=op.f("fk_delivery_reports_workspace_id_workspaces"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_delivery_reports")),
        sa.UniqueConstraint(
            "workspace_id",
            "outbox_id",
            "kind",
            "recipient",
            name=op.f("uq_delivery_reports_workspace_id_outbox_id_kind_recipient"),
        ),
    )
    op.create_index(
        op.f("ix_delivery_reports_workspace_id_recipient_id"),
        "delivery_reports",
        ["workspace_id", "recipient", "id"],
    )
    op.create_index(
        op.f("ix_delivery_outbox_workspace_id_message_id"), "delivery_outbox", ["workspace_id", "message_id"]
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_delivery_outbox_workspace_id_message_id"), table_name="delivery_outbox")
    op.drop_index(op.f("ix_delivery_reports_workspace_id_recipient_id"), table_name="delivery_reports")
    op.drop_table("delivery_reports")
