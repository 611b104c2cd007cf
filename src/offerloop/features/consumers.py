"""Buyer-stage consumer of the event log: features, then personas, of every buyer a batch touches."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from offerloop.core.touchpoints import touch_channel
from offerloop.features import service as features_service
from offerloop.personas import service as persona_service
from offerloop.pipeline.registry import LogEvent, consumer


def replay_features(session: Session, workspace_id: str, events: Sequence[LogEvent]) -> None:
    """A parked event replayed lies behind its buyer's watermark (the buyer's later events went on): the buyer
    is rebuilt from every stored event, this one included, instead of the event being skipped."""
    features_service.rebuild_on_apply(
        session=session, workspace_id=workspace_id, buyer_ids={e.buyer_id for e in events if e.buyer_id}
    )
    apply_features(session, workspace_id, events)


def _items(events: Sequence[LogEvent]) -> tuple[list[Any], dict[str, datetime]]:
    """The batch as ``features.apply_log`` takes it, and each buyer's latest event time."""
    items = []
    latest: dict[str, datetime] = {}
    for e in events:
        buyer_id = e.buyer_id
        if buyer_id is None:  # not resolved yet: the identity stage runs first, so this is never read
            continue
        channel = touch_channel(e.type, e.properties, e.context)
        items.append((buyer_id, e.seq, e.received_at, features_service.to_feature_event(e, channel)))
        if buyer_id not in latest or e.timestamp > latest[buyer_id]:
            latest[buyer_id] = e.timestamp
    return items, latest


@dataclass
class Plan:
    """The features of a batch folded, and its buyers' personas inferred, before the write transaction."""

    features: features_service.LogPlan
    personas: persona_service.RefreshPlan | None


def prepare_features(session: Session, workspace_id: str, events: Sequence[LogEvent]) -> Plan | None:
    """Everything :func:`apply_features` reads and computes, in a read transaction (outside SQLite's writer
    lock); None for a batch without a resolved event."""
    items, latest = _items(events)
    if not items:
        return None
    plan = features_service.plan_log(session=session, workspace_id=workspace_id, events=items)
    features = features_service.read_out(plan)
    personas = None
    if features:
        at = {buyer_id: latest[buyer_id] for buyer_id in features}
        personas = persona_service.plan_refresh(
            session=session, workspace_id=workspace_id, features=features, at=at
        )
    return Plan(plan, personas)


def apply_prepared(session: Session, workspace_id: str, events: Sequence[LogEvent], plan: Plan) -> None:
    """Write what :func:`prepare_features` computed for the buyers whose reads still hold, and apply the events
    of the others afresh (a merge or a rebuild committed since touched them). Both halves are checked first:
    a buyer stale in either is redone whole."""
    stale = features_service.stale_buyers(session=session, workspace_id=workspace_id, plan=plan.features)
    personas = plan.personas
    if personas is not None:
        stale |= persona_service.stale_buyers(session=session, workspace_id=workspace_id, plan=personas)
    features = plan.features
    if stale:
        features = features_service.plan_without(features, stale)
        personas = None if personas is None else persona_service.refresh_without(personas, stale)
    features_service.save_plan(session=session, workspace_id=workspace_id, plan=features)
    if personas is not None:
        persona_service.save_refresh(session=session, workspace_id=workspace_id, plan=personas)
    if stale:
        apply_features(session, workspace_id, [e for e in events if e.buyer_id in stale])


@consumer(
    "features",
    stage="buyer",
    order=10,
    replay=replay_features,
    prepare=prepare_features,
    apply=apply_prepared,
)
def apply_features(session: Session, workspace_id: str, events: Sequence[LogEvent]) -> None:
    """Fold the batch into each buyer's features (once per event, by the buyer's watermark) and refresh
    the persona of every buyer whose features changed."""
    items, latest = _items(events)
    features = features_service.apply_log(session=session, workspace_id=workspace_id, events=items)
    if features:
        at = {buyer_id: latest[buyer_id] for buyer_id in features}
        persona_service.refresh(session=session, workspace_id=workspace_id, features=features, at=at)
