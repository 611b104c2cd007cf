"""invoices: invoices and credit notes, and the per-workspace counters that number them without gaps

Revision ID: invoices_20261206
Revises: delivery_20261206
Create Date: 2026-12-06 06:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from offerloop.db.types import JSONType, UTCDateTime

revision: str = "invoices_20261206"
down_revision: str | None = "delivery_channels_20261206"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "invoice_counters",
        sa.Column("workspace_id", sa.String(40), nullable=False),
        sa.Column("kind", sa.String(12), nullable=False),
        sa.Column("last", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspaces.id"],
            ondelete="CASCADE",
            name=op.f("fk_invoice_counters_workspace_id_workspaces"),
        ),
        sa.PrimaryKeyConstraint("workspace_id", "kind", name=op.f("pk_invoice_counters")),
    )
    op.create_table(
        "invoices",
        sa.Column("id", sa.String(40), nullable=False),
        sa.Column("workspace_id", sa.String(40), nullable=False),
        sa.Column("kind", sa.String(12), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("number", sa.String(40), nullable=False),
        sa.Column("source_key", sa.String(255), nullable=False),
        sa.Column("order_id", sa.String(40), nullable=False),
        sa.Column("buyer_id", sa.String(40), nullable=False),
        sa.Column("refers_to", sa.String(40), nullable=True),
        sa.Column("currency", sa.String(3), nullable=False),
        sa.Column("lines", JSONType, nullable=False),
        sa.Column("subtotal", sa.BigInteger(), nullable=False),
        sa.Column("discount", sa.BigInteger(), nullable=False),
        sa.Column("tax", sa.BigInteger(), nullable=False),
        sa.Column("total", sa.BigInteger(), nullable=False),
        sa.Column("tax_percent", sa.String(12), nullable=False),
        sa.Column("seller_name", sa.String(200), nullable=False),
        sa.Column("buyer_name", sa.String(200), nullable=True),
        sa.Column("buyer_email", sa.String(320), nullable=True),
        sa.Column("issued_at", UTCDateTime(), nullable=False),
        sa.Column("pdf", sa.LargeBinary(), nullable=True),
        sa.Column("announced_at", UTCDateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspaces.id"],
            ondelete="CASCADE",
            name=op.f("fk_invoices_workspace_id_workspaces"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_invoices")),
        sa.UniqueConstraint("workspace_id", "number", name=op.f("uq_invoices_workspace_id_number")),
        sa.UniqueConstraint(
            "workspace_id", "kind", "source_key", name=op.f("uq_invoices_workspace_id_kind_source_key")
        ),
    )
    op.create_index(op.f("ix_invoices_workspace_id_order_id"), "invoices", ["workspace_id", "order_id"])
    op.create_index(op.f("ix_invoices_workspace_id_buyer_id"), "invoices", ["workspace_id", "buyer_id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_invoices_workspace_id_buyer_id"), table_name="invoices")
    op.drop_index(op.f("ix_invoices_workspace_id_order_id"), table_name="invoices")
    op.drop_table("invoices")
    op.drop_table("invoice_counters")
