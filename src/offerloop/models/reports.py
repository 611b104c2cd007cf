"""Snapshots of the reports too heavy to compute on every view (attribution, cohorts, LTV fits, persona velocity,
the decisions' evaluation), one per workspace, kind and parameters."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import Float, ForeignKey, Index, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from offerloop.db.base import Base
from offerloop.db.types import JSONType, UTCDateTime


class ReportSnapshot(Base):
    """The last computed result of one report: ``body`` is the result's JSON (or ``error`` the domain error
    it raised), ``compute_s`` how long it took — which decides whether the next view computes it again
    inline or shows this one while a job refreshes it. ``viewed_at``: when a view last showed it (kept
    coarsely: see ``reports.service.VIEW_MARK_S``); one neither computed nor viewed for
    ``report_snapshot_keep_s`` is pruned."""

    __tablename__ = "report_snapshots"
    __table_args__ = (
        UniqueConstraint("workspace_id", "kind", "key"),
        Index(None, "computed_at"),  # the prune's scan, across workspaces
    )

    id: Mapped[int] = mapped_column(primary_key=True, autoincrement=True)
    workspace_id: Mapped[str] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(32))
    key: Mapped[str] = mapped_column(String(64))
    params: Mapped[dict[str, Any]] = mapped_column(JSONType)
    body: Mapped[dict[str, Any] | None] = mapped_column(JSONType, nullable=True)
    error: Mapped[dict[str, Any] | None] = mapped_column(JSONType, nullable=True)
    compute_s: Mapped[float] = mapped_column(Float)
    computed_at: Mapped[datetime] = mapped_column(UTCDateTime())
    viewed_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
