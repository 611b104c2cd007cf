"""HTTP API of web push: the VAPID public key, buyers' subscriptions (write key, from the browser), a send
for the creator (secret key), and the service worker and subscribe helper offerloop serves itself."""

from __future__ import annotations

from functools import cache
from importlib import resources
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import Response

from offerloop.core.errors import ValidationFailed, error_responses
from offerloop.delivery import service as delivery_service
from offerloop.delivery.exceptions import BadLink
from offerloop.delivery.push import service
from offerloop.delivery.push.exceptions import BuyerTokenRequired, InvalidSubscription, PushPayloadTooLarge
from offerloop.delivery.push.schemas import (
    PushSendIn,
    PushSendResult,
    PushSubscriptionIn,
    PushSubscriptionRead,
    Unsubscribed,
    UnsubscribeIn,
    VapidPublicKey,
)
from offerloop.identity.exceptions import BuyerNotFound
from offerloop.workspaces.auth import DB, AnyKey, SecretKey, get_settings, signing_secret
from offerloop.workspaces.exceptions import InvalidKey, SecretKeyRequired
from offerloop.workspaces.schemas import Principal

router = APIRouter(prefix="/v1/push", tags=["push"])

_ANY = (InvalidKey, ValidationFailed)
_JS: dict[int | str, dict[str, Any]] = {
    200: {"content": {"text/javascript": {}}, "description": "JavaScript"}
}


@cache
def _static(name: str) -> bytes:
    return resources.files("offerloop.delivery.push").joinpath("static", name).read_bytes()


@router.get(
    "/vapid",
    summary="The workspace's VAPID public key (applicationServerKey)",
    responses=error_responses(*_ANY),
)
def vapid(db: DB, principal: AnyKey) -> VapidPublicKey:
    with db.write() as session:  # made and stored on first use
        return VapidPublicKey(
            public_key=service.vapid_public_key(session=session, workspace_id=principal.workspace_id)
        )


@router.post(
    "/subscriptions", status_code=201,
    summary="Store a browser's push subscription for a buyer (write key: anonymousId, or a buyer token)",
    responses=error_responses(*_ANY, InvalidSubscription, BuyerTokenRequired, BadLink, BuyerNotFound),
)  # fmt: skip
def subscribe(request: Request, db: DB, principal: AnyKey, body: PushSubscriptionIn) -> PushSubscriptionRead:
    # The write key is public: a page saying "I am userId u_42" proves nothing, and the subscription would then
    # receive u_42's pushes. A known buyer is named by a token the creator's backend minted (or the secret key).
    owner = _token_buyer(request, principal, body.token) if body.token is not None else None
    if owner is None and body.user_id is not None and not principal.is_secret:
        raise BuyerTokenRequired(
            "a subscription for a userId needs the secret key, or a buyer token from POST /v1/inbox/tokens "
            "(your backend mints it) sent as token"
        )
    with db.write() as session:
        return service.subscribe(session=session, workspace_id=principal.workspace_id, body=body, buyer_id=owner,
                                 vouched=principal.is_secret,
                                 allow_private=bool(get_settings(request).webhook_allow_private))  # fmt: skip


def _token_buyer(request: Request, principal: Principal, token: str) -> str:
    """The buyer a buyer token (an inbox token) names, in the caller's workspace."""
    workspace_id, buyer_id = delivery_service.inbox_owner(signing_secret(request), token)
    if workspace_id != principal.workspace_id:
        raise BadLink("this token is not for this workspace")
    return buyer_id


@router.delete(
    "/subscriptions", summary="Forget a browser's push subscription, by its endpoint (write key)",
    responses=error_responses(*_ANY),
)  # fmt: skip
def unsubscribe(db: DB, principal: AnyKey, body: UnsubscribeIn) -> Unsubscribed:
    with db.write() as session:
        return service.unsubscribe(
            session=session, workspace_id=principal.workspace_id, endpoint=body.endpoint
        )


@router.post(
    "/send", summary="Push a message to every subscription of a buyer now (secret key)",
    responses=error_responses(*_ANY, SecretKeyRequired, BuyerNotFound, InvalidSubscription, PushPayloadTooLarge),
)  # fmt: skip
def send(db: DB, principal: SecretKey, body: PushSendIn) -> list[PushSendResult]:
    return service.send(db, workspace_id=principal.workspace_id, buyer_id=body.buyer_id, payload=body.payload,
                        ttl_s=body.ttl_s, urgency=body.urgency, topic=body.topic)  # fmt: skip


@router.get("/sw.js", summary="The push service worker", response_class=Response, responses=_JS)
def service_worker() -> Response:
    return Response(
        _static("sw.js"), media_type="text/javascript",
        headers={"Service-Worker-Allowed": "/", "Cache-Control": "no-cache"},
    )  # fmt: skip


@router.get("/subscribe.js", summary="A small helper that registers the worker and subscribes", response_class=Response,
            responses=_JS)  # fmt: skip
def subscribe_js() -> Response:
    return Response(
        _static("subscribe.js"), media_type="text/javascript", headers={"Cache-Control": "max-age=300"}
    )
