"""Buyer features: applied to each committed event in the same transaction, read out at decision time."""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.orm import Session

from offerloop.core.cache import VersionedCache
from offerloop.core.clock import utcnow
from offerloop.features import repository
from offerloop.features.schemas import FeatureSpecRead
from offerloop.features.spec import FeatureSpec, StageFeature, load_feature_spec
from offerloop.features.state import FeatureEvent as FeatureEvent  # re-exported for the events domain
from offerloop.features.state import apply_event, new_state, read_features
from offerloop.workspaces import service as workspace_service

_specs: VersionedCache[FeatureSpec] = VersionedCache(max_size=1024)  # per workspace, its current version


def spec_for(session: Session, workspace_id: str) -> tuple[int, FeatureSpec]:
    return workspace_service.cached_config(session=session, workspace_id=workspace_id, field="feature_spec",
                                           cache=_specs, parse=load_feature_spec)  # fmt: skip


def spec_read(*, session: Session, workspace_id: str) -> FeatureSpecRead:
    version, spec = spec_for(session, workspace_id)
    return FeatureSpecRead(version=version, spec=spec.model_dump(mode="json"))


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
    current = repository.marked_states(session, workspace_id, touched)
    at = now or utcnow()
    out, marks, event_at, _ = _replay(session, workspace_id, rebuild_ids, spec)
    for buyer_id in touched - rebuild_ids:
        state, mark, _ = current.get(buyer_id) or (new_state(), 0, False)
        for event in sorted(per_buyer[buyer_id], key=lambda e: e.timestamp):
            state = apply_event(state, event, spec)
            event_at[buyer_id] = _later(event_at.get(buyer_id), event_time(event.timestamp, at))
        out[buyer_id], marks[buyer_id] = state, mark
    repository.save_states(
        session, workspace_id, out, marks, set(current), version, dict.fromkeys(out, at), event_at
    )
    return {buyer_id: read_features(state, spec, now=at) for buyer_id, state in out.items()}


def apply_log(
    *, session: Session, workspace_id: str, events: Iterable[tuple[str, int, datetime, FeatureEvent]]
) -> dict[str, dict[str, float | int | str | bool]]:
    """Fold logged events ``(buyer, seq, received_at, event)`` into their buyers' states, once each: an
    event at or below its buyer's watermark is skipped, a buyer flagged by a merge is rebuilt from all its
    stored events. Returns the features of each buyer whose state changed, read out at the latest
    ``received_at`` of its events (as ingestion read them when it applied a batch)."""
    return _save(session, workspace_id, plan_log(session=session, workspace_id=workspace_id, events=events))


@dataclass
class LogPlan:
    """:func:`apply_log`'s reads and computation, not yet written: what :func:`save_plan` writes if what it
    was computed from still holds."""

    version: int
    buyers: set[str]  # every buyer the events name
    gone: set[str]  # those merged away when it was read
    marks_read: dict[str, tuple[int, bool]]  # (applied seq, rebuild due) of the buyers with a row
    replayed: dict[str, list[int]]  # the stored events each buyer due for a rebuild was rebuilt from
    states: dict[str, dict[str, Any]]
    marks: dict[str, int]
    at: dict[str, datetime]
    event_at: dict[str, datetime | None]
    spec: FeatureSpec


def plan_log(
    *,
    session: Session,
    workspace_id: str,
    events: Iterable[tuple[str, int, datetime, FeatureEvent]],
) -> LogPlan:
    """Read and fold as :func:`apply_log` does, writing nothing."""
    version, spec = spec_for(session, workspace_id)
    per_buyer: dict[str, list[tuple[int, FeatureEvent]]] = defaultdict(list)
    at: dict[str, datetime] = {}
    received: dict[int, datetime] = {}
    for buyer_id, seq, received_at, event in events:
        per_buyer[buyer_id].append((seq, event))
        received[seq] = received_at
        if buyer_id not in at or received_at > at[buyer_id]:
            at[buyer_id] = received_at
    # A buyer merged away since its events were read: they are the winner's now, rebuilt with it.
    gone = repository.merged_away(session, workspace_id, per_buyer) if per_buyer else set()
    live = set(per_buyer) - gone
    current = repository.marked_states(session, workspace_id, live)
    due = {buyer_id for buyer_id, (_, _, flagged) in current.items() if flagged}
    out, marks, event_at, replayed = _replay(session, workspace_id, due, spec)
    for buyer_id in live - due:
        state, mark, _ = current.get(buyer_id) or (new_state(), 0, False)
        todo = [(seq, event) for seq, event in per_buyer[buyer_id] if seq > mark]
        if not todo:
            continue
        for seq, event in sorted(todo, key=lambda p: p[1].timestamp):
            state = apply_event(state, event, spec)
            event_at[buyer_id] = _later(event_at.get(buyer_id), event_time(event.timestamp, received[seq]))
        out[buyer_id], marks[buyer_id] = state, max(seq for seq, _ in todo)
    marks_read = {buyer_id: (mark, flagged) for buyer_id, (_, mark, flagged) in current.items()}
    return LogPlan(version, set(per_buyer), gone, marks_read, replayed, out, marks, at, event_at, spec)


