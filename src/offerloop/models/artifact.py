"""Personalized deliverables: the artifact, its versions (with provenance and review), files and atom use."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, Integer, LargeBinary, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from offerloop.db.base import Base
from offerloop.db.types import BigIntPK, JSONType, UTCDateTime


class Artifact(Base):
    """A deliverable for one buyer from one policy; regenerating it adds a version."""

    __tablename__ = "artifacts"
    __table_args__ = (Index(None, "workspace_id", "buyer_id"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    workspace_id: Mapped[str] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    buyer_id: Mapped[str] = mapped_column(String(40))
    policy_id: Mapped[str] = mapped_column(String(120))
    current_version: Mapped[int] = mapped_column(Integer, default=1)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class ArtifactVersion(Base):
    """One composition of an artifact: its document, provenance, status, review and changelog line."""

    __tablename__ = "artifact_versions"
    __table_args__ = (
        UniqueConstraint("workspace_id", "artifact_id", "version"),
        Index(None, "workspace_id", "status"),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    workspace_id: Mapped[str] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    artifact_id: Mapped[str] = mapped_column(ForeignKey("artifacts.id", ondelete="CASCADE"))
    version: Mapped[int] = mapped_column(Integer)
    # queued -> rendering -> awaiting_review | ready ; rejected ; failed (with error) ; superseded (a newer
    # version replaced it before it was ready or reviewed)
    status: Mapped[str] = mapped_column(String(20))
    document: Mapped[dict[str, Any]] = mapped_column(JSONType)
    provenance: Mapped[dict[str, Any]] = mapped_column(JSONType)
    preview_html: Mapped[str] = mapped_column(Text)
    changelog: Mapped[str] = mapped_column(Text)
    review_reason: Mapped[str | None] = mapped_column(String(200), nullable=True)
    reviewer: Mapped[str | None] = mapped_column(String(200), nullable=True)
    review_note: Mapped[str | None] = mapped_column(Text, nullable=True)
    reviewed_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    rendered_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class ArtifactFile(Base):
    """A rendering of one artifact version (pdf, html, email, markdown)."""

    __tablename__ = "artifact_files"
    __table_args__ = (UniqueConstraint("workspace_id", "artifact_id", "version", "format"),)

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    workspace_id: Mapped[str] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    artifact_id: Mapped[str] = mapped_column(ForeignKey("artifacts.id", ondelete="CASCADE"))
    version: Mapped[int] = mapped_column(Integer)
    format: Mapped[str] = mapped_column(String(16))
    media_type: Mapped[str] = mapped_column(String(80))
    sha256: Mapped[str] = mapped_column(String(64))
    size: Mapped[int] = mapped_column(Integer)
    pages: Mapped[int | None] = mapped_column(Integer, nullable=True)
    content: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class AtomUse(Base):
    """Which atom versions an artifact version used: answers "what must be regenerated when X changes"."""

    __tablename__ = "atom_uses"
    __table_args__ = (Index(None, "workspace_id", "atom_id"), Index(None, "artifact_id", "version"))

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    workspace_id: Mapped[str] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    artifact_id: Mapped[str] = mapped_column(ForeignKey("artifacts.id", ondelete="CASCADE"))
    version: Mapped[int] = mapped_column(Integer)
    atom_id: Mapped[str] = mapped_column(String(120))
    atom_version: Mapped[str] = mapped_column(String(32))
