"""health: indexes for the windows of model and data health (features and personas by their last update,
decisions by the time they were made)

Revision ID: health_20261206
Revises: triggers_20261206
Create Date: 2026-12-06 12:30:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "health_20261206"
down_revision: str | None = "triggers_20261206"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(
        op.f("ix_buyer_features_workspace_id_updated_at"), "buyer_features", ["workspace_id", "updated_at"]
    )
    # covering: the persona mix of a window is counted from the index alone
    op.create_index(
        op.f("ix_buyer_personas_workspace_id_updated_at_persona"),
        "buyer_personas",
        ["workspace_id", "updated_at", "persona"],
    )
    op.create_index(op.f("ix_decisions_workspace_id_created_at"), "decisions", ["workspace_id", "created_at"])


def downgrade() -> None:
    op.drop_index(op.f("ix_decisions_workspace_id_created_at"), table_name="decisions")
    op.drop_index(op.f("ix_buyer_personas_workspace_id_updated_at_persona"), table_name="buyer_personas")
    op.drop_index(op.f("ix_buyer_features_workspace_id_updated_at"), table_name="buyer_features")
