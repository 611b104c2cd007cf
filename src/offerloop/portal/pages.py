"""The portal's pages: sign-in by magic link, purchases and downloads, subscription, access and quota, my
data. No business logic: each page calls the domains' services with the session's (workspace, buyer)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

import orjson
from fastapi import Path, Query, Request
from fastapi.responses import RedirectResponse, Response
from starlette.background import BackgroundTask

from offerloop import pipeline
from offerloop.assembly import service as assembly_service
from offerloop.checkout import service as checkout_service
from offerloop.core.ratelimit import RateLimiter
from offerloop.db.uow import Database
from offerloop.entitlements import service as entitlements_service
from offerloop.identity import service as identity_service
from offerloop.identity.schemas import ConsentUpdate
from offerloop.offers import service as offers_service
from offerloop.offers.exceptions import OfferNotFound
from offerloop.portal import service, web
from offerloop.portal.exceptions import InvalidPortalForm, LinkNotValid, PortalNotFound, PortalRateLimited
from offerloop.portal.schemas import SignedInBuyer
from offerloop.subscriptions import service as subscriptions_service
from offerloop.subscriptions.exceptions import SubscriptionNotFound
from offerloop.telemetry import log

router = web.router
ObjectId = Annotated[str, Path(min_length=1, max_length=40, pattern=r"^[A-Za-z0-9_]+$")]
Done = Annotated[str | None, Query(max_length=40)]
# Links asked for: per client address (any workspace, any e-mail) and per e-mail address of a workspace.
LINKS_PER_ADDRESS_PER_MINUTE = 20
LINKS_PER_EMAIL_PER_15_MIN = 5
PLAN_ACTIONS = ("pause", "resume", "cancel", "change_plan")
DONE = {
    "pause": "Your subscription is paused.",
    "resume": "Your subscription is running again.",
    "cancel": "Your subscription ends at the end of the current period.",
    "canceled": "Your subscription is canceled.",
    "change_plan": "Your plan was changed.",
    "consent": "Your choices were saved.",
}


def limiters(request: Request) -> tuple[RateLimiter, RateLimiter]:
    state = request.app.state
    if not hasattr(state, "portal_link_limits"):
        state.portal_link_limits = (
            RateLimiter(rate_per_s=LINKS_PER_ADDRESS_PER_MINUTE / 60, burst=LINKS_PER_ADDRESS_PER_MINUTE),
            RateLimiter(rate_per_s=LINKS_PER_EMAIL_PER_15_MIN / 900, burst=LINKS_PER_EMAIL_PER_15_MIN),
        )
    limits: tuple[RateLimiter, RateLimiter] = state.portal_link_limits
    return limits


def _limit(request: Request, *keys: tuple[int, Any]) -> None:
    """Take a token from each (limiter index, key); 429 when one is out."""
    both = limiters(request)
    for index, key in keys:
        verdict = both[index].take(key)
        if not verdict.allowed:
            raise PortalRateLimited(
                f"too many requests; try again in {verdict.retry_after_s} s",
                details={"retry_after_s": verdict.retry_after_s},
            )


# -- signing in ----------------------------------------------------------------------------------------


@router.get("/p/{workspace}/login")
def login_form(request: Request, place: web.Place) -> Response:
    return web.with_form_token(request, place, "login.html", {"email": ""})


@router.post("/p/{workspace}/login")
def ask_for_link(request: Request, db: web.DB, place: web.Place, form: web.Form) -> Response:
    web.form_token_checked(request, form)
    email = web.field(form, "email", max_length=320)
    try:
        address = service.checked_address(email)
    except InvalidPortalForm as exc:
        _limit(request, (0, web.client_address(request)))
        return web.with_form_token(request, place, "login.html", {"email": email, "error": exc.message},
                                   status_code=exc.status_code)  # fmt: skip
    # per address as the directory knows it: spellings of one address share its limit
    _limit(request, (0, web.client_address(request)), (1, (place.id, address)))
    # The same page, at the same speed, whether the address is a buyer's or not: the lookup and the mail
    # happen after the answer is sent (done inline, a buyer's address answered measurably slower).
    page = web.render(request, "link_sent.html")
    page.background = BackgroundTask(_mail_link, db, place.id, address, request.app.state.settings.public_url)
    return page


def _mail_link(db: Database, workspace_id: str, address: str, public_url: str) -> None:
    try:
        with db.write() as session:
            sent = service.request_link(
                session=session, workspace_id=workspace_id, email=address, public_url=public_url
            )
    except Exception:  # after the answer: nothing to tell the client; the log says what went wrong
        log.exception("portal sign-in link failed", workspace_id=workspace_id)
        return
    log.info("portal sign-in link asked", workspace_id=workspace_id, sent=sent)


@router.get("/p/{workspace}/auth")
def confirm_link(
    request: Request,
    db: web.DB,
    place: web.Place,
    token: Annotated[str, Query(max_length=service.MAX_TOKEN_LENGTH)] = "",
) -> Response:
    """A page with a button, not the sign-in itself: mail scanners that open links would use it up. A link
    that would not sign in (unknown, used, expired) gets the refusal at once, without a button."""
    try:
        with db.read() as session:
            service.check_link(session=session, workspace_id=place.id, token=token)
    except LinkNotValid as exc:
        # only refusals count against the address (a guesser's every try is one; a buyer's link is not)
        _limit(request, (0, web.client_address(request)))
        return web.render(request, "link_refused.html", {"message": exc.message}, status_code=exc.status_code)
    return web.with_form_token(request, place, "auth.html", {"token": token})


@router.post("/p/{workspace}/auth")
def use_link(request: Request, db: web.DB, place: web.Place, form: web.Form) -> Response:
    web.form_token_checked(request, form)
    _limit(request, (0, web.client_address(request)))
    token = web.field(form, "token", max_length=service.MAX_TOKEN_LENGTH, required=False)
    try:
        with db.write() as session:
            created = service.sign_in_with_link(session=session, workspace_id=place.id, token=token,
                                                previous_token=request.cookies.get(web.COOKIE, ""))  # fmt: skip
    except LinkNotValid as exc:
        return web.render(request, "link_refused.html", {"message": exc.message}, status_code=exc.status_code)
    path = web.cookie_path(place.id)
    response = RedirectResponse(path, status_code=303, headers={"Cache-Control": "no-store"})
    response.set_cookie(web.COOKIE, created.token, path=path, httponly=True, samesite="lax",
                        secure=web.secure_cookies(request), max_age=service.SESSION_HOURS * 3600)  # fmt: skip
    response.delete_cookie(web.FORM_COOKIE, path=path)
    return response


@router.post("/p/{workspace}/logout")
def sign_out(db: web.DB, place: web.Place, buyer: web.Posted) -> Response:
    with db.write() as session:
        service.sign_out(session=session, workspace_id=place.id, session_hash=buyer.session_hash)
    response = RedirectResponse(
        f"/p/{place.id}/login", status_code=303, headers={"Cache-Control": "no-store"}
    )
    response.delete_cookie(web.COOKIE, path=web.cookie_path(place.id))
    return response


# -- purchases and downloads ---------------------------------------------------------------------------


@router.get("/p/{workspace}")
def purchases(request: Request, db: web.DB, buyer: web.Buyer) -> Response:
    with db.read() as session:
        orders = checkout_service.list_orders(
            session=session, workspace_id=buyer.workspace_id, buyer_id=buyer.buyer_id, limit=100
        ).items
        artifacts = assembly_service.buyer_artifacts(
            session=session, workspace_id=buyer.workspace_id, buyer_id=buyer.buyer_id
        )
    return web.render(request, "purchases.html", {"orders": orders, "artifacts": artifacts, "current": ""})


@router.get("/p/{workspace}/downloads/{artifact_id}/{fmt}")
def download(
    db: web.DB, buyer: web.Buyer, artifact_id: ObjectId, fmt: Literal["pdf", "html", "markdown"]
) -> Response:
    with db.read() as session:
        content, media_type, name, _ = assembly_service.buyer_file(
            session=session, workspace_id=buyer.workspace_id, buyer_id=buyer.buyer_id, artifact_id=artifact_id,
            fmt=fmt,
        )  # fmt: skip
    # a download, never a page of this origin: sandboxed, as the signed file links are
    return Response(content, media_type=media_type, headers={
        "Content-Disposition": f'attachment; filename="{name}"', "Cache-Control": "private, no-store",
        "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'; img-src data:; sandbox",
    })  # fmt: skip


# -- subscription --------------------------------------------------------------------------------------


def _plans(session: Any, workspace_id: str) -> dict[str, Any]:
    """The catalog's plans by key (none when the workspace has no catalog)."""
    try:
        catalog = offers_service.catalog_for(session=session, workspace_id=workspace_id)
    except OfferNotFound:
        return {}
    return {o.key: o for o in catalog.offers if o.recurring}


