"""sums: analytics state kept by the ``analytics`` consumer (purchases, buyer summaries, first persona
assignments) and an index to find a survivor's merged buyers

Existing data: run ``offerloop analytics rebuild`` once after upgrading (it fills the tables from orders,
events, touchpoints and personas; the consumer keeps them from then on).

Revision ID: sums_20261206
Revises: analytics_20261206
Create Date: 2026-12-06 16:40:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "sums_20261206"
down_revision: str | None = "hooks_20261206"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _workspace() -> sa.Column[str]:
    return sa.Column("workspace_id", sa.String(length=40), nullable=False)


def _fk(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["workspace_id"],
        ["workspaces.id"],
        ondelete="CASCADE",
        name=op.f(f"fk_{table}_workspace_id_workspaces"),
    )


def upgrade() -> None:
    op.create_table(
        "analytics_purchases",
        _workspace(),
        sa.Column("purchase_key", sa.String(length=130), nullable=False),
        sa.Column("buyer_id", sa.String(length=40), nullable=False),
        sa.Column("at_us", sa.BigInteger(), nullable=False),
        sa.Column("day", sa.Integer(), nullable=False),
        sa.Column("month", sa.Integer(), nullable=False),
        sa.Column("cohort_month", sa.Integer(), nullable=False),
        sa.Column("amount_minor", sa.BigInteger(), nullable=False),
        sa.Column("refunded_minor", sa.BigInteger(), nullable=False),
        sa.Column("currency", sa.String(length=8), nullable=False),
        sa.Column("source", sa.String(length=16), nullable=False),
        sa.Column("first_touch", sa.String(length=64), nullable=True),
        sa.Column("persona", sa.String(length=64), nullable=True),
        _fk("analytics_purchases"),
        sa.PrimaryKeyConstraint("workspace_id", "purchase_key", name=op.f("pk_analytics_purchases")),
    )
    op.create_index(
        op.f("ix_analytics_purchases_workspace_id_buyer_id"),
        "analytics_purchases",
        ["workspace_id", "buyer_id"],
    )
    op.create_index(
        op.f("ix_analytics_purchases_workspace_id_day"), "analytics_purchases", ["workspace_id", "day"]
    )
    op.create_index(
        "ix_analytics_purchases_summary",
        "analytics_purchases",
        ["workspace_id", "currency", "at_us", "buyer_id", "amount_minor"],
    )
    op.create_table(
        "analytics_buyers",
        _workspace(),
        sa.Column("buyer_id", sa.String(length=40), nullable=False),
        sa.Column("first_at_us", sa.BigInteger(), nullable=False),
        sa.Column("first_day", sa.Integer(), nullable=False),
        sa.Column("second_day", sa.Integer(), nullable=True),
        sa.Column("first_month", sa.Integer(), nullable=False),
        sa.Column("purchases", sa.Integer(), nullable=False),
        sa.Column("holdout_draw", sa.Float(), nullable=False),
        sa.Column("first_touch", sa.String(length=64), nullable=True),
        sa.Column("first_touch_us", sa.BigInteger(), nullable=True),
        sa.Column("persona", sa.String(length=64), nullable=True),
        sa.Column("first_persona", sa.String(length=64), nullable=True),
        sa.Column("first_assigned_us", sa.BigInteger(), nullable=True),
        _fk("analytics_buyers"),
        sa.PrimaryKeyConstraint("workspace_id", "buyer_id", name=op.f("pk_analytics_buyers")),
    )
    op.create_index(
        "ix_analytics_buyers_retention",
        "analytics_buyers",
        ["workspace_id", "first_day", "second_day", "holdout_draw"],
    )
    op.create_index(
        "ix_analytics_buyers_cohorts",
        "analytics_buyers",
        ["workspace_id", "first_month", "first_touch", "persona", "first_day"],
    )
    op.create_table(
        "analytics_persona_firsts",
        _workspace(),
        sa.Column("buyer_id", sa.String(length=40), nullable=False),
        sa.Column("persona", sa.String(length=64), nullable=False),
        sa.Column("at_us", sa.BigInteger(), nullable=False),
        sa.Column("day", sa.Integer(), nullable=False),
        sa.Column("purchased", sa.Boolean(), nullable=False),
        sa.Column("bought_day", sa.Integer(), nullable=True),
        _fk("analytics_persona_firsts"),
        sa.PrimaryKeyConstraint(
            "workspace_id", "buyer_id", "persona", name=op.f("pk_analytics_persona_firsts")
        ),
    )
    op.create_index(
        "ix_analytics_persona_firsts_velocity",
        "analytics_persona_firsts",
        ["workspace_id", "purchased", "persona", "day", "bought_day"],
    )
    op.create_index(
        "ix_analytics_purchases_cohorts",
        "analytics_purchases",
        [
            "workspace_id",
            "cohort_month",
            "month",
            "currency",
            "first_touch",
            "persona",
            "day",
            "buyer_id",
            "amount_minor",
        ],
    )
    op.create_table(
        "analytics_persona_purchases",
        _workspace(),
        sa.Column("buyer_id", sa.String(length=40), nullable=False),
        sa.Column("persona", sa.String(length=64), nullable=False),
        sa.Column("purchase_key", sa.String(length=130), nullable=False),
        sa.Column("currency", sa.String(length=8), nullable=False),
        sa.Column("day", sa.Integer(), nullable=False),
        sa.Column("amount_minor", sa.BigInteger(), nullable=False),
        _fk("analytics_persona_purchases"),
        sa.PrimaryKeyConstraint(
            "workspace_id", "buyer_id", "persona", "purchase_key", name=op.f("pk_analytics_persona_purchases")
        ),
    )
    op.create_index(
        "ix_analytics_persona_purchases_revenue",
        "analytics_persona_purchases",
        ["workspace_id", "persona", "currency", "day", "amount_minor"],
    )
    op.create_index(op.f("ix_merges_workspace_id_winner_id"), "merges", ["workspace_id", "winner_id"])


def downgrade() -> None:
    op.drop_index(op.f("ix_merges_workspace_id_winner_id"), table_name="merges")
    op.drop_table("analytics_persona_purchases")
    op.drop_table("analytics_persona_firsts")
    op.drop_table("analytics_buyers")
    op.drop_table("analytics_purchases")
