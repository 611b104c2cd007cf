"""HTTP API of the delivery domain: journeys, runs, messages, suppressions and rules (secret key); the links
in messages (signed, no key); the buyer's in-app inbox and its live stream (an inbox token)."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response, StreamingResponse
from sqlalchemy.exc import IntegrityError
from starlette.concurrency import run_in_threadpool

from offerloop import pipeline
from offerloop.core.errors import ValidationFailed, error_responses
from offerloop.core.pages import DEFAULT_LIMIT, MAX_LIMIT, InvalidCursor, Page
from offerloop.delivery import inbox as inbox_topics
from offerloop.delivery import live, senders, service
from offerloop.delivery.email.exceptions import EmailNotFound
from offerloop.delivery.exceptions import (
    BadLink,
    InvalidDeliverySettings,
    JourneyConflict,
    JourneyError,
    JourneyNotFound,
    MessageNotFound,
    SenderNotAllowed,
    SuppressionNotFound,
)
from offerloop.delivery.rules import Rules
from offerloop.delivery.schemas import (
    Channel,
    InboxItem,
    InboxToken,
    InboxTokenIn,
    JourneyDetail,
    JourneyIn,
    JourneyRead,
    MessageDetail,
    MessageRead,
    MessageStatus,
    RunRead,
    RunState,
    SuppressionIn,
    SuppressionRead,
    UnsubscribeResult,
)
from offerloop.experiments.exceptions import ExperimentNotFound
from offerloop.identity import service as identity_service
from offerloop.identity.exceptions import BuyerNotFound
from offerloop.workspaces.auth import DB, SecretKey, get_settings, signing_secret
from offerloop.workspaces.exceptions import InvalidKey, SecretKeyRequired

router = APIRouter(prefix="/v1", tags=["delivery"])
links_router = APIRouter(prefix="/v1/m", tags=["delivery"], include_in_schema=True)

Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT, description="Items per page")]
Cursor = Annotated[str | None, Query(description="The next_cursor of the previous page")]
Name = Annotated[str, Query(max_length=64)]
_KEY = (InvalidKey, SecretKeyRequired, ValidationFailed)
_SSE: dict[int | str, dict[str, Any]] = {
    200: {"description": "An event stream", "content": {"text/event-stream": {"schema": {"type": "string"}}}}
}
_JS: dict[int | str, dict[str, Any]] = {
    200: {"description": "JavaScript", "content": {"text/javascript": {"schema": {"type": "string"}}}}
}
_GIF: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "A 1x1 GIF",
        "content": {"image/gif": {"schema": {"type": "string", "format": "binary"}}},
    }
}
STREAM_POLL_S = 5.0  # a stream re-reads this often even unwoken (changes made by another process)


# -- journeys -------------------------------------------------------------------------------------------


@router.put("/journeys/{name}", summary="Store a new version of a journey (YAML or JSON)",
            responses=error_responses(*_KEY, JourneyError, JourneyConflict, ExperimentNotFound))  # fmt: skip
def put_journey(db: DB, principal: SecretKey, name: str, body: JourneyIn) -> JourneyRead:
    for _ in range(8):  # each round at least one of the racing requests stores its version
        try:
            with db.write() as session:
                return service.save_journey(
                    session=session, workspace_id=principal.workspace_id, name=name, body=body
                )
        except IntegrityError:  # another request stored the same version number first: number this one after
            continue
    raise JourneyConflict(f"journey {name!r} is being changed by other requests: try again")


@router.get("/journeys", summary="The workspace's journeys (newest version of each), by name",
            responses=error_responses(*_KEY, InvalidCursor))  # fmt: skip
def list_journeys(
    db: DB, principal: SecretKey, limit: Limit = DEFAULT_LIMIT, cursor: Cursor = None
) -> Page[JourneyRead]:
    with db.read() as session:
        return service.list_journeys(
            session=session, workspace_id=principal.workspace_id, limit=limit, cursor=cursor
        )


@router.get("/journeys/{name}", summary="A journey and where its buyers are (runs by state and step)",
            responses=error_responses(*_KEY, JourneyNotFound))  # fmt: skip
def get_journey(db: DB, principal: SecretKey, name: str) -> JourneyDetail:
    with db.read() as session:
        return service.get_journey(session=session, workspace_id=principal.workspace_id, name=name)


@router.post("/journeys/{name}/pause", summary="Kill switch: no new runs, no more sends",
             responses=error_responses(*_KEY, JourneyNotFound))  # fmt: skip
def pause_journey(db: DB, principal: SecretKey, name: str) -> JourneyDetail:
    with db.write() as session:
        return service.set_paused(
            session=session, workspace_id=principal.workspace_id, name=name, paused=True
        )


@router.post("/journeys/{name}/resume", summary="Start runs again (ended runs stay ended)",
             responses=error_responses(*_KEY, JourneyNotFound))  # fmt: skip
def resume_journey(db: DB, principal: SecretKey, name: str) -> JourneyDetail:
    with db.write() as session:
        return service.set_paused(
            session=session, workspace_id=principal.workspace_id, name=name, paused=False
        )


@router.get("/journey-runs", summary="Buyers' runs through journeys, newest first",
            responses=error_responses(*_KEY, InvalidCursor))  # fmt: skip
def list_runs(
    db: DB, principal: SecretKey, limit: Limit = DEFAULT_LIMIT, cursor: Cursor = None,
    journey: Annotated[str | None, Query(max_length=64)] = None,
    buyer_id: Annotated[str | None, Query(max_length=40)] = None, state: RunState | None = None,
) -> Page[RunRead]:  # fmt: skip
    with db.read() as session:
        return service.list_runs(session=session, workspace_id=principal.workspace_id, limit=limit, cursor=cursor,
                                 journey=journey, buyer_id=buyer_id, state=state)  # fmt: skip


# -- messages, suppressions, rules ------------------------------------------------------------------------


@router.get("/messages", summary="Messages (the outbox), newest first",
            responses=error_responses(*_KEY, InvalidCursor))  # fmt: skip
def list_messages(
    db: DB, principal: SecretKey, limit: Limit = DEFAULT_LIMIT, cursor: Cursor = None,
    buyer_id: Annotated[str | None, Query(max_length=40)] = None, channel: Channel | None = None,
    status: MessageStatus | None = None, journey: Annotated[str | None, Query(max_length=64)] = None,
) -> Page[MessageRead]:  # fmt: skip
    with db.read() as session:
        return service.list_messages(session=session, workspace_id=principal.workspace_id, limit=limit,
                                     cursor=cursor, buyer_id=buyer_id, channel=channel, status=status,
                                     journey=journey)  # fmt: skip


@router.get("/messages/{message_id}", summary="One message with what was rendered",
            responses=error_responses(*_KEY, MessageNotFound))  # fmt: skip
def get_message(db: DB, principal: SecretKey, message_id: int) -> MessageDetail:
    with db.read() as session:
        return service.get_message(
            session=session, workspace_id=principal.workspace_id, message_id=message_id
        )


_EML: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "The message as captured (RFC 5322)",
        "content": {"message/rfc822": {"schema": {"type": "string"}}},
    }
}


@router.get("/messages/{message_id}/email", response_class=Response, responses={**_EML, **error_responses(*_KEY, MessageNotFound, EmailNotFound)},
            summary="An e-mail as captured in the embedded Maildir (development and demo: no SMTP server set)")  # fmt: skip
def captured_email(request: Request, db: DB, principal: SecretKey, message_id: int) -> Response:
    with db.read() as session:
        row = service.get_message(session=session, workspace_id=principal.workspace_id, message_id=message_id)
    if row.channel != "email":
        raise MessageNotFound(f"message {message_id} is not an e-mail")
    raw = service.captured(get_settings(request), row)
    return Response(raw, media_type="message/rfc822")


@router.get("/delivery/suppressions", summary="Addresses that get no (marketing) messages",
            responses=error_responses(*_KEY, InvalidCursor))  # fmt: skip
def list_suppressions(
    db: DB,
    principal: SecretKey,
    limit: Limit = DEFAULT_LIMIT,
    cursor: Cursor = None,
    channel: Channel | None = None,
) -> Page[SuppressionRead]:
    with db.read() as session:
        return service.list_suppressions(session=session, workspace_id=principal.workspace_id, limit=limit,
                                         cursor=cursor, channel=channel)  # fmt: skip


@router.post("/delivery/suppressions", status_code=201, summary="Suppress an address",
             responses=error_responses(*_KEY))  # fmt: skip
def add_suppression(db: DB, principal: SecretKey, body: SuppressionIn) -> SuppressionRead:
    with db.write() as session:
        return service.add_suppression(session=session, workspace_id=principal.workspace_id, body=body)


@router.delete("/delivery/suppressions/{suppression_id}", summary="Lift a suppression",
               responses=error_responses(*_KEY, SuppressionNotFound))  # fmt: skip
def remove_suppression(db: DB, principal: SecretKey, suppression_id: int) -> SuppressionRead:
    with db.write() as session:
        return service.remove_suppression(
            session=session, workspace_id=principal.workspace_id, suppression_id=suppression_id
        )


@router.get(
    "/delivery/settings", summary="Quiet hours, frequency caps, sender", responses=error_responses(*_KEY)
)
def get_rules(db: DB, principal: SecretKey) -> Rules:
    with db.read() as session:
        return service.get_rules(session=session, workspace_id=principal.workspace_id)


@router.put("/delivery/settings", summary="Replace the delivery rules",
            description="A `sender` outside the domains the operator allowed this workspace is refused (422 "
            "sender_not_allowed) when the server sends through SMTP: see docs/delivery.md, sender verification.",
            responses=error_responses(*_KEY, InvalidDeliverySettings, SenderNotAllowed))  # fmt: skip
def put_rules(request: Request, db: DB, principal: SecretKey, body: dict[str, Any]) -> Rules:
    policy = senders.SenderPolicy.of(get_settings(request))
    with db.write() as session:
        return service.set_rules(
            session=session, workspace_id=principal.workspace_id, data=body, policy=policy
        )


# -- links in messages (no key: the signature is the credential) --------------------------------------------


@links_router.get("/click/{token}", status_code=302, response_class=RedirectResponse,
                  summary="A tracked link: records the click, redirects with UTM tags",
                  responses={302: {"description": "To the link's target, with UTM tags",
                                   "headers": {"Location": {"schema": {"type": "string"}}}},
                             **error_responses(BadLink)})  # fmt: skip
def click(request: Request, db: DB, token: str) -> RedirectResponse:
    secret = signing_secret(request)
    with db.write() as session:
        target = service.click(session=session, secret=secret, token=token)
    return RedirectResponse(target, status_code=302)


_UNSUBSCRIBE_PAGE = (
    "<!doctype html><html lang=en><meta charset=utf-8><meta name=viewport content='width=device-width'>"
    "<title>Unsubscribe</title><body style='font-family:system-ui;max-width:32rem;margin:3rem auto'>"
    "<h1>Unsubscribe</h1><p>Stop marketing messages to this address?</p>"
    "<form method=post><input type=hidden name=List-Unsubscribe value=One-Click>"
    "<button type=submit>Unsubscribe</button></form></body></html>"
)


@links_router.get("/unsubscribe/{token}", response_class=HTMLResponse,
                  summary="The unsubscribe page (a GET changes nothing: mail scanners follow links)",
                  responses=error_responses(BadLink))  # fmt: skip
def unsubscribe_page(request: Request, db: DB, token: str) -> HTMLResponse:
    service.check_unsubscribe_link(secret=signing_secret(request), token=token)
    return HTMLResponse(_UNSUBSCRIBE_PAGE)


@links_router.post("/unsubscribe/{token}", summary="One-click unsubscribe (RFC 8058 List-Unsubscribe-Post)",
                   responses=error_responses(BadLink))  # fmt: skip
def unsubscribe(request: Request, db: DB, token: str) -> UnsubscribeResult:
    secret = signing_secret(request)
    with db.write() as session:
        row = service.unsubscribe(session=session, secret=secret, token=token)
        return UnsubscribeResult(unsubscribed=True, channel=row.channel)


_PIXEL = bytes.fromhex(
    "47494638396101000100800000000000ffffff21f90401000000002c00000000010001000002024401003b"
)


@links_router.get("/open/{token}", response_class=Response, summary="The open pixel (off unless enabled)",
                  responses={**_GIF, **error_responses(BadLink)})  # fmt: skip
def opened(request: Request, db: DB, token: str) -> Response:
    secret = signing_secret(request)
    with db.write() as session:
        service.opened(session=session, secret=secret, token=token)
    return Response(_PIXEL, media_type="image/gif", headers={"Cache-Control": "no-store"})


@links_router.get("/view/{token}", response_class=HTMLResponse, summary="A message in the browser",
                  responses=error_responses(BadLink))  # fmt: skip
def view(request: Request, db: DB, token: str) -> HTMLResponse:
    secret = signing_secret(request)
    with db.read() as session:
        html = service.view(session=session, secret=secret, token=token)
    return HTMLResponse(
        html,
        headers={
            "Content-Security-Policy": "default-src 'none'; img-src https: data:; style-src 'unsafe-inline'",
            # one buyer's message behind a link: no shared cache may keep it (nor outlive the buyer's erasure)
            "Cache-Control": "private, no-store",
        },
    )


# -- the buyer's in-app inbox ----------------------------------------------------------------------------------


@router.post("/inbox/tokens", status_code=201, summary="Mint an inbox token for a buyer (your backend calls this)",
             responses=error_responses(*_KEY, BuyerNotFound))  # fmt: skip
def inbox_token(request: Request, db: DB, principal: SecretKey, body: InboxTokenIn) -> InboxToken:
    if (body.user_id is None) == (body.anonymous_id is None):
        raise ValidationFailed("give exactly one of user_id or anonymous_id")
    # the buyer an identify acknowledged just before this request made is found (every event applied first)
    with pipeline.fresh_read(db, workspace_id=principal.workspace_id) as session:
        buyer_id, _ = identity_service.find_buyer(session=session, workspace_id=principal.workspace_id,
                                                  user_id=body.user_id, anonymous_id=body.anonymous_id)  # fmt: skip
    token, expires = service.inbox_token(
        signing_secret(request), principal.workspace_id, buyer_id, body.ttl_s
    )
    return InboxToken(token=token, expires_at=expires)


Token = Annotated[
    str, Query(min_length=1, max_length=4096, description="An inbox token from POST /v1/inbox/tokens")
]


@router.get("/inbox", summary="The buyer's in-app messages, newest first",
            responses=error_responses(BadLink, InvalidCursor))  # fmt: skip
def list_inbox(
    request: Request,
    db: DB,
    token: Token,
    limit: Limit = DEFAULT_LIMIT,
    cursor: Cursor = None,
    unread: bool = False,
) -> Page[InboxItem]:
    workspace_id, buyer_id = service.inbox_owner(signing_secret(request), token)
    with db.read() as session:
        return service.inbox(session=session, workspace_id=workspace_id, buyer_id=buyer_id, limit=limit,
                             cursor=cursor, unread=unread)  # fmt: skip


@router.post("/inbox/{message_id}/read", summary="Mark an in-app message read (records an open)",
             responses=error_responses(BadLink, MessageNotFound))  # fmt: skip
def read_message(request: Request, db: DB, token: Token, message_id: int) -> InboxItem:
    workspace_id, buyer_id = service.inbox_owner(signing_secret(request), token)
    with db.write() as session:
        return service.mark_read(
            session=session, workspace_id=workspace_id, buyer_id=buyer_id, message_id=message_id
        )


@router.get("/inbox/stream", response_class=StreamingResponse,
            summary="Server-Sent Events: each new in-app message as it arrives (event: message), until the token "
                    "expires (event: expired, then the stream ends)",
            responses={**_SSE, **error_responses(BadLink)})  # fmt: skip
async def inbox_stream(
    request: Request, token: Token, after: Annotated[int, Query(ge=0, description="Last message id seen")] = 0
) -> StreamingResponse:
    db = request.app.state.db
    secret = await run_in_threadpool(signing_secret, request)
    workspace_id, buyer_id, expires = service.inbox_grant(secret, token)
    topic = inbox_topics.topic(workspace_id, buyer_id)

    def since(last: int) -> list[InboxItem]:
        with db.read() as session:
            return service.inbox_since(
                session=session, workspace_id=workspace_id, buyer_id=buyer_id, after_id=last
            )

    async def events() -> AsyncIterator[bytes]:
        last = after
        yield b": connected\n\n"
        while not await request.is_disconnected():
            left = expires - time.time()
            if left <= 0:  # the token's grant ends here too, not only for new requests
                yield b"event: expired\ndata: {}\n\n"
                return
            for item in await run_in_threadpool(since, last):
                last = max(last, item.id)
                yield b"id: %d\nevent: message\ndata: %s\n\n" % (
                    item.id,
                    orjson.dumps(item.model_dump(mode="json")),
                )
            if not await live.wait(topic, min(STREAM_POLL_S, left)):
                yield b": keep-alive\n\n"
            await asyncio.sleep(0)

    return StreamingResponse(events(), media_type="text/event-stream",
                             headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})  # fmt: skip


_STATIC = Path(__file__).parent / "static"


@router.get("/inapp.js", response_class=Response, summary="The in-app prompt script (shipped with offerloop)",
            responses=_JS)  # fmt: skip
def inapp_script() -> Response:
    return Response((_STATIC / "inapp.js").read_bytes(), media_type="text/javascript",
                    headers={"Cache-Control": "public, max-age=3600"})  # fmt: skip
