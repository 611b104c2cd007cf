"""per-buyer claims, order rates, ledger references

Revision ID: money_20261204
Revises: 7957e81cdafc
Create Date: 2026-12-04 19:30:00

- ``buyer_claims``: per-buyer limits (a drop's units, a once-per-buyer coupon) as a counter row the database
  checks with a conditional UPDATE; filled from the live holds and the orders that used a coupon.
- ``coupons.redemptions`` becomes the one count of a coupon's uses (pending and paid orders).
- ``orders.tax_percent`` / ``orders.platform_fee_percent``: the rates an order was booked with (renewals reuse
  them).
- ``ledger_entries.reference``: an external reference that makes an entry idempotent (payouts).
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "money_20261204"
down_revision: str | None = "7957e81cdafc"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "buyer_claims",
        sa.Column(
            "id", sa.BigInteger().with_variant(sa.Integer(), "sqlite"), autoincrement=True, nullable=False
        ),
        sa.Column("workspace_id", sa.String(length=40), nullable=False),
        sa.Column("scope", sa.String(length=16), nullable=False),
        sa.Column("key", sa.String(length=120), nullable=False),
        sa.Column("buyer_id", sa.String(length=40), nullable=False),
        sa.Column("used", sa.Integer(), nullable=False),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspaces.id"],
            name=op.f("fk_buyer_claims_workspace_id_workspaces"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_buyer_claims")),
        sa.UniqueConstraint(
            "workspace_id",
            "scope",
            "key",
            "buyer_id",
            name=op.f("uq_buyer_claims_workspace_id_scope_key_buyer_id"),
        ),
    )
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("tax_percent", sa.String(length=16), nullable=False, server_default="0")
        )
        batch_op.add_column(
            sa.Column("platform_fee_percent", sa.String(length=16), nullable=False, server_default="0")
        )
    with op.batch_alter_table("ledger_entries", schema=None) as batch_op:
        batch_op.add_column(sa.Column("reference", sa.String(length=200), nullable=True))
        batch_op.create_unique_constraint(
            batch_op.f("uq_ledger_entries_workspace_id_reference"), ["workspace_id", "reference"]
        )
    # Existing data: what each buyer holds or bought of each drop, each buyer's coupon uses, each coupon's uses.
    op.execute(
        "INSERT INTO buyer_claims (workspace_id, scope, key, buyer_id, used) "
        "SELECT workspace_id, 'drop', offer_key, buyer_id, SUM(quantity) FROM stock_holds "
        "WHERE status IN ('held', 'converted') GROUP BY workspace_id, offer_key, buyer_id"
    )
    op.execute(
        "INSERT INTO buyer_claims (workspace_id, scope, key, buyer_id, used) "
        "SELECT workspace_id, 'coupon', UPPER(coupon), buyer_id, COUNT(*) FROM orders "
        "WHERE coupon IS NOT NULL AND status IN ('pending', 'paid', 'partially_refunded', 'refunded') "
        "GROUP BY workspace_id, UPPER(coupon), buyer_id"
    )
    op.execute(
        "UPDATE coupons SET redemptions = (SELECT COUNT(*) FROM orders WHERE orders.workspace_id = "
        "coupons.workspace_id AND UPPER(orders.coupon) = UPPER(coupons.code) AND orders.status IN "
        "('pending', 'paid', 'partially_refunded', 'refunded'))"
    )


def downgrade() -> None:
    with op.batch_alter_table("ledger_entries", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("uq_ledger_entries_workspace_id_reference"), type_="unique")
        batch_op.drop_column("reference")
    with op.batch_alter_table("orders", schema=None) as batch_op:
        batch_op.drop_column("platform_fee_percent")
        batch_op.drop_column("tax_percent")
    op.drop_table("buyer_claims")