@router.get("/p/{workspace}/subscription")
def subscription(request: Request, db: web.DB, buyer: web.Buyer, done: Done = None) -> Response:
    with db.read() as session:
        subs = [subscriptions_service.subscription_read(row) for row in subscriptions_service.of_buyer(
            session=session, workspace_id=buyer.workspace_id, buyer_id=buyer.buyer_id)]  # fmt: skip
        plans = _plans(session, buyer.workspace_id)
    choices = {
        s.id: [(k, p.title, p.price(s.state.currency)) for k, p in plans.items()
               if k != s.offer_key and p.price(s.state.currency) is not None]
        for s in subs
    }  # fmt: skip
    return web.render(request, "subscription.html", {
        "subs": subs, "plans": plans, "choices": choices, "done": DONE.get(done or ""), "current": "subscription",
    })  # fmt: skip


def _own_subscription(session: Any, buyer: SignedInBuyer, subscription_id: str) -> str:
    """The status of the buyer's subscription. Another buyer's is not found, exactly as one that does not exist.
    One of a buyer merged into the signed-in (live) buyer is theirs: a merge moves no subscription."""
    try:
        row = subscriptions_service.row_of(session, buyer.workspace_id, subscription_id)
    except SubscriptionNotFound as exc:
        raise PortalNotFound("There is no such subscription.") from exc
    if row.buyer_id != buyer.buyer_id and row.buyer_id not in identity_service.lineage(
        session=session, workspace_id=buyer.workspace_id, buyer_id=buyer.buyer_id
    ):
        raise PortalNotFound("There is no such subscription.")
    return str(row.status)


