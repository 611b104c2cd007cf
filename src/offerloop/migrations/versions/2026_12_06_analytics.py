"""analytics: indexes for reading purchase events by name and time, and first persona assignments

Imported orders are ``Order Completed`` / ``Order Refunded`` events in the log; the analytics domain reads
them by (workspace, name, time) instead of scanning the whole log (10M events: seconds, not milliseconds).
On PostgreSQL the index is created on the partitioned parent and so on every monthly partition.
Persona velocity groups persona_history by (buyer, persona) for each first assignment: a covering index in
that order streams the groups without a sort or a lookup of every row.

Revision ID: analytics_20261206
Revises: triggers_20261206
Create Date: 2026-12-06 12:30:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "analytics_20261206"
down_revision: str | None = "expts_20261206"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(
        op.f("ix_events_workspace_id_name_timestamp"), "events", ["workspace_id", "name", "timestamp"]
    )
    op.create_index(
        op.f("ix_persona_history_workspace_id_buyer_id_to_persona_at"),
        "persona_history",
        ["workspace_id", "buyer_id", "to_persona", "at"],
    )


def downgrade() -> None:
    op.drop_index(
        op.f("ix_persona_history_workspace_id_buyer_id_to_persona_at"), table_name="persona_history"
    )
    op.drop_index(op.f("ix_events_workspace_id_name_timestamp"), table_name="events")
