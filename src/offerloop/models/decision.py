"""The action catalog, the decision log with propensities and rewards, and policy snapshots."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Boolean, Float, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from offerloop.db.base import Base
from offerloop.db.types import BigIntPK, JSONType, UTCDateTime


class Action(Base):
    """Something offerloop can recommend: a lesson, module, offer, coaching slot or in-product prompt."""

    __tablename__ = "actions"
    __table_args__ = (UniqueConstraint("workspace_id", "key"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    workspace_id: Mapped[str] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    key: Mapped[str] = mapped_column(String(120))
    kind: Mapped[str] = mapped_column(String(16))
    title: Mapped[str] = mapped_column(String(300))
    # Model features and rule inputs: tags, level, format, price_band, persona_fit, placements,
    # prerequisites, min_stage, frequency_cap, requires, completed_when (see decisions.schemas).
    attributes: Mapped[dict[str, Any]] = mapped_column(JSONType)
    # Which event means success, its value, and within which window.
    outcome: Mapped[dict[str, Any]] = mapped_column(JSONType)
    priority: Mapped[int] = mapped_column(Integer, default=0)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class Decision(Base):
    """One answer of /v1/decide, logged with the propensity of what was shown and the outcome it should move."""

    __tablename__ = "decisions"
    __table_args__ = (
        Index(None, "workspace_id", "buyer_id", "created_at"),
        Index(None, "workspace_id", "placement", "reward_at"),
        Index(None, "workspace_id", "window_ends_at"),
        Index(None, "workspace_id", "created_at"),  # health: reward rate by day
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    workspace_id: Mapped[str] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    buyer_id: Mapped[str | None] = mapped_column(String(40), nullable=True)
    placement: Mapped[str] = mapped_column(String(64))
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    policy: Mapped[str] = mapped_column(String(32))  # model | rules (holdout, no consent, cold model)
    holdout: Mapped[bool] = mapped_column(Boolean)
    model_version: Mapped[int] = mapped_column(Integer)
    persona: Mapped[str | None] = mapped_column(String(64), nullable=True)
    persona_confidence: Mapped[float | None] = mapped_column(Float, nullable=True)
    # What the model saw and what it answered (items with score, propensity, reasons).
    context: Mapped[dict[str, Any]] = mapped_column(JSONType)
    candidates: Mapped[list[dict[str, Any]]] = mapped_column(JSONType)
    items: Mapped[list[dict[str, Any]]] = mapped_column(JSONType)
    excluded: Mapped[list[dict[str, Any]]] = mapped_column(JSONType)
    chosen_key: Mapped[str | None] = mapped_column(String(120), nullable=True)
    chosen_index: Mapped[int | None] = mapped_column(Integer, nullable=True)
    propensity: Mapped[float | None] = mapped_column(Float, nullable=True)
    outcome_event: Mapped[str | None] = mapped_column(String(255), nullable=True)
    window_ends_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    reward: Mapped[float | None] = mapped_column(Float, nullable=True)
    reward_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    reward_source: Mapped[str | None] = mapped_column(String(255), nullable=True)  # message id, or "default"
    learned_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    # A policy experiment on the placement: its key and the buyer's arm (which chose the policy).
    experiment_key: Mapped[str | None] = mapped_column(String(120), nullable=True)
    experiment_arm: Mapped[str | None] = mapped_column(String(64), nullable=True)


class PolicySnapshot(Base):
    """A versioned model for one workspace and placement; servers load the newest without a restart."""

    __tablename__ = "policy_snapshots"
    __table_args__ = (UniqueConstraint("workspace_id", "placement", "version"),)

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    workspace_id: Mapped[str] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    placement: Mapped[str] = mapped_column(String(64))
    version: Mapped[int] = mapped_column(Integer)
    kind: Mapped[str] = mapped_column(String(32))
    payload: Mapped[dict[str, Any]] = mapped_column(JSONType)
    rewards_learned: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    note: Mapped[str | None] = mapped_column(Text, nullable=True)
