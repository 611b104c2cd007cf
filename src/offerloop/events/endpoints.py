"""Segment-compatible tracking API, quarantine, signal rules and the workspace export."""

from __future__ import annotations

import json
import time
import zlib
from typing import Annotated, Any, Literal

import orjson
from fastapi import APIRouter, Body, Path, Query, Request
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from offerloop.config import Settings
from offerloop.core.clock import parse_timestamp, utcnow
from offerloop.core.errors import ErrorBody, error_responses
from offerloop.core.pages import DEFAULT_LIMIT
from offerloop.events import service
from offerloop.events.exceptions import (
    BatchTooLarge,
    EventRefused,
    InvalidSignalConfig,
    QuarantineClosed,
    QuarantineNotFound,
)
from offerloop.events.schemas import (
    IngestResponse,
    IngestResult,
    Overview,
    QuarantinePage,
    QuarantineRead,
    ReplayRequest,
    ReplayResult,
    SignalConfigRead,
    SignalConfigStored,
)
from offerloop.pipeline import status as pipeline_status
from offerloop.pipeline.schemas import ParkedPage, ParkedReplay, PipelineStatus
from offerloop.telemetry import EVENTS, INGEST_BATCH_SECONDS
from offerloop.web import Cursor, JSONBytes, Limit
from offerloop.workspaces.auth import DB, SecretKey, authenticate_request

router = APIRouter(tags=["tracking"])
admin = APIRouter(prefix="/v1", tags=["quarantine"])
pipeline_admin = APIRouter(prefix="/v1/pipeline", tags=["pipeline"])

_TRACK_EXAMPLE = {
    "userId": "u_42",
    "event": "Module Completed",
    "properties": {"module_id": "pricing-101", "course_id": "creator-pricing"},
    "timestamp": "2026-11-20T09:30:00Z",
    "sentAt": "2026-11-20T09:30:02Z",
    "messageId": "8f1c2b4e-5d6a-4b7c-9e8f-0a1b2c3d4e5f",
    "context": {"page": {"url": "https://creator.example/learn?utm_source=ig&utm_medium=social"}},
}
_BATCH_EXAMPLE = {
    "batch": [
        {"type": "page", "anonymousId": "a-1", "name": "Home", "messageId": "m-1"},
        {
            "type": "identify",
            "anonymousId": "a-1",
            "userId": "u_42",
            "traits": {"email": "jo@example.com"},
            "messageId": "m-2",
        },
        {
            "type": "track",
            "userId": "u_42",
            "event": "Quiz Completed",
            "properties": {"score": 82},
            "messageId": "m-3",
        },
    ],
    "sentAt": "2026-11-20T09:30:02Z",
}


_REFUSED: dict[int | str, dict[str, Any]] = {
    400: {
        "model": ErrorBody,
        "description": "The event was quarantined: code is the reason (e.g. `invalid_json`, `invalid_batch`, "
        "`invalid_encoding`, `missing_event_name`), details.quarantine_id where to find it",
    },
    413: {"model": ErrorBody, "description": "code: `batch_too_large`, `event_too_large`"},
}


def _doc(example: dict[str, Any], description: str) -> dict[str, Any]:
    return {
        "requestBody": {
            "required": True,
            "description": description,
            "content": {"application/json": {"schema": {"type": "object"}, "example": example}},
        }
    }


async def _read_body(request: Request, limit: int) -> bytes:
    length = request.headers.get("content-length")
    if length and length.isdigit() and int(length) > limit:
        raise BatchTooLarge(f"request body is {length} bytes; the limit is {limit}", details={"limit": limit})
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > limit:
            raise BatchTooLarge(f"request body exceeds {limit} bytes", details={"limit": limit})
    if request.headers.get("content-encoding", "").lower() == "gzip":
        inflater = zlib.decompressobj(16 + zlib.MAX_WBITS)
        try:
            out = inflater.decompress(bytes(body), limit + 1)
        except zlib.error as exc:
            raise EventRefused("body is not valid gzip", code="invalid_encoding") from exc
        if len(out) > limit:
            raise BatchTooLarge(f"decompressed body exceeds {limit} bytes", details={"limit": limit})
        return out
    return bytes(body)


