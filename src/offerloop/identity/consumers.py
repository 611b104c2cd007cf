"""Identity stage of the event log: each new event gets its buyer (resolving and merging identities as
ingestion did inline), its partition, and its marketing touchpoint."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy.orm import Session

from offerloop.core.touchpoints import TouchpointData, touchpoint_of
from offerloop.db.uow import after_commit
from offerloop.features import service as features_service
from offerloop.identity import service as identity_service
from offerloop.personas import service as persona_service
from offerloop.pipeline.log import partition_of
from offerloop.pipeline.registry import LogEvent, consumer
from offerloop.pipeline.runner import partitions_for
from offerloop.telemetry import CONFLICTS, MERGES


def _incoming(e: LogEvent) -> identity_service.IncomingEvent:
    return identity_service.IncomingEvent(
        type=e.type,
        message_id=e.message_id,
        user_id=e.user_id,
        anonymous_id=e.anonymous_id,
        previous_id=e.previous_id,
        traits=identity_service.profile_traits(e.traits if e.type == "identify" else None, e.context),
        context=e.context,
        timestamp=e.timestamp,
    )


def _touchpoint(
    workspace_id: str, e: LogEvent, tp: TouchpointData | None, buyer_id: str, created: bool
) -> tuple[Any, ...] | None:
    """The row to keep for this event's touch ``tp``: every campaign/referral touch is kept; a plain direct
    visit only as a new buyer's first touch."""
    if tp is None or (tp.channel == "direct" and not created):
        return None
    return (
        workspace_id, buyer_id, e.seq, e.timestamp, tp.channel, tp.source, tp.medium, tp.campaign, tp.content,
        tp.term, tp.click_id_type, tp.click_id, tp.referrer_host, tp.landing_url, list(tp.flags),
    )  # fmt: skip


@dataclass
class Prepared:
    """What the identity stage computes from a batch's unassigned events alone (no stored state): their
    identifiers and profile traits, and their parsed touchpoints — done before the write transaction."""

    incoming: list[identity_service.IncomingEvent]
    touches: list[TouchpointData | None]


def _prepared(events: Sequence[LogEvent]) -> Prepared:
    fresh = [e for e in events if e.buyer_id is None]
    # touchpoint_of is memoised: a buyer's events repeat their page
    return Prepared(
        [_incoming(e) for e in fresh], [touchpoint_of(e.type, e.properties, e.context) for e in fresh]
    )


def prepare_identities(session: Session, workspace_id: str, events: Sequence[LogEvent]) -> Prepared | None:
    """Outside SQLite's writer lock: what depends on the events alone (the step checks they are unchanged)."""
    return _prepared(events) if any(e.buyer_id is None for e in events) else None


def apply_prepared(session: Session, workspace_id: str, events: Sequence[LogEvent], plan: Prepared) -> None:
    _resolve(session, workspace_id, events, plan)


@consumer("identity", stage="identity", order=10, prepare=prepare_identities, apply=apply_prepared)
def resolve_identities(session: Session, workspace_id: str, events: Sequence[LogEvent]) -> None:
    """Resolve the batch's unassigned events in log order; an event that already has its buyer was done."""
    _resolve(session, workspace_id, events, _prepared(events))


def _resolve(session: Session, workspace_id: str, events: Sequence[LogEvent], plan: Prepared) -> None:
    fresh = [e for e in events if e.buyer_id is None]
    if not fresh:
        return
    partitions = partitions_for(session, workspace_id)
    resolution = identity_service.resolve(session=session, workspace_id=workspace_id, events=plan.incoming)
    identity_service.assign_events(
        session=session,
        workspace_id=workspace_id,
        assignments=[
            (e.seq, buyer_id, partition_of(buyer_id, partitions))
            for e, buyer_id in zip(fresh, resolution.buyer_ids, strict=True)
        ],
    )
    # "New buyer" is known only here, during resolution, so the touchpoints are recorded here too.
    touchpoints = [
        row
        for e, tp, buyer_id, created in zip(
            fresh, plan.touches, resolution.buyer_ids, resolution.new_buyer, strict=True
        )
        if (row := _touchpoint(workspace_id, e, tp, buyer_id, created)) is not None
    ]
    identity_service.add_touchpoints(session=session, rows=touchpoints)
    if resolution.merged_pairs:
        losers = [loser for _, loser in resolution.merged_pairs]
        features_service.merged(
            session=session,
            workspace_id=workspace_id,
            winners=[winner for winner, _ in resolution.merged_pairs],
            losers=losers,
        )
        persona_service.forget(session=session, workspace_id=workspace_id, buyer_ids=losers)
    merges, conflicts = resolution.merges, resolution.conflicts
    if merges or conflicts:

        def count() -> None:  # once committed: a rolled-back step is retried and would count twice
            MERGES.inc(merges)
            CONFLICTS.inc(conflicts)

        after_commit(session, count)
