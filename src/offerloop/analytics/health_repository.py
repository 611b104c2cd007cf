"""Every SQL statement of model and data health: read-only, each scoped by its workspace."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

from sqlalchemy import func
from sqlalchemy.orm import Session

from offerloop.db.scoped import scoped_select
from offerloop.models import BuyerFeatures, BuyerPersona, Decision


def decision_outcomes(
    session: Session, workspace_id: str, placement: str | None, start: datetime, end: datetime
) -> Iterator[Any]:
    """(placement, created_at, policy, holdout, model_version, reward, reward_at) of the decisions made in
    [start, end)."""
    stmt = scoped_select(
        Decision, workspace_id, Decision.placement, Decision.created_at, Decision.policy, Decision.holdout,
        Decision.model_version, Decision.reward, Decision.reward_at,
    ).where(Decision.created_at >= start, Decision.created_at < end)  # fmt: skip
    if placement is not None:
        stmt = stmt.where(Decision.placement == placement)
    yield from session.execute(stmt.execution_options(yield_per=5000))


def persona_counts(session: Session, workspace_id: str, start: datetime, end: datetime) -> dict[str, int]:
    """Buyers per current persona, of the buyers whose latest event (``buyer_features.event_at``, the bounded
    event time) is in [start, end): the same buyers as the feature drift's window."""
    stmt = (
        scoped_select(BuyerPersona, workspace_id, BuyerPersona.persona, func.count())
        .join(
            BuyerFeatures,
            (BuyerFeatures.workspace_id == BuyerPersona.workspace_id)
            & (BuyerFeatures.buyer_id == BuyerPersona.buyer_id),
        )
        .where(BuyerFeatures.event_at >= start, BuyerFeatures.event_at < end)
        .group_by(BuyerPersona.persona)
    )
    return {persona: int(n) for persona, n in session.execute(stmt)}