def _record(result: IngestResult) -> None:
    EVENTS.labels("accepted").inc(result.accepted)
    EVENTS.labels("duplicate").inc(result.duplicates)
    EVENTS.labels("quarantined").inc(result.quarantined)


def _refuse_constant(text: str) -> None:
    raise ValueError(f"{text} is not a JSON number")


def _parse(body: bytes) -> Any:
    """The body's JSON (ValueError when it is not). orjson first; what it refuses, the standard parser tries
    again: a lone UTF-16 surrogate in one event (a JavaScript client cutting an emoji in half) must cost that
    event (quarantined by validation), not its whole batch. NaN and Infinity stay refused, as orjson does."""
    try:
        return orjson.loads(body)
    except orjson.JSONDecodeError as exc:
        try:
            return json.loads(body, parse_constant=_refuse_constant)
        except (ValueError, RecursionError):
            raise ValueError(str(exc)) from None


def _ingest_sync(request: Request, body: bytes, implied_type: str | None) -> JSONBytes:
    started = time.perf_counter()
    principal = authenticate_request(request)
    settings: Settings = request.app.state.settings
    db = request.app.state.db
    received_at = utcnow()
    try:
        parsed = _parse(body)
    except ValueError as exc:
        with db.write() as session:
            qid = service.quarantine_raw(
                session=session, workspace_id=principal.workspace_id,
                raw=body.decode("utf-8", "replace"), code="invalid_json", reason=f"body is not JSON: {exc}",
            )  # fmt: skip
        EVENTS.labels("quarantined").inc()
        raise EventRefused(
            "body is not valid JSON", code="invalid_json", details={"quarantine_id": qid}
        ) from exc

    batch_sent_at = None
    batch_context = None
    if implied_type is None:  # /v1/batch
        if not isinstance(parsed, dict) or not isinstance(parsed.get("batch"), list):
            with db.write() as session:
                qid = service.quarantine_raw(
                    session=session, workspace_id=principal.workspace_id,
                    raw=body.decode("utf-8", "replace"), code="invalid_batch",
                    reason="body must be an object with a 'batch' array",
                )  # fmt: skip
            EVENTS.labels("quarantined").inc()
            raise EventRefused(
                "body must be an object with a 'batch' array",
                code="invalid_batch",
                details={"quarantine_id": qid},
            )
        messages = parsed["batch"]
        try:
            batch_sent_at = parse_timestamp(parsed.get("sentAt"))
        except (ValueError, OverflowError, OSError):
            batch_sent_at = None
        ctx = parsed.get("context")
        batch_context = ctx if isinstance(ctx, dict) else None
    else:
        messages = [parsed]

    prepared = service.prepare_batch(
        messages,
        received_at=received_at,
        max_event_bytes=settings.max_event_bytes,
        implied_type=implied_type,
        batch_sent_at=batch_sent_at,
        batch_context=batch_context,
        origin="creator" if principal.is_secret else "client",
    )
    with db.write() as session:
        result = service.ingest(session=session, workspace_id=principal.workspace_id, batch=prepared)
    # Acknowledged only now: the transaction above has committed.
    _record(result)
    INGEST_BATCH_SECONDS.observe(time.perf_counter() - started)
    errors = [
        {
            "index": it.index,
            "messageId": it.message_id,
            "code": it.code,
            "message": it.message,
            "quarantine_id": it.quarantine_id,
        }
        for it in result.items
        if it.status == "quarantined"
    ]
    if implied_type is not None and errors:
        err = errors[0]
        raise EventRefused(
            str(err["message"]),
            code=str(err["code"]),
            details={"quarantine_id": err["quarantine_id"], "messageId": err["messageId"]},
        ).with_status(413 if err["code"] == "event_too_large" else 400)
    return JSONBytes(
        {
            "success": True,
            "accepted": result.accepted,
            "duplicates": result.duplicates,
            "quarantined": result.quarantined,
            "errors": errors,
        }
    )


