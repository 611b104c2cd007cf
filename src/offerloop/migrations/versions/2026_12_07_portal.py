"""portal: the buyer portal's one-time sign-in links and signed-in sessions

Revision ID: portal_20261207
Revises: storefront_20261207
Create Date: 2026-12-07 09:00:00
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

from offerloop.db.types import UTCDateTime

revision: str = "portal_20261207"
down_revision: str | None = "storefront_20261207"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _table(name: str, *columns: sa.Column) -> None:  # type: ignore[type-arg]
    op.create_table(
        name,
        sa.Column("id", sa.String(64), nullable=False),
        sa.Column("workspace_id", sa.String(40), nullable=False),
        sa.Column("buyer_id", sa.String(40), nullable=False),
        *columns,
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("expires_at", UTCDateTime(), nullable=False),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspaces.id"],
            ondelete="CASCADE",
            name=op.f(f"fk_{name}_workspace_id_workspaces"),
        ),
        sa.PrimaryKeyConstraint("id", name=op.f(f"pk_{name}")),
    )
    op.create_index(op.f(f"ix_{name}_workspace_id_buyer_id"), name, ["workspace_id", "buyer_id"])


def upgrade() -> None:
    _table("portal_login_tokens", sa.Column("used_at", UTCDateTime(), nullable=True))
    _table("portal_sessions", sa.Column("csrf_token", sa.String(64), nullable=False))


def downgrade() -> None:
    for name in ("portal_sessions", "portal_login_tokens"):
        op.drop_index(op.f(f"ix_{name}_workspace_id_buyer_id"), table_name=name)
        op.drop_table(name)
