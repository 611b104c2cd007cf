"""keys: every unique key and every per-buyer lookup index leads with workspace_id (Citus by workspace)

Revision ID: keys_20261205
Revises: jobsport_20261205
Create Date: 2026-12-05 03:00:00

The new unique keys only add workspace_id to the old ones, so every stored row already satisfies them;
each is created before the old one is dropped (PostgreSQL keeps the guarantee throughout; SQLite rebuilds
the table in one batch). See docs/scaling.md for the whole audit.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "keys_20261205"
down_revision: str | None = "jobsport_20261205"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# table -> (old unique columns, new unique columns)
UNIQUES = {
    "artifact_versions": (["artifact_id", "version"], ["workspace_id", "artifact_id", "version"]),
    "artifact_files": (
        ["artifact_id", "version", "format"],
        ["workspace_id", "artifact_id", "version", "format"],
    ),
    "fulfilment_tasks": (["order_id", "component", "ref"], ["workspace_id", "order_id", "component", "ref"]),
}
# table -> (old index columns, new index columns): per-buyer reads, scoped by workspace first.
INDEXES = {
    "decisions": (["buyer_id", "created_at"], ["workspace_id", "buyer_id", "created_at"]),
    "merges": (["loser_id"], ["workspace_id", "loser_id"]),
    "persona_history": (["buyer_id", "at"], ["workspace_id", "buyer_id", "at"]),
    "touchpoints": (["buyer_id", "occurred_at"], ["workspace_id", "buyer_id", "occurred_at"]),
}


def _name(prefix: str, table: str, columns: list[str]) -> str:
    return f"{prefix}_{table}_{'_'.join(columns)}"


def _swap(forward: bool) -> None:
    for table, (old, new) in UNIQUES.items():
        drop, make = (old, new) if forward else (new, old)
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.create_unique_constraint(batch_op.f(_name("uq", table, make)), make)
            batch_op.drop_constraint(batch_op.f(_name("uq", table, drop)), type_="unique")
    for table, (old, new) in INDEXES.items():
        drop, make = (old, new) if forward else (new, old)
        with op.batch_alter_table(table, schema=None) as batch_op:
            batch_op.create_index(batch_op.f(_name("ix", table, make)), make, unique=False)
            batch_op.drop_index(batch_op.f(_name("ix", table, drop)))


def upgrade() -> None:
    _swap(forward=True)


def downgrade() -> None:
    _swap(forward=False)
