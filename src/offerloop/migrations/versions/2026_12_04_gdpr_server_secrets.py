"""server secrets: a random link-signing secret per database, made at first migration

Revision ID: gdpr_20261204
Revises: money_20261204
Create Date: 2026-12-04 19:00:00
"""

import secrets
from collections.abc import Sequence
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

import offerloop.db.types

revision: str = "gdpr_20261204"
down_revision: str | None = "money_20261204"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    table = op.create_table(
        "server_secrets",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("value", sa.String(length=128), nullable=False),
        sa.Column("created_at", offerloop.db.types.UTCDateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_server_secrets")),
    )
    # Generated here, once per database: every process serving it signs with the same value.
    op.bulk_insert(
        table,
        [{"name": "link_signing", "value": secrets.token_urlsafe(32), "created_at": datetime.now(UTC)}],
    )


def downgrade() -> None:
    op.drop_table("server_secrets")
