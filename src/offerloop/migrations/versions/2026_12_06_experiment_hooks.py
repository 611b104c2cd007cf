"""experiment hooks and drift on event time: buyer_features.event_at (the bounded time of a buyer's latest
event, for the drift windows), the policy experiment and arm of a decision, experiments by subject

Revision ID: hooks_20261206
Revises: analytics_20261206
Create Date: 2026-12-06 16:20:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

import offerloop.db.types

revision: str = "hooks_20261206"
down_revision: str | None = "senders_20261206"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("buyer_features") as batch:
        batch.add_column(sa.Column("event_at", offerloop.db.types.UTCDateTime(timezone=True), nullable=True))
    # The receive time of the last event bounds its event time: the best stored value for existing buyers.
    op.execute("UPDATE buyer_features SET event_at = updated_at")
    op.drop_index(op.f("ix_buyer_features_workspace_id_updated_at"), table_name="buyer_features")
    op.create_index(
        op.f("ix_buyer_features_workspace_id_event_at"), "buyer_features", ["workspace_id", "event_at"]
    )
    op.drop_index(op.f("ix_buyer_personas_workspace_id_updated_at_persona"), table_name="buyer_personas")
    with op.batch_alter_table("decisions") as batch:
        batch.add_column(sa.Column("experiment_key", sa.String(length=120), nullable=True))
        batch.add_column(sa.Column("experiment_arm", sa.String(length=64), nullable=True))
    op.create_index(
        op.f("ix_experiments_workspace_id_subject_subject_id"),
        "experiments",
        ["workspace_id", "subject", "subject_id"],
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_experiments_workspace_id_subject_subject_id"), table_name="experiments")
    with op.batch_alter_table("decisions") as batch:
        batch.drop_column("experiment_arm")
        batch.drop_column("experiment_key")
    op.create_index(
        op.f("ix_buyer_personas_workspace_id_updated_at_persona"),
        "buyer_personas",
        ["workspace_id", "updated_at", "persona"],
    )
    op.drop_index(op.f("ix_buyer_features_workspace_id_event_at"), table_name="buyer_features")
    op.create_index(
        op.f("ix_buyer_features_workspace_id_updated_at"), "buyer_features", ["workspace_id", "updated_at"]
    )
    with op.batch_alter_table("buyer_features") as batch:
        batch.drop_column("event_at")