@router.post("/p/{workspace}/subscription/{subscription_id}")
def subscription_action(
    request: Request, db: web.DB, buyer: web.Posted, form: web.Form, subscription_id: ObjectId
) -> Response:
    action = web.field(form, "action", max_length=20)
    if action not in PLAN_ACTIONS:
        raise InvalidPortalForm(
            f"action must be one of {', '.join(PLAN_ACTIONS)}", details={"field": "action"}
        )
    plan = web.field(form, "plan", max_length=120, required=action == "change_plan").strip() or None
    provider = checkout_service.stripe_provider(
        request.app.state.settings
    )  # a downgrade's credit: Stripe first
    with db.write() as session:
        status = _own_subscription(session, buyer, subscription_id)
        # A buyer cancels at the period's end (what they paid for runs out); refunds are the creator's call. A
        # paused or past-due one has no paid period running (a pause ended its access): it ends now, else the
        # buyer could not cancel it at all, and one the creator paused would bill again once they resume it.
        at_period_end = status in ("active", "trialing")
        subscriptions_service.act(session=session, workspace_id=buyer.workspace_id, subscription_id=subscription_id,
                                  action=action, plan=plan if action == "change_plan" else None,
                                  at_period_end=at_period_end, actor=f"buyer:{buyer.buyer_id}",
                                  provider=provider)  # fmt: skip
    done = "canceled" if action == "cancel" and not at_period_end else action
    return RedirectResponse(f"/p/{buyer.workspace_id}/subscription?done={done}", status_code=303)


# -- access and quota ----------------------------------------------------------------------------------