def stale_buyers(*, session: Session, workspace_id: str, plan: LogPlan) -> set[str]:
    """The buyers of a plan made in an earlier transaction for whom what it read no longer holds: merged away
    (or back) since, their watermark or rebuild flag moved (every write of a buyer's state moves one of them,
    or deletes or makes its row), or — rebuilt in the plan from their stored events — those events changed
    (another merge into a still-flagged buyer). Every buyer when the spec's version changed."""
    if spec_for(session, workspace_id)[0] != plan.version:
        return set(plan.buyers)
    stale = repository.merged_away(session, workspace_id, plan.buyers) ^ plan.gone
    marks = repository.marks(session, workspace_id, plan.buyers - plan.gone)
    stale |= {b for b in plan.buyers - plan.gone if marks.get(b) != plan.marks_read.get(b)}
    if plan.replayed:
        now = repository.event_ids(session, workspace_id, plan.replayed)
        stale |= {b for b, seqs in plan.replayed.items() if now.get(b) != seqs}
    return stale


def plan_without(plan: LogPlan, buyers: set[str]) -> LogPlan:
    """The plan for its other buyers only (each buyer's part of a plan stands alone)."""

    def keep(d: dict[str, Any]) -> dict[str, Any]:
        return {b: v for b, v in d.items() if b not in buyers}

    return dataclasses.replace(
        plan, buyers=plan.buyers - buyers, gone=plan.gone - buyers, marks_read=keep(plan.marks_read),
        replayed=keep(plan.replayed), states=keep(plan.states), marks=keep(plan.marks), at=keep(plan.at),
        event_at=keep(plan.event_at),
    )  # fmt: skip


def save_plan(
    *, session: Session, workspace_id: str, plan: LogPlan
) -> dict[str, dict[str, float | int | str | bool]]:
    """Write a plan (made in this transaction, or without its :func:`stale_buyers`); the features of each
    buyer whose state changed, as :func:`apply_log` returns them."""
    return _save(session, workspace_id, plan)


def read_out(plan: LogPlan) -> dict[str, dict[str, float | int | str | bool]]:
    """The features :func:`save_plan` will return (on SQLite, where no merge interleaves with a write)."""
    return {
        buyer_id: read_features(state, plan.spec, now=plan.at[buyer_id])
        for buyer_id, state in plan.states.items()
    }


def _save(
    session: Session, workspace_id: str, plan: LogPlan
) -> dict[str, dict[str, float | int | str | bool]]:
    existing = set(plan.marks_read)
    repository.save_states(
        session, workspace_id, plan.states, plan.marks, existing, plan.version, plan.at, plan.event_at
    )
    gone = repository.forget_merged_away(session, workspace_id, set(plan.states) - existing)
    return {buyer_id: features for buyer_id, features in read_out(plan).items() if buyer_id not in gone}


def merged(*, session: Session, workspace_id: str, winners: Iterable[str], losers: list[str]) -> None:
    """Identity resolution folded ``losers`` into ``winners``: the losers' state goes, and each winner's
    is rebuilt from all its stored events the next time its events are applied."""
    if losers:
        version, _ = spec_for(session, workspace_id)
        repository.forget_merged(session, workspace_id, losers, version, new_state(), utcnow())
    rebuild_on_apply(session=session, workspace_id=workspace_id, buyer_ids=set(winners) - set(losers))


