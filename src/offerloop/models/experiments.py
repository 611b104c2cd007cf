"""A/B/n experiments (their arms, metrics and guardrails) and the exposures: each buyer's arm, fixed at
their first exposure."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import ForeignKey, Index, String
from sqlalchemy.orm import Mapped, mapped_column

from offerloop.db.base import Base
from offerloop.db.types import JSONType, UTCDateTime


class Experiment(Base):
    """One experiment on an offer, a variant, a journey or a decision policy. ``arms`` keeps the weights as
    planned now; an exposure keeps the arm a buyer got, so a change of weights moves no one."""

    __tablename__ = "experiments"
    # the decide path's check for a policy experiment on a placement (see decisions.repository)
    __table_args__ = (Index(None, "workspace_id", "subject", "subject_id"),)

    workspace_id: Mapped[str] = mapped_column(
        ForeignKey("workspaces.id", ondelete="CASCADE"), primary_key=True
    )
    key: Mapped[str] = mapped_column(String(120), primary_key=True)
    name: Mapped[str] = mapped_column(String(200))
    subject: Mapped[str] = mapped_column(String(16))  # offer | variant | journey | policy
    subject_id: Mapped[str] = mapped_column(String(200))
    arms: Mapped[list[dict[str, Any]]] = mapped_column(JSONType)  # [{key, weight, value}], control first
    metrics: Mapped[dict[str, Any]] = mapped_column(JSONType)
    guardrails: Mapped[list[dict[str, Any]]] = mapped_column(JSONType)
    status: Mapped[str] = mapped_column(String(12))  # running | paused | stopped
    starts_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    ends_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class Exposure(Base):
    """A buyer's first exposure to an experiment: the arm they were assigned and when."""

    __tablename__ = "experiment_exposures"
    __table_args__ = (Index(None, "workspace_id", "experiment_key", "exposed_at"),)

    workspace_id: Mapped[str] = mapped_column(
        ForeignKey("workspaces.id", ondelete="CASCADE"), primary_key=True
    )
    experiment_key: Mapped[str] = mapped_column(String(120), primary_key=True)
    buyer_id: Mapped[str] = mapped_column(String(40), primary_key=True)
    arm: Mapped[str] = mapped_column(String(64))
    exposed_at: Mapped[datetime] = mapped_column(UTCDateTime())
