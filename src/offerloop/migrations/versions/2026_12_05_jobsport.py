"""jobsport: work waiting in the old loops' rows becomes jobs (renders, fulfilment tasks, learning)

Revision ID: jobsport_20261205
Revises: consumers_20261205
Create Date: 2026-12-05 02:30:00

Before this revision the render, fulfilment and learner loops found their work by scanning their own rows;
now each piece of work is a job. Queued or half-rendered artifact versions, pending fulfilment tasks, open
outcome windows and rewards not learned yet get their job here, so nothing waiting is dropped by the upgrade.
"""

from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from alembic import op

from offerloop.db.types import JSONType, UTCDateTime

revision: str = "jobsport_20261205"
down_revision: str | None = "consumers_20261205"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

jobs = sa.table(
    "jobs",
    sa.column("kind", sa.String), sa.column("key", sa.String), sa.column("workspace_id", sa.String),
    sa.column("state", sa.String), sa.column("run_at", UTCDateTime()), sa.column("attempts", sa.Integer),
    sa.column("payload", JSONType), sa.column("created_at", UTCDateTime()), sa.column("updated_at", UTCDateTime()),
)  # fmt: skip
versions = sa.table(
    "artifact_versions", sa.column("workspace_id", sa.String), sa.column("artifact_id", sa.String),
    sa.column("version", sa.Integer), sa.column("status", sa.String),
)  # fmt: skip
tasks = sa.table(
    "fulfilment_tasks", sa.column("id", sa.BigInteger), sa.column("workspace_id", sa.String),
    sa.column("status", sa.String), sa.column("next_attempt_at", UTCDateTime()),
)  # fmt: skip
decisions = sa.table(
    "decisions", sa.column("workspace_id", sa.String), sa.column("placement", sa.String),
    sa.column("reward", sa.Float), sa.column("learned_at", UTCDateTime()), sa.column("propensity", sa.Float),
    sa.column("window_ends_at", UTCDateTime()),
)  # fmt: skip


def upgrade() -> None:
    bind = op.get_bind()
    now = datetime.now(UTC)
    rows: list[dict[str, Any]] = []

    def job(kind: str, key: str, workspace_id: str, run_at: datetime) -> None:
        rows.append({"kind": kind, "key": key, "workspace_id": workspace_id, "state": "queued", "run_at": run_at,
                     "attempts": 0, "payload": None, "created_at": now, "updated_at": now})  # fmt: skip

    for ws, artifact, number in bind.execute(
        sa.select(versions.c.workspace_id, versions.c.artifact_id, versions.c.version).where(
            versions.c.status.in_(("queued", "rendering"))
        )
    ):
        job("assembly.render", f"{artifact}:{number}", ws, now)
    for task_id, ws, at in bind.execute(
        sa.select(tasks.c.id, tasks.c.workspace_id, tasks.c.next_attempt_at).where(
            tasks.c.status == "pending"
        )
    ):
        job("checkout.fulfil", str(task_id), ws, at)
    for ws, first_end in bind.execute(
        sa.select(decisions.c.workspace_id, sa.func.min(decisions.c.window_ends_at))
        .where(decisions.c.reward.is_(None), decisions.c.window_ends_at.is_not(None))
        .group_by(decisions.c.workspace_id)
    ):
        job("decisions.close_windows", ws, ws, first_end)
    for ws, placement in bind.execute(
        sa.select(decisions.c.workspace_id, decisions.c.placement)
        .where(
            decisions.c.reward.is_not(None),
            decisions.c.learned_at.is_(None),
            decisions.c.propensity.is_not(None),
        )
        .distinct()
    ):
        job("decisions.learn", f"{ws}:{placement}", ws, now)
    if rows:
        op.bulk_insert(jobs, rows)


def downgrade() -> None:
    op.execute(
        jobs.delete().where(
            jobs.c.kind.in_(
                ("assembly.render", "checkout.fulfil", "decisions.close_windows", "decisions.learn")
            )
        )
    )
