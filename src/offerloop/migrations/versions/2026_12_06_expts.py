"""experiments: A/B/n experiments and the buyers' first exposures (their sticky arms)

Revision ID: expts_20261206
Revises: triggers_20261206
Create Date: 2026-12-06 12:30:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from offerloop.db.types import JSONType, UTCDateTime

revision: str = "expts_20261206"
down_revision: str | None = "ltv_20261206"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _workspace_fk(table: str) -> sa.ForeignKeyConstraint:
    return sa.ForeignKeyConstraint(
        ["workspace_id"],
        ["workspaces.id"],
        name=op.f(f"fk_{table}_workspace_id_workspaces"),
        ondelete="CASCADE",
    )


def upgrade() -> None:
    op.create_table(
        "experiments",
        sa.Column("workspace_id", sa.String(40), nullable=False),
        sa.Column("key", sa.String(120), nullable=False),
        sa.Column("name", sa.String(200), nullable=False),
        sa.Column("subject", sa.String(16), nullable=False),
        sa.Column("subject_id", sa.String(200), nullable=False),
        sa.Column("arms", JSONType, nullable=False),
        sa.Column("metrics", JSONType, nullable=False),
        sa.Column("guardrails", JSONType, nullable=False),
        sa.Column("status", sa.String(12), nullable=False),
        sa.Column("starts_at", UTCDateTime(), nullable=True),
        sa.Column("ends_at", UTCDateTime(), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        _workspace_fk("experiments"),
        sa.PrimaryKeyConstraint("workspace_id", "key", name=op.f("pk_experiments")),
    )
    op.create_table(
        "experiment_exposures",
        sa.Column("workspace_id", sa.String(40), nullable=False),
        sa.Column("experiment_key", sa.String(120), nullable=False),
        sa.Column("buyer_id", sa.String(40), nullable=False),
        sa.Column("arm", sa.String(64), nullable=False),
        sa.Column("exposed_at", UTCDateTime(), nullable=False),
        _workspace_fk("experiment_exposures"),
        sa.PrimaryKeyConstraint(
            "workspace_id", "experiment_key", "buyer_id", name=op.f("pk_experiment_exposures")
        ),
    )
    op.create_index(
        op.f("ix_experiment_exposures_workspace_id_experiment_key_exposed_at"),
        "experiment_exposures",
        ["workspace_id", "experiment_key", "exposed_at"],
    )


def downgrade() -> None:
    op.drop_index(
        op.f("ix_experiment_exposures_workspace_id_experiment_key_exposed_at"),
        table_name="experiment_exposures",
    )
    op.drop_table("experiment_exposures")
    op.drop_table("experiments")
