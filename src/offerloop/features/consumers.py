"""Buyer-stage consumer of the event log: features, then personas, of every buyer a batch touches."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime

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


@consumer("features", stage="buyer", order=10, replay=replay_features)
def apply_features(session: Session, workspace_id: str, events: Sequence[LogEvent]) -> None:
    """Fold the batch into each buyer's features (once per event, by the buyer's watermark) and refresh
    the persona of every buyer whose features changed."""
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
    features = features_service.apply_log(session=session, workspace_id=workspace_id, events=items)
    if features:
        at = {buyer_id: latest[buyer_id] for buyer_id in features}
        persona_service.refresh(session=session, workspace_id=workspace_id, features=features, at=at)