@router.get("/p/{workspace}/access")
def access(request: Request, db: web.DB, buyer: web.Buyer) -> Response:
    with db.read() as session:
        grants = entitlements_service.list_for_buyer(
            session=session, workspace_id=buyer.workspace_id, buyer_id=buyer.buyer_id
        )
        subs = [subscriptions_service.subscription_read(row) for row in subscriptions_service.of_buyer(
            session=session, workspace_id=buyer.workspace_id, buyer_id=buyer.buyer_id)]  # fmt: skip
    return web.render(request, "access.html", {"grants": grants, "subs": subs, "current": "access"})


# -- my data -------------------------------------------------------------------------------------------


@router.get("/p/{workspace}/data")
def my_data(request: Request, db: web.DB, buyer: web.Buyer, done: Done = None) -> Response:
    with db.read() as session:
        record = identity_service.get_buyer(
            session=session, workspace_id=buyer.workspace_id, buyer_id=buyer.buyer_id
        )
    return web.render(
        request, "data.html", {"record": record, "done": DONE.get(done or ""), "current": "data"}
    )


def _choice(form: dict[str, str], name: str) -> bool | None:
    value = web.field(form, name, max_length=10, required=False)
    if value not in ("", "yes", "no"):
        raise InvalidPortalForm(f"{name} must be yes or no", details={"field": name})
    return None if value == "" else value == "yes"


@router.post("/p/{workspace}/data/consent")
def consent(db: web.DB, buyer: web.Posted, form: web.Form) -> Response:
    rewrite = web.field(form, "ai_rewrite", max_length=20, required=False)
    if rewrite not in ("", "allowed", "originals_only", "reviewed_only"):
        raise InvalidPortalForm("ai_rewrite must be allowed, originals_only or reviewed_only",
                                details={"field": "ai_rewrite"})  # fmt: skip
    update = ConsentUpdate(marketing=_choice(form, "marketing"), personalization=_choice(form, "personalization"),
                           ai_rewrite=rewrite or None)  # fmt: skip
    with db.write() as session:
        identity_service.set_consent(session=session, workspace_id=buyer.workspace_id, buyer_id=buyer.buyer_id,
                                     consent=update, actor=f"buyer:{buyer.buyer_id}")  # fmt: skip
    return RedirectResponse(f"/p/{buyer.workspace_id}/data?done=consent", status_code=303)


@router.post("/p/{workspace}/data/export")
def export(db: web.DB, buyer: web.Posted) -> Response:
    pipeline.catch_up(db, workspace_id=buyer.workspace_id)  # every acknowledged event is in the export
    with db.write() as session:  # the export is audited
        exported = identity_service.export_buyer(session=session, workspace_id=buyer.workspace_id,
                                                 buyer_id=buyer.buyer_id, actor=f"buyer:{buyer.buyer_id}")  # fmt: skip
        body = orjson.dumps(exported.model_dump(mode="json", by_alias=True), option=orjson.OPT_INDENT_2)
    return Response(body, media_type="application/json", headers={
        "Content-Disposition": 'attachment; filename="my-data.json"', "Cache-Control": "no-store",
    })  # fmt: skip


@router.post("/p/{workspace}/data/delete")
def erase(request: Request, db: web.DB, buyer: web.Posted, form: web.Form) -> Response:
    if web.field(form, "confirm", max_length=10, required=False) != "yes":
        raise InvalidPortalForm("tick the box to confirm that your data should be erased",
                                details={"field": "confirm"})  # fmt: skip
    pipeline.catch_up(db, workspace_id=buyer.workspace_id)  # nothing acknowledged escapes the erasure
    with db.write() as session:  # the buyer's portal sessions and links go with the rest (erasure plan)
        identity_service.delete_buyer(session=session, workspace_id=buyer.workspace_id, buyer_id=buyer.buyer_id,
                                      actor=f"buyer:{buyer.buyer_id}")  # fmt: skip
    request.state.portal_buyer = None
    page = web.render(request, "erased.html")
    page.delete_cookie(web.COOKIE, path=web.cookie_path(buyer.workspace_id))
    return page