def rebuild_on_apply(*, session: Session, workspace_id: str, buyer_ids: Iterable[str]) -> None:
    """Rebuild these buyers' state from all their stored events the next time their events are applied: for an
    event that arrives behind a buyer's watermark and must still count (a parked event replayed)."""
    version, _ = spec_for(session, workspace_id)
    repository.mark_rebuild(session, workspace_id, set(buyer_ids), version, new_state(), utcnow())


def event_time(timestamp: datetime, received_at: datetime) -> datetime:
    """When an event happened, for windows by event time: its own (skew-corrected) timestamp, but never after
    it was received — a client clock claiming the future would otherwise keep it in "now" forever."""
    stamp = timestamp if timestamp.tzinfo is not None else timestamp.replace(tzinfo=UTC)
    return min(stamp, received_at)


def _later(a: datetime | None, b: datetime) -> datetime:
    return b if a is None or b > a else a


def _replay(
    session: Session, workspace_id: str, buyer_ids: set[str], spec: FeatureSpec
) -> tuple[dict[str, dict[str, Any]], dict[str, int], dict[str, datetime | None], dict[str, list[int]]]:
    """Each buyer's state rebuilt from all its stored events, the highest seq and the latest (bounded) event
    time it includes, and the seqs of those events (in seq order)."""
    states: dict[str, dict[str, Any]] = {buyer_id: new_state() for buyer_id in buyer_ids}
    marks: dict[str, int] = dict.fromkeys(buyer_ids, 0)
    times: dict[str, datetime | None] = dict.fromkeys(buyer_ids)
    seqs: dict[str, list[int]] = {buyer_id: [] for buyer_id in buyer_ids}
    if not buyer_ids:
        return states, marks, times, seqs
    for event, channel in repository.events_for_replay(session, workspace_id, buyer_ids):
        buyer_id = str(event.buyer_id)
        states[buyer_id] = apply_event(states[buyer_id], to_feature_event(event, channel), spec)
        marks[buyer_id] = max(marks[buyer_id], event.id)
        times[buyer_id] = _later(times[buyer_id], event_time(event.timestamp, event.received_at))
        seqs[buyer_id].append(event.id)
    return states, marks, times, {buyer_id: sorted(ids) for buyer_id, ids in seqs.items()}


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
    features = read_features(state, spec, now=now or utcnow())
    # batch model scores (analytics' LTV fit: ltv_p_alive, ...) are features too; a spec feature keeps its name
    for name, value in repository.scores(session, workspace_id, buyer_id).items():
        features.setdefault(name, value)
    return features


def replace_scores(
    *,
    session: Session,
    workspace_id: str,
    names: list[str],
    rows: Iterable[tuple[str, str, float]],
    now: datetime | None = None,
) -> None:
    """Replace the batch scores named ``names`` by ``rows`` (buyer_id, name, value); read back by :func:`read`."""
    repository.replace_scores(session, workspace_id, names, rows, now or utcnow())


def features_updated(
    *, session: Session, workspace_id: str, start: datetime, end: datetime, limit: int
) -> list[tuple[dict[str, float | int | str | bool], datetime]]:
    """The features of the ``limit`` buyers whose latest event (by event time, bounded by its receipt: see
    :func:`event_time`) is most recent in [start, end), each read out at that time (read at "now", every
    earlier buyer would look idle): for drift windows."""
    _, spec = spec_for(session, workspace_id)
    return [(read_features(state, spec, now=at), at)
            for state, at in repository.states_updated(session, workspace_id, start, end, limit)]  # fmt: skip


def iter_features(
    *, session: Session, workspace_id: str, now: datetime | None = None
) -> Iterator[tuple[str, dict[str, float | int | str | bool]]]:
    """Every buyer's features read out at ``now`` (for persona discovery and analytics)."""
    _, spec = spec_for(session, workspace_id)
    at = now or utcnow()
    for buyer_id, state in repository.iter_states(session, workspace_id):
        yield buyer_id, read_features(state, spec, now=at)


def set_spec(*, session: Session, workspace_id: str, source: str | dict[str, Any] | None, actor: str) -> int:
    """Validate and store the workspace's feature definitions; returns the new version.

    An invalid spec raises :class:`~offerloop.features.exceptions.InvalidFeatureSpec` (422).
    """
    spec = load_feature_spec(source)
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
