"""Tenants and their API keys."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, Integer, String
from sqlalchemy.orm import Mapped, mapped_column

from offerloop.db.base import Base
from offerloop.db.types import JSONType, UTCDateTime


class Workspace(Base):
    __tablename__ = "workspaces"

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    # Signal weighting rules (events.signals), stored as validated JSON; None means built-in defaults.
    # The declarative configs are deferred: the hot paths read only their versions and load a config
    # once per process per version (see each domain's cache).
    signal_config: Mapped[dict[str, Any] | None] = mapped_column(JSONType, nullable=True, deferred=True)
    signal_config_version: Mapped[int] = mapped_column(Integer, default=0)
    # Declarative feature definitions (features.spec) and persona templates (personas.templates).
    feature_spec: Mapped[dict[str, Any] | None] = mapped_column(JSONType, nullable=True, deferred=True)
    feature_spec_version: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    persona_templates: Mapped[dict[str, Any] | None] = mapped_column(JSONType, nullable=True, deferred=True)
    persona_templates_version: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # The deliverables' look (assembly.document.Theme fields); None means the default theme.
    theme: Mapped[dict[str, Any] | None] = mapped_column(JSONType, nullable=True, deferred=True)
    theme_version: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    # The offers catalog as loaded ({"source": YAML}); parsed once per process per version.
    offers_catalog: Mapped[dict[str, Any] | None] = mapped_column(JSONType, nullable=True, deferred=True)
    offers_catalog_version: Mapped[int] = mapped_column(Integer, default=0, server_default="0")


class ApiKey(Base):
    """A write key (ingest only, public) or a secret key (full API); only a SHA-256 hash is kept."""

    __tablename__ = "api_keys"
    __table_args__ = (Index(None, "workspace_id"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    workspace_id: Mapped[str] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(16))
    name: Mapped[str] = mapped_column(String(200), default="")
    prefix: Mapped[str] = mapped_column(String(16))
    key_hash: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class ServerSecret(Base):
    """A secret generated for this database at its first migration (signs download links when no
    OFFERLOOP_SECRET is configured), so a default install has no secret anyone else knows."""

    __tablename__ = "server_secrets"

    name: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
