"""Buyer features: applied to each committed event in the same transaction, read out at decision time."""

from __future__ import annotations

import threading
from collections import defaultdict
from collections.abc import Iterable, Iterator
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from offerloop.core.clock import utcnow
from offerloop.features import repository
from offerloop.features.exceptions import InvalidFeatureSpec
from offerloop.features.spec import FeatureSpec, StageFeature, load_feature_spec
from offerloop.features.state import FeatureEvent as FeatureEvent  # re-exported for the events domain
from offerloop.features.state import apply_event, new_state, read_features
from offerloop.workspaces import service as workspace_service

_specs: dict[tuple[str, int], FeatureSpec] = {}
_lock = threading.Lock()


def spec_for(session: Session, workspace_id: str) -> tuple[int, FeatureSpec]:
    ws = workspace_service.get_workspace(session=session, workspace_id=workspace_id)
    key = (workspace_id, ws.feature_spec_version)
    spec = _specs.get(key)
    if spec is None:
        spec = load_feature_spec(ws.feature_spec)
        with _lock:
            _specs[key] = spec
    return ws.feature_spec_version, spec


def apply_events(
    *,
    session: Session,
    workspace_id: str,
    events: Iterable[tuple[str, FeatureEvent]],
    rebuild: Iterable[str] = (),
    now: datetime | None = None,
) -> dict[str, dict[str, float | int | str | bool]]:
    """Fold new events into their buyers' feature states; buyers in ``rebuild`` (just merged) are replayed
    from their stored events instead. Returns every touched buyer's features read out at ``now``."""
    version, spec = spec_for(session, workspace_id)
    per_buyer: dict[str, list[FeatureEvent]] = defaultdict(list)
    for buyer_id, event in events:
        per_buyer[buyer_id].append(event)
    rebuild_ids = set(rebuild)
    touched = set(per_buyer) | rebuild_ids
    if not touched:
        return {}
    current = repository.states(session, workspace_id, touched)
    out: dict[str, dict[str, Any]] = {}
    for buyer_id in touched:
        if buyer_id in rebuild_ids:
            out[buyer_id] = _replay(session, workspace_id, buyer_id, spec)
            continue
        state = current.get(buyer_id) or new_state()
        for event in sorted(per_buyer[buyer_id], key=lambda e: e.timestamp):
            state = apply_event(state, event, spec)
        out[buyer_id] = state
    at = now or utcnow()
    repository.save_states(session, workspace_id, out, set(current), version, at)
    return {buyer_id: read_features(state, spec, now=at) for buyer_id, state in out.items()}


def _replay(session: Session, workspace_id: str, buyer_id: str, spec: FeatureSpec) -> dict[str, Any]:
    state = new_state()
    for event, channel in repository.events_for_replay(session, workspace_id, buyer_id):
        state = apply_event(state, to_feature_event(event, channel), spec)
    return state


def to_feature_event(event: Any, channel: str | None) -> FeatureEvent:
    return FeatureEvent(
        type=event.type,
        name=event.name,
        timestamp=event.timestamp,
        properties=_identify_facts(event) if event.type == "identify" else (event.properties or {}),
        context=event.context or {},
        weight=event.weight,
        confidence=event.confidence,
        suppressed=event.suppressed,
        high_signal=event.high_signal,
        channel=channel,
    )


def _identify_facts(event: Any) -> dict[str, Any]:
    """As at ingest: an identify's traits over its context.traits."""
    context_traits = (event.context or {}).get("traits")
    return {**(context_traits if isinstance(context_traits, dict) else {}), **(event.traits or {})}


def rebuild(
    *, session: Session, workspace_id: str, buyer_ids: Iterable[str]
) -> dict[str, dict[str, float | int | str | bool]]:
    return apply_events(session=session, workspace_id=workspace_id, events=(), rebuild=buyer_ids)


def forget(*, session: Session, workspace_id: str, buyer_ids: list[str]) -> None:
    repository.forget(session, workspace_id, buyer_ids)


def read(
    *, session: Session, workspace_id: str, buyer_id: str, now: datetime | None = None
) -> dict[str, float | int | str | bool]:
    """The buyer's features as of ``now`` (decayed values are evaluated at read time)."""
    _, spec = spec_for(session, workspace_id)
    state = repository.states(session, workspace_id, [buyer_id]).get(buyer_id) or new_state()
    return read_features(state, spec, now=now or utcnow())


def iter_features(
    *, session: Session, workspace_id: str, now: datetime | None = None
) -> Iterator[tuple[str, dict[str, float | int | str | bool]]]:
    """Every buyer's features read out at ``now`` (for persona discovery and analytics)."""
    _, spec = spec_for(session, workspace_id)
    at = now or utcnow()
    for buyer_id, state in repository.iter_states(session, workspace_id):
        yield buyer_id, read_features(state, spec, now=at)


def set_spec(*, session: Session, workspace_id: str, source: str | dict[str, Any] | None, actor: str) -> int:
    """Validate and store the workspace's feature definitions; returns the new version."""
    try:
        spec = load_feature_spec(source)
    except ValueError as exc:  # pydantic's ValidationError is a ValueError
        raise InvalidFeatureSpec(str(exc), details=str(exc).splitlines()) from exc
    version = workspace_service.set_config(
        session=session,
        workspace_id=workspace_id,
        field="feature_spec",
        value=spec.model_dump(mode="json") if source else None,
    )
    workspace_service.audit(
        session, workspace_id, actor=actor, action="features.update", target_type="workspace",
        target_id=workspace_id, details={"version": version},
    )  # fmt: skip
    return version


def stage_order(*, session: Session, workspace_id: str) -> list[str]:
    """The outcome stages of the workspace's spec, lowest first (empty when it defines none)."""
    _, spec = spec_for(session, workspace_id)
    for feature in spec.features:
        if isinstance(feature, StageFeature):
            return [stage.name for stage in feature.stages]
    return []