def _make_endpoint(implied_type: str | None):  # type: ignore[no-untyped-def]
    async def endpoint(request: Request) -> JSONBytes:
        settings: Settings = request.app.state.settings
        # A single event over 32 KB is still read (up to the batch limit) so it can be quarantined.
        body = await _read_body(request, settings.max_batch_bytes)
        return await run_in_threadpool(_ingest_sync, request, body, implied_type)

    return endpoint


for _type in ("identify", "track", "page", "screen", "group", "alias"):
    router.add_api_route(
        f"/v1/{_type}",
        _make_endpoint(_type),
        name=_type,
        methods=["POST"],
        response_model=IngestResponse,
        responses=_REFUSED,
        summary=f"Segment {_type} call",
        description=(
            f"Send one {_type} event (Segment spec). Authenticate with a write key as the HTTP Basic "
            "username, or as a Bearer token. A refused event is quarantined and answered with 400 "
            "(413 when over 32 KB) and its quarantine id."
        ),
        openapi_extra=_doc(
            _TRACK_EXAMPLE if _type == "track" else {"anonymousId": "a-1"}, f"A Segment {_type} event"
        ),
    )
router.add_api_route(
    "/v1/batch",
    _make_endpoint(None),
    name="batch",
    methods=["POST"],
    response_model=IngestResponse,
    responses=_REFUSED,
    summary="Segment batch call",
    description=(
        "Up to 500 KB of events (32 KB each). Good events are stored and bad ones quarantined; the "
        "answer lists the refused ones item by item. Duplicated messageIds are stored once."
    ),
    openapi_extra=_doc(_BATCH_EXAMPLE, "A Segment batch"),
)


@admin.get("/quarantine", summary="Refused events with their reasons, newest first")
def list_quarantine(
    db: DB,
    principal: SecretKey,
    status: Annotated[
        Literal["open", "replayed", "discarded", ""] | None, Query(description="Empty for all")
    ] = "open",
    reason: Annotated[str | None, Query(max_length=200, description="Only this reason code")] = None,
    limit: Limit = DEFAULT_LIMIT,
    cursor: Cursor = None,
) -> QuarantinePage:
    with db.read() as session:
        return service.list_quarantine(
            session=session, workspace_id=principal.workspace_id, status=status or None, reason=reason,
            limit=limit, cursor=cursor,
        )  # fmt: skip


@admin.get(
    "/quarantine/{quarantine_id}", summary="One refused event", responses=error_responses(QuarantineNotFound)
)
def get_quarantined(db: DB, principal: SecretKey, quarantine_id: str) -> QuarantineRead:
    with db.read() as session:
        return service.get_quarantined(
            session=session, workspace_id=principal.workspace_id, quarantine_id=quarantine_id
        )


@admin.post(
    "/quarantine/{quarantine_id}/replay",
    summary="Replay a refused event, optionally corrected",
    response_model=ReplayResult,
    responses={
        **error_responses(QuarantineNotFound, QuarantineClosed),
        422: {"model": ReplayResult, "description": "Still refused: status open, with the reason"},
    },
)
def replay(
    request: Request, db: DB, principal: SecretKey, quarantine_id: str, body: ReplayRequest | None = None
) -> JSONBytes:
    with db.write() as session:
        result: ReplayResult = service.replay(
            session=session, workspace_id=principal.workspace_id, quarantine_id=quarantine_id,
            payload=body.payload if body else None,
            max_event_bytes=request.app.state.settings.max_event_bytes, actor=principal.key_id,
        )  # fmt: skip
    # A replay that is still refused adds no event: it was counted as quarantined when it arrived.
    if result.status != "open":
        EVENTS.labels("accepted" if result.status == "replayed" else "duplicate").inc()
    return JSONBytes(result.model_dump(mode="json"), status_code=422 if result.status == "open" else 200)


