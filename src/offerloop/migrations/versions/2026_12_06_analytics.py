"""analytics: an index for reading a workspace's purchase events by name and time

Imported orders are ``Order Completed`` / ``Order Refunded`` events in the log; the analytics domain reads
them by (workspace, name, time) instead of scanning the whole log (10M events: seconds, not milliseconds).
On PostgreSQL the index is created on the partitioned parent and so on every monthly partition.

Revision ID: analytics_20261206
Revises: triggers_20261206
Create Date: 2026-12-06 12:30:00
"""

from collections.abc import Sequence

from alembic import op

revision: str = "analytics_20261206"
down_revision: str | None = "triggers_20261206"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(
        op.f("ix_events_workspace_id_name_timestamp"), "events", ["workspace_id", "name", "timestamp"]
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_events_workspace_id_name_timestamp"), table_name="events")
