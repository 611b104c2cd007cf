"""The content corpus (atoms, every version kept), intake quizzes and composition policies."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, ForeignKey, Index, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from offerloop.db.base import Base
from offerloop.db.types import BigIntPK, JSONType, UTCDateTime


class ContentAtom(Base):
    """One version of one atom. A changed atom adds a row; the old one stays readable (provenance)."""

    __tablename__ = "content_atoms"
    __table_args__ = (
        UniqueConstraint("workspace_id", "atom_id", "version"),
        Index(None, "workspace_id", "current"),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    workspace_id: Mapped[str] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    atom_id: Mapped[str] = mapped_column(String(120))
    version: Mapped[str] = mapped_column(String(32))  # content hash
    title: Mapped[str] = mapped_column(String(300))
    kind: Mapped[str] = mapped_column(String(16))
    # tags, level, persona_fit, outcome, minutes, source, licence, ai_rewrite, path
    meta: Mapped[dict[str, Any]] = mapped_column(JSONType)
    body: Mapped[str] = mapped_column(Text)
    current: Mapped[bool] = mapped_column(Boolean, default=True)  # the version new artifacts use
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    retired_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)


class QuizDefinition(Base):
    __tablename__ = "quizzes"
    __table_args__ = (UniqueConstraint("workspace_id", "quiz_id", "version"),)

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    workspace_id: Mapped[str] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    quiz_id: Mapped[str] = mapped_column(String(120))
    version: Mapped[str] = mapped_column(String(32))
    source: Mapped[str] = mapped_column(Text)  # the YAML as given
    current: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())


class CompositionPolicy(Base):
    __tablename__ = "composition_policies"
    __table_args__ = (UniqueConstraint("workspace_id", "policy_id", "version"),)

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    workspace_id: Mapped[str] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    policy_id: Mapped[str] = mapped_column(String(120))
    version: Mapped[str] = mapped_column(String(32))
    source: Mapped[str] = mapped_column(Text)
    # events that generate this deliverable for the buyer, e.g. [{"event": "Quiz Completed"}]
    triggers: Mapped[list[dict[str, Any]]] = mapped_column(JSONType, default=list)
    current: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
