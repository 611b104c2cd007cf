"""HTTP API of live drops: open, close and status (secret key); the overlay page, the per-viewer SSE feed and
the short link to checkout (public: no key, only what the drop shows anyone)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Annotated, Any
from urllib.parse import urlencode

import orjson
from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response, StreamingResponse
from starlette.concurrency import run_in_threadpool

from offerloop import pipeline
from offerloop.checkout.exceptions import CheckoutError, ProviderError, SoldOut
from offerloop.checkout.service import HOLD_MINUTES
from offerloop.checkout.stripe_provider import StripeConfig, StripeProvider
from offerloop.core.errors import OfferloopError, RateLimited, ValidationFailed, error_responses
from offerloop.core.ratelimit import AliveLimit, RateLimiter
from offerloop.live import feed, pages, service
from offerloop.live.exceptions import AssetNotFound, BadViewer, DropNotFound, DropNotLive
from offerloop.live.schemas import DropChanged, DropStatus
from offerloop.offers import service as offers_service
from offerloop.offers.exceptions import NotForSale, PricingError
from offerloop.workspaces.auth import DB, SecretKey, get_settings
from offerloop.workspaces.exceptions import InvalidKey, SecretKeyRequired

router = APIRouter(prefix="/v1", tags=["live"])
pages_router = APIRouter(prefix="/live", tags=["live"])

_KEY = (InvalidKey, SecretKeyRequired, ValidationFailed)
Viewer = Annotated[str | None, Query(description="The viewer's anonymousId (1-128 letters, digits, ._:@-)")]
Currency = Annotated[
    str | None, Query(max_length=8, description="Default: USD when offered, else the drop's first")
]
Decision = Annotated[
    str | None, Query(max_length=40, description="The decision that showed the viewer the offer")
]


# -- the creator: open, close, status ---------------------------------------------------------------------


@router.post("/drops/{key}/open", summary="Open a drop now (live until its closes_at or until closed); idempotent",
             responses=error_responses(*_KEY, DropNotFound, DropNotLive))  # fmt: skip
def open_drop(db: DB, principal: SecretKey, key: str) -> DropChanged:
    with db.write() as session:
        return service.open_drop(
            session=session, workspace_id=principal.workspace_id, key=key, actor=principal.key_id
        )


@router.post("/drops/{key}/close", summary="Close a drop now; idempotent",
             responses=error_responses(*_KEY, DropNotFound))  # fmt: skip
def close_drop(db: DB, principal: SecretKey, key: str) -> DropChanged:
    with db.write() as session:
        return service.close_drop(
            session=session, workspace_id=principal.workspace_id, key=key, actor=principal.key_id
        )


@router.get("/drops/{key}", summary="A drop's state, when it opens and closes, and its units left",
            responses=error_responses(*_KEY, DropNotFound))  # fmt: skip
def drop_status(db: DB, principal: SecretKey, key: str) -> DropStatus:
    with db.read() as session:
        return service.status(session=session, workspace_id=principal.workspace_id, key=key)


# -- viewers: the feed and the short link ------------------------------------------------------------------


def _go_url(workspace_id: str, key: str, viewer: str, decision_id: str | None, currency: str) -> str:
    query = {"viewer": viewer, "currency": currency, **({"decision": decision_id} if decision_id else {})}
    return f"/v1/live/{workspace_id}/{key}/go?{urlencode(query)}"


@router.get("/live/{workspace_id}/{key}/stream", response_class=StreamingResponse,
            summary="Server-Sent Events for one viewer (event: drop): the variant chosen for them, the countdown "
                    "target and the units left, pushed again whenever the drop changes",
            responses={200: {"description": "The viewer's frames (event: drop, data: JSON)",
                             "content": {"text/event-stream": {}}},
                       **error_responses(DropNotFound, BadViewer)})  # fmt: skip
async def stream(
    request: Request, workspace_id: str, key: str, viewer: Viewer = None, currency: Currency = None
) -> StreamingResponse:
    viewer = service.viewer_id(viewer)
    db = request.app.state.db
    holdout = get_settings(request).holdout_share

    def first() -> tuple[dict[str, Any], dict[str, Any]]:
        with db.read() as session:
            status = service.status(session=session, workspace_id=workspace_id, key=key)
        pipeline.catch_up(db, workspace_id=workspace_id)  # the viewer's events so far shape their persona
        pending: list[Any] = []
        with db.read() as session:
            shown = service.viewer_offer(session=session, workspace_id=workspace_id, key=key, viewer=viewer,
                                         currency=currency, holdout_share=holdout, log=pending)  # fmt: skip
        if pending:
            with db.write() as session:
                offers_service.record_decisions(session=session, decisions=pending)
        return service.public_status(status), shown

    def read() -> dict[str, Any]:
        with db.read() as session:
            return service.public_status(service.status(session=session, workspace_id=workspace_id, key=key))

    async def shared_read() -> dict[str, Any]:
        return await run_in_threadpool(read)

    status, shown = await run_in_threadpool(first)
    offer = {k: shown[k] for k in ("title", "description", "price", "currency", "formatted", "variant")}
    head = {"offer": offer, "decision_id": shown["decision_id"],
            "go_url": _go_url(workspace_id, key, viewer, shown["decision_id"], shown["currency"])}  # fmt: skip

    # what is this viewer's is encoded once; the drop's status is encoded once per change for every viewer
    mine = orjson.dumps(head)[1:-1]

    def frame(seq: int, watch: feed.Watch) -> bytes:
        return b'id: %d\nevent: drop\ndata: {"drop":%s,%s,"server_time":"%s"}\n\n' % (
            seq, watch.encoded, mine, watch.read_at,
        )  # fmt: skip

    async def events() -> AsyncIterator[bytes]:
        topic = (workspace_id, key)
        watch = feed.subscribe(topic, offers_service.drop_topic(workspace_id, key), shared_read, status)
        try:
            yield b"retry: 2000\n\n"
            # what every viewer of the drop is shown (this stream's own read seeds a new watch)
            current, seq, version = watch.status, 1, watch.version
            yield frame(seq, watch)
            while True:
                if not await watch.next(version):
                    yield b": keep-alive\n\n"
                    continue
                version = watch.version
                if watch.status != current:
                    current, seq = watch.status, seq + 1
                    yield frame(seq, watch)
        finally:
            feed.unsubscribe(topic, watch)

    return StreamingResponse(events(), media_type="text/event-stream",
                             headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})  # fmt: skip


def _stripe(request: Request) -> StripeProvider | None:
    s = get_settings(request)
    if not s.stripe_api_key or not s.stripe_webhook_secret:
        return None  # the manual provider: the viewer lands on the hosted order page
    return StripeProvider(StripeConfig(api_key=s.stripe_api_key, webhook_secret=s.stripe_webhook_secret,
                                       api_base=s.stripe_api_base))  # fmt: skip


@router.get("/live/{workspace_id}/{key}/go", status_code=303, response_class=RedirectResponse,
            summary="The short link: checks the viewer out, identified by their anonymousId, and redirects to the "
                    "provider's checkout (or the hosted order page); an HTML error page when it cannot",
            responses={303: {"description": "To the provider's checkout, or the hosted order page (Location)"},
                       **error_responses(DropNotFound, BadViewer, DropNotLive, SoldOut, NotForSale, PricingError,
                                         CheckoutError, ProviderError, RateLimited)})  # fmt: skip
def go(
    request: Request, db: DB, workspace_id: str, key: str, viewer: Viewer = None, decision: Decision = None,
    currency: Currency = None,
) -> Response:  # fmt: skip
    settings = get_settings(request)
    page = f"{settings.public_url.rstrip('/')}/live/{workspace_id}/{key}"
    client = (workspace_id, key, request.client.host if request.client is not None else "unknown")
    holds = _holds(request, settings.live_go_holds_per_address)
    try:
        _limit_checkouts(request, settings.live_go_per_minute, client)
        found = service.go(
            db=db, workspace_id=workspace_id, key=key, viewer=service.viewer_id(viewer), decision_id=decision,
            currency=currency, provider=_stripe(request), tax_percent=settings.tax_percent,
            success_url=f"{page}?bought=1", cancel_url=page, holdout_share=settings.holdout_share,
            before_hold=lambda: _room_for_a_hold(holds, client),
        )  # fmt: skip
        holds.add(client, found.order.id)
    except OfferloopError as exc:
        status = exc.status_code if 400 <= exc.status_code < 500 else 502
        headers = {"Retry-After": str(exc.details["retry_after_s"])} if isinstance(exc, RateLimited) else None
        return HTMLResponse(pages.problem(status, exc.message), status_code=status, headers=headers)
    if found.hosted:
        return RedirectResponse(f"/live/{workspace_id}/{key}/orders/{found.order.id}", status_code=303)
    assert found.order.checkout_url is not None
    return RedirectResponse(found.order.checkout_url, status_code=303)


def _limit_checkouts(request: Request, per_minute: int, client: tuple[str, str, str]) -> None:
    """One bucket per client address and drop, in this process (see core/ratelimit)."""
    limiter = getattr(request.app.state, "live_go_limiter", None)
    if limiter is None or limiter.rate != per_minute / 60.0:
        limiter = request.app.state.live_go_limiter = RateLimiter(
            rate_per_s=per_minute / 60.0, burst=per_minute
        )
    verdict = limiter.take(client)
    if not verdict.allowed:
        raise RateLimited(f"too many checkouts from this address: try again in {verdict.retry_after_s} s",
                          details={"retry_after_s": verdict.retry_after_s})  # fmt: skip


def _holds(request: Request, most: int) -> AliveLimit:
    """The units each client address holds of each drop through this link, in this process: a hold lasts
    until its order is paid or lapses (HOLD_MINUTES), so at most ``most`` unpaid at once."""
    found = getattr(request.app.state, "live_go_holds", None)
    if found is None or found.most != most:
        found = request.app.state.live_go_holds = AliveLimit(most=most, ttl_s=HOLD_MINUTES * 60.0)
    return found


def _room_for_a_hold(holds: AliveLimit, client: tuple[str, str, str]) -> None:
    verdict = holds.room(client)
    if not verdict.allowed:
        raise RateLimited(f"this address already holds {holds.most} units of this drop: try again in "
                          f"{verdict.retry_after_s} s", details={"retry_after_s": verdict.retry_after_s})  # fmt: skip


# -- pages: the overlay, its assets, the hosted order page ---------------------------------------------------


@pages_router.get("/_assets/{name}", response_class=Response, summary="The overlay's script and style",
                  responses={200: {"description": "The file", "content": {media: {} for media in pages.ASSETS.values()}},
                             **error_responses(AssetNotFound)})  # fmt: skip
def overlay_asset(name: str) -> Response:
    body = pages.asset(name)
    if body is None:
        raise AssetNotFound(f"no overlay file {name[:64]!r}")
    return Response(body, media_type=pages.ASSETS[name], headers={"Cache-Control": "public, max-age=300"})


@pages_router.get("/{workspace_id}/{key}", response_class=HTMLResponse,
                  summary="The overlay (a browser source for streaming software): the drop, live",
                  responses=error_responses(DropNotFound, BadViewer))  # fmt: skip
def overlay(
    db: DB, workspace_id: str, key: str, viewer: Viewer = None, currency: Currency = None
) -> HTMLResponse:
    if viewer is not None:
        service.viewer_id(viewer)
    try:
        with db.read() as session:
            status = service.status(session=session, workspace_id=workspace_id, key=key)
    except DropNotFound as exc:
        return HTMLResponse(pages.problem(404, exc.message), status_code=404)
    return HTMLResponse(pages.overlay(workspace_id, status, viewer, currency),
                        headers={"Content-Security-Policy": pages.OVERLAY_CSP, "Cache-Control": "no-store"})  # fmt: skip


@pages_router.get("/{workspace_id}/{key}/orders/{order_id}", response_class=HTMLResponse,
                  summary="The hosted page of a viewer's order (manual provider)",
                  responses=error_responses(DropNotFound))  # fmt: skip
def order_page(db: DB, workspace_id: str, key: str, order_id: str) -> HTMLResponse:
    try:
        with db.read() as session:
            order = service.order_page(session=session, workspace_id=workspace_id, key=key, order_id=order_id)
            title = service.drop_of(session=session, workspace_id=workspace_id, key=key).title
    except DropNotFound as exc:
        return HTMLResponse(pages.problem(404, exc.message), status_code=404)
    return HTMLResponse(pages.order(order, title), headers={"Cache-Control": "no-store"})
