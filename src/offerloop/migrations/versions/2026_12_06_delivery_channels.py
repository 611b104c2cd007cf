"""delivery channels: outgoing webhook endpoints, deliveries and attempts; web push VAPID keys and subscriptions

Revision ID: delivery_channels_20261206
Revises: layout_20261206
Create Date: 2026-12-06 12:00:00
"""

from collections.abc import Sequence
from typing import Any

import sqlalchemy as sa
from alembic import op

from offerloop.db.types import BigIntPK, JSONType, UTCDateTime

revision: str = "delivery_channels_20261206"
down_revision: str | None = "delivery_20261206"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _workspace(table: str) -> list[Any]:
    return [
        sa.Column("workspace_id", sa.String(40), nullable=False),
        sa.ForeignKeyConstraint(
            ["workspace_id"],
            ["workspaces.id"],
            ondelete="CASCADE",
            name=op.f(f"fk_{table}_workspace_id_workspaces"),
        ),
    ]


def upgrade() -> None:
    op.create_table(
        "webhook_endpoints",
        sa.Column("id", sa.String(40), nullable=False),
        *_workspace("webhook_endpoints"),
        sa.Column("url", sa.Text(), nullable=False),
        sa.Column("description", sa.String(500), nullable=False),
        sa.Column("enabled", sa.Boolean(), nullable=False),
        sa.Column("event_types", JSONType, nullable=False),
        sa.Column("secret", sa.String(80), nullable=False),
        sa.Column("previous_secret", sa.String(80), nullable=True),
        sa.Column("previous_secret_until", UTCDateTime(), nullable=True),
        sa.Column("disabled_reason", sa.String(300), nullable=True),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_webhook_endpoints")),
    )
    op.create_index(op.f("ix_webhook_endpoints_workspace_id_id"), "webhook_endpoints", ["workspace_id", "id"])
    op.create_table(
        "webhook_deliveries",
        sa.Column("id", sa.String(40), nullable=False),
        *_workspace("webhook_deliveries"),
        sa.Column("endpoint_id", sa.String(40), nullable=False),
        sa.ForeignKeyConstraint(
            ["endpoint_id"],
            ["webhook_endpoints.id"],
            ondelete="CASCADE",
            name=op.f("fk_webhook_deliveries_endpoint_id_webhook_endpoints"),
        ),
        sa.Column("event_id", sa.String(40), nullable=False),
        sa.Column("event_type", sa.String(120), nullable=False),
        sa.Column("idempotency_key", sa.String(200), nullable=False),
        sa.Column("data", JSONType, nullable=False),
        sa.Column("status", sa.String(12), nullable=False),
        sa.Column("attempts", sa.Integer(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("first_attempt_at", UTCDateTime(), nullable=True),
        sa.Column("next_attempt_at", UTCDateTime(), nullable=True),
        sa.Column("delivered_at", UTCDateTime(), nullable=True),
        sa.Column("last_status_code", sa.Integer(), nullable=True),
        sa.Column("last_error", sa.String(500), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_webhook_deliveries")),
        sa.UniqueConstraint(
            "workspace_id",
            "endpoint_id",
            "idempotency_key",
            name=op.f("uq_webhook_deliveries_workspace_id_endpoint_id_idempotency_key"),
        ),
    )
    op.create_index(
        op.f("ix_webhook_deliveries_workspace_id_endpoint_id_id"),
        "webhook_deliveries",
        ["workspace_id", "endpoint_id", "id"],
    )
    op.create_index(
        op.f("ix_webhook_deliveries_workspace_id_idempotency_key"),
        "webhook_deliveries",
        ["workspace_id", "idempotency_key"],
    )
    op.create_table(
        "webhook_attempts",
        sa.Column("id", BigIntPK, primary_key=True, autoincrement=True),
        *_workspace("webhook_attempts"),
        sa.Column("delivery_id", sa.String(40), nullable=False),
        sa.ForeignKeyConstraint(
            ["delivery_id"],
            ["webhook_deliveries.id"],
            ondelete="CASCADE",
            name=op.f("fk_webhook_attempts_delivery_id_webhook_deliveries"),
        ),
        sa.Column("number", sa.Integer(), nullable=False),
        sa.Column("trigger", sa.String(12), nullable=False),
        sa.Column("at", UTCDateTime(), nullable=False),
        sa.Column("duration_ms", sa.Integer(), nullable=False),
        sa.Column("status_code", sa.Integer(), nullable=True),
        sa.Column("response_excerpt", sa.String(500), nullable=True),
        sa.Column("error", sa.String(500), nullable=True),
        sa.Column("succeeded", sa.Boolean(), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_webhook_attempts")),
    )
    op.create_index(
        op.f("ix_webhook_attempts_workspace_id_delivery_id_number"),
        "webhook_attempts",
        ["workspace_id", "delivery_id", "number"],
    )
    op.create_table(
        "push_vapid_keys",
        *_workspace("push_vapid_keys"),
        sa.Column("private_pem", sa.Text(), nullable=False),
        sa.Column("public_key", sa.String(100), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("workspace_id", name=op.f("pk_push_vapid_keys")),
    )
    op.create_table(
        "push_subscriptions",
        sa.Column("id", sa.String(40), nullable=False),
        *_workspace("push_subscriptions"),
        sa.Column("buyer_id", sa.String(40), nullable=True),
        sa.Column("user_id", sa.String(200), nullable=True),
        sa.Column("anonymous_id", sa.String(200), nullable=True),
        sa.Column("endpoint", sa.Text(), nullable=False),
        sa.Column("endpoint_hash", sa.String(64), nullable=False),
        sa.Column("p256dh", sa.String(100), nullable=False),
        sa.Column("auth", sa.String(40), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.Column("last_sent_at", UTCDateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_push_subscriptions")),
        sa.UniqueConstraint(
            "workspace_id", "endpoint_hash", name=op.f("uq_push_subscriptions_workspace_id_endpoint_hash")
        ),
    )
    for column in ("buyer_id", "user_id", "anonymous_id"):
        op.create_index(
            op.f(f"ix_push_subscriptions_workspace_id_{column}"),
            "push_subscriptions",
            ["workspace_id", column],
        )


def downgrade() -> None:
    op.drop_table("push_subscriptions")
    op.drop_table("push_vapid_keys")
    op.drop_table("webhook_attempts")
    op.drop_table("webhook_deliveries")
    op.drop_table("webhook_endpoints")