@admin.post(
    "/quarantine/{quarantine_id}/discard",
    summary="Close a refused event without replaying it",
    responses=error_responses(QuarantineNotFound, QuarantineClosed),
)
def discard(db: DB, principal: SecretKey, quarantine_id: str) -> QuarantineRead:
    with db.write() as session:
        return service.discard(
            session=session,
            workspace_id=principal.workspace_id,
            quarantine_id=quarantine_id,
            actor=principal.key_id,
        )


@admin.get("/signals", tags=["signals"], summary="The workspace's signal weighting rules")
def get_signals(db: DB, principal: SecretKey) -> SignalConfigRead:
    with db.read() as session:
        return service.get_signal_config(session=session, workspace_id=principal.workspace_id)


@admin.put(
    "/signals",
    tags=["signals"],
    summary="Replace the signal weighting rules (JSON or YAML text)",
    responses=error_responses(InvalidSignalConfig),
)
def put_signals(
    db: DB,
    principal: SecretKey,
    body: Annotated[
        Any,
        Body(
            examples=[{"threshold": 0.5, "rules": [{"event": "Order *", "weight": 10, "high_signal": True}]}]
        ),
    ],
) -> SignalConfigStored:
    with db.write() as session:
        version = service.set_signal_config(
            session=session, workspace_id=principal.workspace_id, source=body, actor=principal.key_id
        )
        return SignalConfigStored(
            version=version,
            config=service.get_signal_config(session=session, workspace_id=principal.workspace_id),
        )


@admin.get("/overview", tags=["workspace"], summary="Audience, merges, quarantine reasons and top channels")
def overview(db: DB, principal: SecretKey) -> Overview:
    with db.read() as session:
        return service.overview(session=session, workspace_id=principal.workspace_id)


@admin.get(
    "/export",
    tags=["workspace"],
    summary="The whole workspace as JSON lines (buyers, events, …)",
    response_class=StreamingResponse,
    responses={
        200: {
            "description": 'One JSON object a line, each with its `kind` ("buyer", "event", "touchpoint", …)',
            "content": {"application/x-ndjson": {"schema": {"type": "string"}}},
        }
    },
)
def export(db: DB, principal: SecretKey) -> StreamingResponse:
    def lines() -> Any:
        with db.read() as session:
            yield from service.export_workspace(session=session, workspace_id=principal.workspace_id)

    return StreamingResponse(lines(), media_type="application/x-ndjson")


@pipeline_admin.get("", summary="Per consumer: the head of the log, its checkpoint, lag and parked events")
def pipeline_overview(db: DB, principal: SecretKey) -> PipelineStatus:
    with db.read() as session:
        return pipeline_status.overview(session=session, workspace_id=principal.workspace_id)


@pipeline_admin.get("/parked", summary="Events a consumer parked after repeated failures, newest first")
def list_parked(
    db: DB,
    principal: SecretKey,
    status: Annotated[
        Literal["parked", "replayed", ""] | None, Query(description="Empty for all")
    ] = "parked",
    limit: Limit = DEFAULT_LIMIT,
    cursor: Cursor = None,
) -> ParkedPage:
    with db.read() as session:
        return pipeline_status.list_parked(
            session=session,
            workspace_id=principal.workspace_id,
            status=status or None,
            limit=limit,
            cursor=cursor,
        )


@pipeline_admin.post(
    "/parked/{parked_id}/replay",
    summary="Run the consumer on a parked event again",
    response_model=ParkedReplay,
    responses={
        **error_responses(pipeline_status.ParkedNotFound, pipeline_status.ParkedClosed),
        422: {
            "model": ParkedReplay,
            "description": "The consumer failed again: still parked, with the error",
        },
    },
)
def replay_parked(db: DB, principal: SecretKey, parked_id: Annotated[int, Path(ge=1, le=2**62)]) -> JSONBytes:
    with db.write() as session:
        result = pipeline_status.replay(
            session=session, workspace_id=principal.workspace_id, parked_id=parked_id
        )
    return JSONBytes(result.model_dump(mode="json"), status_code=200 if result.status == "replayed" else 422)
