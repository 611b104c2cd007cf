"""Ingestion: validate, deduplicate, weight and append to the log — or quarantine with a reason."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from typing import Any

import orjson
from sqlalchemy.orm import Session

from offerloop.core.cache import VersionedCache
from offerloop.core.clock import utcnow
from offerloop.core.ids import new_id
from offerloop.core.pages import decode_cursor, page_by_id
from offerloop.events import repository
from offerloop.events.exceptions import QuarantineClosed, QuarantineNotFound
from offerloop.events.schemas import (
    IngestResult,
    ItemResult,
    Overview,
    QuarantinePage,
    QuarantineRead,
    ReplayResult,
    SignalConfigRead,
)
from offerloop.events.signals import (
    SignalConfig,
    dump_signal_config,
    load_signal_config,
    score_event,
)
from offerloop.events.validation import Accepted, PreparedBatch, Refused, escape_nul
from offerloop.events.validation import (
    origin_of as origin_of,  # who sent a stored event: a journey's transactional trigger asks
)
from offerloop.events.validation import (
    prepare_batch as prepare_batch,  # callers prepare before the write lock
)
from offerloop.identity import service as identity_service
from offerloop.pipeline import log as pipeline
from offerloop.workspaces import service as workspace_service

_configs: VersionedCache[SignalConfig] = VersionedCache(max_size=1024)  # per workspace, its current version


def signal_config(session: Session, workspace_id: str) -> SignalConfig:
    return workspace_service.cached_config(session=session, workspace_id=workspace_id, field="signal_config",
                                           cache=_configs, parse=load_signal_config)[1]  # fmt: skip


def set_signal_config(
    *, session: Session, workspace_id: str, source: str | dict[str, Any] | None, actor: str
) -> int:
    """Validate and store a workspace's signal rules (YAML text or a mapping); returns the new version.

    Invalid rules raise :class:`InvalidSignalConfig` (422) listing every problem.
    """
    config = load_signal_config(source)
    version = workspace_service.set_config(
        session=session,
        workspace_id=workspace_id,
        field="signal_config",
        value=dump_signal_config(config) if source else None,
    )
    workspace_service.audit(
        session, workspace_id, actor=actor, action="signals.update", target_type="workspace",
        target_id=workspace_id, details={"version": version},
    )  # fmt: skip
    return version


def get_signal_config(*, session: Session, workspace_id: str) -> SignalConfigRead:
    return SignalConfigRead.model_validate(dump_signal_config(signal_config(session, workspace_id)))


def _quarantine_row(workspace_id: str, refused: Refused, received_at: datetime) -> dict[str, Any]:
    return {
        "id": new_id("qev"),
        "workspace_id": workspace_id,
        "received_at": received_at,
        "reason_code": refused.code,
        "reason": refused.message,
        "details": refused.details,
        "payload": refused.payload,
        "raw": refused.raw,
        "message_id": refused.message_id[:255] if refused.message_id else None,
        "user_id": refused.user_id[:255] if refused.user_id else None,
        "anonymous_id": refused.anonymous_id[:255] if refused.anonymous_id else None,
        "status": "open",
        "attempts": 0,
    }


def quarantine_raw(*, session: Session, workspace_id: str, raw: str, code: str, reason: str) -> str:
    """Keep a body that could not even be parsed (cut to 512 KiB), so nothing sent is lost."""
    row = {
        "id": new_id("qev"),
        "workspace_id": workspace_id,
        "received_at": utcnow(),
        "reason_code": code,
        "reason": escape_nul(reason),
        "details": None,
        "payload": None,
        "raw": escape_nul(raw[: 512 * 1024]),
        "message_id": None,
        "user_id": None,
        "anonymous_id": None,
        "status": "open",
        "attempts": 0,
    }
    repository.insert_quarantine(session, [row])
    return str(row["id"])


def ingest(
    *, session: Session, workspace_id: str, batch: PreparedBatch, quarantine: bool = True
) -> IngestResult:
    """Append a prepared batch to the log: each message ends accepted, duplicate or quarantined, in the
    caller's transaction. Consumers (identity, touchpoints, features, …) process the log after it commits.
    Prepare the batch first with prepare_batch, outside the write lock."""
    result = IngestResult()
    items: list[ItemResult | None] = [None] * batch.count
    accepted, refused, received_at = batch.accepted, batch.refused, batch.received_at

    # Exactly once: earlier in this batch, or already appended at any time before (the dedup index).
    first: dict[str, Accepted] = {}
    for a in accepted:
        if a.message_id in first:
            items[a.index] = ItemResult(a.index, "duplicate", a.message_id)
        else:
            first[a.message_id] = a
    new = repository.claim_message_ids(session, workspace_id, list(first))
    fresh: list[Accepted] = []
    for message_id, a in first.items():
        if message_id in new:
            fresh.append(a)
            items[a.index] = ItemResult(a.index, "accepted", a.message_id)
        else:
            items[a.index] = ItemResult(a.index, "duplicate", a.message_id)

    if fresh:
        fresh.sort(key=lambda a: a.index)  # the log keeps the batch's order
        _append(session, workspace_id, fresh, received_at, result)

    if refused and quarantine:
        rows = [_quarantine_row(workspace_id, r, received_at) for r in refused]
        repository.insert_quarantine(session, rows)
        for r, row in zip(refused, rows, strict=True):
            items[r.index] = ItemResult(r.index, "quarantined", r.message_id, r.code, r.message, row["id"])
    else:
        for r in refused:
            items[r.index] = ItemResult(r.index, "quarantined", r.message_id, r.code, r.message)

    result.items = [it for it in items if it is not None]
    for it in result.items:
        if it.status == "accepted":
            result.accepted += 1
        elif it.status == "duplicate":
            result.duplicates += 1
        else:
            result.quarantined += 1
    return result


def _append(
    session: Session, workspace_id: str, fresh: list[Accepted], received_at: datetime, result: IngestResult
) -> None:
    """The fresh events, scored by the workspace's signal rules, at the end of the log; buyer_id stays
    NULL until the identity stage resolves it. Nothing else happens before the acknowledgement."""
    config = signal_config(session, workspace_id)
    rows: list[tuple[Any, ...]] = []
    for a in fresh:
        score = score_event(config, event_type=a.type, name=a.name, properties=a.properties)
        result.suppressed += score.suppressed
        rows.append(
            (
                workspace_id, a.message_id, a.type, a.name, None, a.user_id, a.anonymous_id, a.group_id,
                a.previous_id, a.timestamp, a.original_timestamp, a.sent_at, received_at, a.properties, a.traits,
                a.context, score.weight, score.confidence, score.high_signal, score.suppressed,
            )
        )  # fmt: skip
    repository.append_events(session, workspace_id, rows)
    pipeline.appended(session, workspace_id)


# -- events the server records on a buyer (orders, subscriptions, messages sent and clicked) -------------


def buyer_track(
    session: Session, workspace_id: str, buyer_id: str, name: str, properties: dict[str, Any], message_id: str,
    context: dict[str, Any] | None = None, buyer: Any = None,
) -> dict[str, Any]:  # fmt: skip
    """A Segment track message on the buyer's record, under the identifier ingestion resolves back to them
    (their userId, else an anonymousId, else their e-mail); stored once by ``message_id``. ``buyer``: the
    record (identity `BuyerRead`) already read in this transaction (a batch of messages), else it is read here."""
    if buyer is None or buyer.id != buyer_id:
        buyer = identity_service.get_buyer(session=session, workspace_id=workspace_id, buyer_id=buyer_id)
    who: dict[str, str]
    anonymous = next((i.value for i in buyer.identities if i.kind == "anonymous_id"), None)
    email = next((i.value for i in buyer.identities if i.kind == "email"), None)
    if buyer.user_id:
        who = {"userId": buyer.user_id}
    elif anonymous:
        who = {"anonymousId": anonymous}
    else:
        who = {"userId": email or buyer_id}
    message: dict[str, Any] = {
        "type": "track",
        "event": name,
        "messageId": message_id,
        "properties": properties,
        **who,
    }
    if context:
        message["context"] = context
    return message


def record_server_events(
    session: Session, workspace_id: str, messages: list[dict[str, Any]]
) -> list[ItemResult]:
    """Append messages the server itself produced (see :func:`buyer_track`); the ones refused (quarantined)."""
    batch = prepare_batch(messages, received_at=utcnow(), max_event_bytes=64 * 1024, origin="server")
    result = ingest(session=session, workspace_id=workspace_id, batch=batch)
    return [i for i in result.items if i.status == "quarantined"]


# -- quarantine --------------------------------------------------------------------------------


def list_quarantine(
    *,
    session: Session,
    workspace_id: str,
    status: str | None = "open",
    reason: str | None = None,
    limit: int = 100,
    cursor: str | None = None,
) -> QuarantinePage:
    after = decode_cursor(cursor, types=(str,))
    rows = repository.list_quarantine(
        session,
        workspace_id,
        status=status,
        reason=reason,
        limit=limit + 1,
        before=after[0] if after else None,
    )
    return QuarantinePage(**dict(page_by_id(rows, limit, QuarantineRead)))


def get_quarantined(*, session: Session, workspace_id: str, quarantine_id: str) -> QuarantineRead:
    row = repository.get_quarantined(session, workspace_id, quarantine_id)
    if row is None:
        raise QuarantineNotFound(f"quarantined event {quarantine_id} does not exist in this workspace")
    return QuarantineRead.model_validate(row, from_attributes=True)


def replay(
    *,
    session: Session,
    workspace_id: str,
    quarantine_id: str,
    payload: dict[str, Any] | None,
    max_event_bytes: int,
    actor: str,
) -> ReplayResult:
    """Send a quarantined event (or a corrected version of it) through ingestion again."""
    row = repository.get_quarantined(session, workspace_id, quarantine_id)
    if row is None:
        raise QuarantineNotFound(f"quarantined event {quarantine_id} does not exist in this workspace")
    if row.status != "open":
        raise QuarantineClosed(f"quarantined event {quarantine_id} is already {row.status}")
    message = payload if payload is not None else row.payload
    row.attempts += 1
    if message is None:
        row.reason = "nothing to replay: the body was not JSON; send a corrected payload"
        return ReplayResult(
            id=row.id, status="open", message_id=None, code=row.reason_code, message=row.reason
        )
    batch = prepare_batch([message], received_at=row.received_at, max_event_bytes=max_event_bytes)
    outcome = ingest(session=session, workspace_id=workspace_id, batch=batch, quarantine=False)
    item = outcome.items[0]
    if item.status == "quarantined":
        row.reason_code, row.reason = item.code or row.reason_code, item.message or row.reason
        if payload is not None:
            row.payload = payload
        return ReplayResult(
            id=row.id, status="open", message_id=item.message_id, code=item.code, message=item.message
        )
    row.status = "replayed"
    row.resolved_at = utcnow()
    row.message_id = item.message_id
    if payload is not None:
        row.payload = payload
    workspace_service.audit(
        session, workspace_id, actor=actor, action="quarantine.replay", target_type="quarantine",
        target_id=row.id, details={"result": item.status, "message_id": item.message_id},
    )  # fmt: skip
    return ReplayResult(
        id=row.id, status="replayed" if item.status == "accepted" else "duplicate", message_id=item.message_id
    )


def discard(*, session: Session, workspace_id: str, quarantine_id: str, actor: str) -> QuarantineRead:
    row = repository.get_quarantined(session, workspace_id, quarantine_id)
    if row is None:
        raise QuarantineNotFound(f"quarantined event {quarantine_id} does not exist in this workspace")
    if row.status != "open":
        raise QuarantineClosed(f"quarantined event {quarantine_id} is already {row.status}")
    row.status, row.resolved_at = "discarded", utcnow()
    workspace_service.audit(
        session,
        workspace_id,
        actor=actor,
        action="quarantine.discard",
        target_type="quarantine",
        target_id=row.id,
    )
    session.flush()
    return QuarantineRead.model_validate(row, from_attributes=True)


# -- reporting and export ------------------------------------------------------------------------


def overview(*, session: Session, workspace_id: str) -> Overview:
    """What a creator wants to see first: audience size, merges, quarantine reasons, channels."""
    return Overview.model_validate(
        {
            **identity_service.counts(session=session, workspace_id=workspace_id),
            **repository.event_counts(session, workspace_id),
            "quarantine_reasons": repository.quarantine_reasons(session, workspace_id),
            "first_touch_channels": repository.channel_counts(session, workspace_id, first_touch=True),
            "last_touch_channels": repository.channel_counts(session, workspace_id, first_touch=False),
            "top_sources": repository.source_counts(session, workspace_id),
        }
    )


def _row_dict(row: Any) -> dict[str, Any]:
    out = {}
    for column in row.__table__.columns:
        value = getattr(row, column.key)
        out[column.key] = value.isoformat() if isinstance(value, datetime) else value
    return out


def export_workspace(*, session: Session, workspace_id: str) -> Iterator[bytes]:
    """Everything the workspace holds, one JSON object a line, so a creator can leave with it."""
    for record in identity_service.iter_buyer_records(session=session, workspace_id=workspace_id):
        yield orjson.dumps({"kind": "buyer", **record}) + b"\n"
    for kind, model in repository.EXPORT_TABLES.items():
        for row in repository.iter_table(session, model, workspace_id):
            yield orjson.dumps({"kind": kind, **_row_dict(row)}) + b"\n"


def existing_message_ids(*, session: Session, workspace_id: str, message_ids: list[str]) -> set[str]:
    return repository.existing_message_ids(session, workspace_id, message_ids)


def activity_since(*, session: Session, workspace_id: str, since: datetime) -> tuple[int, int]:
    """(events received, distinct buyers they belong to) since ``since`` — the console's "today"."""
    return repository.activity_since(session, workspace_id, since)


def open_quarantine_count(*, session: Session, workspace_id: str) -> int:
    """Refused events still waiting to be fixed, replayed or discarded."""
    return repository.open_quarantine_count(session, workspace_id)
