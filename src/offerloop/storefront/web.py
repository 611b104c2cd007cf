"""The hosted pages' routes under /o/<workspace>: the offer page, the checkout link (GET: a small form; POST:
the checkout), the thank-you page and its status fragment. Every error a visitor can cause is an HTML page
with its status (never JSON, never a 500); every form field is bounded and checked.

CSRF: a double-submit cookie (a random value, also in every form, compared in constant time) plus the
browser's Origin, which must be this server. No session is needed, so an anonymous visitor can buy.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Coroutine, Mapping
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

from fastapi import APIRouter, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, FileSystemLoader, select_autoescape
from markupsafe import Markup
from starlette.concurrency import run_in_threadpool

from offerloop.checkout.stripe_provider import StripeConfig, StripeProvider
from offerloop.core.errors import OfferloopError, RateLimited
from offerloop.core.ratelimit import RateLimiter
from offerloop.db.uow import Database
from offerloop.storefront import service
from offerloop.storefront.exceptions import BadForm, CsrfRefused, FormTooLarge, PageNotFound
from offerloop.telemetry import log
from offerloop.web import HeadAsGetRoute

PACKAGE = Path(__file__).parent
STATIC = PACKAGE / "static"
PREFIX = "/o"
VISITOR_COOKIE = "ol_visitor"
CSRF_COOKIE = "ol_csrf"
COOKIE_PATH = "/o/"
VISITOR_DAYS = 365
PICK_DAYS = 30  # at most: a kept decision also ends with its outcome window
MAX_FORM_BYTES = 8 * 1024
MAX_FORM_FIELDS = 20
MAX_FIELD = 4096  # the longest field (a signed link's token); the others have their own, smaller bounds
BUYS_PER_MINUTE = 20  # buy forms per client address and workspace, in this process
VIEWS_PER_MINUTE = 120  # offer pages (each may log a decision) per client address and workspace

templates = Environment(
    loader=FileSystemLoader(PACKAGE / "templates"),
    autoescape=select_autoescape(default=True, default_for_string=True),
    trim_blocks=True,
    lstrip_blocks=True,
)


def _paragraphs(text: str | None) -> list[str]:
    return [p.strip() for p in (text or "").split("\n\n") if p.strip()]


templates.filters["paragraphs"] = _paragraphs


def render(
    template: str, context: Mapping[str, Any], *, status_code: int = 200, form_page: bool = False
) -> HTMLResponse:
    page = templates.get_template(template).render(**context)
    headers = {"Cache-Control": "no-store"}
    if form_page:
        # A page with a buy form: "same-origin" (not the server-wide no-referrer), so a browser sends this
        # server as the POST's Origin rather than `null`, and the CSRF check can see where it came from.
        headers["Referrer-Policy"] = "same-origin"
    return HTMLResponse(page, status_code=status_code, headers=headers)


def _error_page(status: int, message: str, retry_after: Any = None) -> Response:
    status = status if 400 <= status < 500 else 502
    page = render("error.html", {"status": status, "message": message}, status_code=status)
    if retry_after is not None:
        page.headers["Retry-After"] = str(retry_after)
    return page


class StorefrontRoute(HeadAsGetRoute):
    """Domain errors and invalid parameters become HTML pages with their status."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def storefront_handler(request: Request) -> Response:
            try:
                return await handler(request)
            except OfferloopError as exc:
                if exc.status_code >= 500:
                    log.warning("storefront refusal", path=request.url.path, code=exc.code)
                retry = exc.details.get("retry_after_s") if isinstance(exc.details, dict) else None
                return _error_page(exc.status_code, exc.message, retry)
            except RequestValidationError:
                return _error_page(422, "the request is not valid")

        return storefront_handler


router = APIRouter(prefix=PREFIX, route_class=StorefrontRoute, include_in_schema=False)


def _db(request: Request) -> Database:
    db: Database = request.app.state.db
    return db


def _secure(request: Request) -> bool:
    return bool(request.app.state.settings.public_url.startswith("https://"))


def _visitor_id(request: Request) -> tuple[str, bool]:
    """The visitor's first-party anonymous id (its cookie), or a new one (True: set the cookie)."""
    found = request.cookies.get(VISITOR_COOKIE, "")
    if service.VISITOR.fullmatch(found):
        return found, False
    return service.new_visitor_id(), True


def _csrf(request: Request) -> tuple[str, bool]:
    found = request.cookies.get(CSRF_COOKIE, "")
    if service.IDEMPOTENCY.fullmatch(found):
        return found, False
    return secrets.token_urlsafe(24), True


def _set_cookies(
    request: Request, response: Response, visitor: tuple[str, bool], csrf: tuple[str, bool]
) -> None:
    secure = _secure(request)
    if visitor[1]:
        response.set_cookie(VISITOR_COOKIE, visitor[0], max_age=VISITOR_DAYS * 86400, path=COOKIE_PATH,
                            httponly=True, samesite="lax", secure=secure)  # fmt: skip
    if csrf[1]:
        response.set_cookie(CSRF_COOKIE, csrf[0], max_age=VISITOR_DAYS * 86400, path=COOKIE_PATH, httponly=True,
                            samesite="lax", secure=secure)  # fmt: skip


def _stripe(request: Request) -> StripeProvider | None:
    s = request.app.state.settings
    if not s.stripe_api_key or not s.stripe_webhook_secret:
        return None  # the manual provider: the buyer lands on the thank-you page, the creator marks it paid
    return StripeProvider(StripeConfig(api_key=s.stripe_api_key, webhook_secret=s.stripe_webhook_secret,
                                       api_base=s.stripe_api_base))  # fmt: skip


def _bounded(value: str | None, most: int) -> str | None:
    return value if value is not None and len(value) <= most and "\x00" not in value else None


# -- the offer page and the checkout link's form ---------------------------------------------------------


def _shown_page(
    request: Request, workspace: str, offer: str, template: str, *, email: str = "", error: str | None = None
) -> Response:
    db = _db(request)
    settings = request.app.state.settings
    _limit(request, "storefront_view_limiter", VIEWS_PER_MINUTE, workspace, "pages")
    visitor_id, csrf = _visitor_id(request), _csrf(request)
    token = _bounded(request.query_params.get("t"), MAX_FIELD)
    with db.read() as session:
        secret = service.secret_of(session, settings.secret)
        visitor = service.known_visitor(session=session, workspace_id=workspace, anonymous_id=visitor_id[0],
                                        secret=secret, token=token)  # fmt: skip
    kept = _bounded(request.cookies.get(_pick_cookie(offer)), 128)
    shown = service.present(db=db, workspace_id=workspace, key=offer, visitor=visitor,
                            currency=_bounded(request.query_params.get("currency"), 8),
                            holdout_share=settings.holdout_share, secret=secret, kept=kept,
                            shown=request.method != "HEAD")  # fmt: skip
    seal = (
        service.decision_seal(secret, workspace, offer, visitor, shown.decision_id)
        if shown.decision_id
        else ""
    )
    context = {
        "workspace": workspace, "offer": shown, "csrf": csrf[0], "form_key": service.new_form_key(),
        "seal": seal, "known": visitor.user_id is not None, "token": token or "", "error": error, "email": email,
    }  # fmt: skip
    response = render(template, context, status_code=422 if error else 200, form_page=True)
    _set_cookies(request, response, visitor_id, csrf)
    if shown.decision_id and kept != f"{shown.decision_id}.{seal}":  # the visitor keeps this pick
        response.set_cookie(_pick_cookie(offer), f"{shown.decision_id}.{seal}", max_age=PICK_DAYS * 86400,
                            path=f"{PREFIX}/{workspace}/", httponly=True, samesite="lax", secure=_secure(request))  # fmt: skip
    return response


def _pick_cookie(offer: str) -> str:
    """The cookie that keeps the decision a visitor was shown an offer by (offer keys are cookie-safe)."""
    return f"ol_pick_{offer[:64]}"


@router.get("/{workspace}/{offer}", response_class=HTMLResponse)
def offer_page(request: Request, workspace: str, offer: str) -> Response:
    """The offer as the decision engine picks it for this visitor, with its buy form."""
    return _shown_page(request, workspace, offer, "offer.html")


@router.get("/{workspace}/{offer}/buy", response_class=HTMLResponse)
def buy_form(request: Request, workspace: str, offer: str) -> Response:
    """The checkout link for e-mails and bios: a small form (a GET never buys: link previews follow links)."""
    return _shown_page(request, workspace, offer, "buy.html")


# -- the checkout ----------------------------------------------------------------------------------------


async def _read_form(request: Request) -> dict[str, str]:
    """An urlencoded form, bounded while it streams (size and fields), decoded strictly."""
    kind = request.headers.get("content-type", "").split(";")[0].strip().lower()
    if kind != "application/x-www-form-urlencoded":
        raise BadForm("send the form as application/x-www-form-urlencoded")
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > MAX_FORM_BYTES:
        raise FormTooLarge(f"the form is over {MAX_FORM_BYTES} bytes")
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM_BYTES:
            raise FormTooLarge(f"the form is over {MAX_FORM_BYTES} bytes")
    try:
        pairs = parse_qsl(bytes(body).decode("ascii"), keep_blank_values=True, max_num_fields=MAX_FORM_FIELDS,
                          errors="strict")  # fmt: skip
    except (UnicodeDecodeError, ValueError) as exc:
        raise BadForm("the form is not valid urlencoded UTF-8") from exc
    form: dict[str, str] = {}
    for name, value in pairs:
        if name in form or len(value) > MAX_FIELD or "\x00" in value:
            raise BadForm(f"the field {name[:40]!r} is repeated or too long")
        form[name] = value
    return form


def _same_origin(request: Request) -> bool:
    """A browser names the page a POST came from (Origin, else Referer): it must be this server."""
    source = request.headers.get("origin") or request.headers.get("referer")
    if source is None:
        return True  # not a browser (curl, tests): the CSRF token still has to match
    netloc = urlsplit(source).netloc
    public = urlsplit(request.app.state.settings.public_url).netloc
    return netloc != "" and netloc in (request.headers.get("host"), public)


def _limit(request: Request, name: str, per_minute: int, workspace: str, what: str) -> None:
    """One bucket per client address and workspace, in this process (see core/ratelimit)."""
    limiter = getattr(request.app.state, name, None)
    if limiter is None:
        limiter = RateLimiter(rate_per_s=per_minute / 60.0, burst=per_minute)
        setattr(request.app.state, name, limiter)
    verdict = limiter.take((workspace, request.client.host if request.client is not None else "unknown"))
    if not verdict.allowed:
        raise RateLimited(f"too many {what} from this address: try again in {verdict.retry_after_s} s",
                          details={"retry_after_s": verdict.retry_after_s})  # fmt: skip


def _parse(request: Request, form: Mapping[str, str], workspace: str, offer: str, visitor_id: str,
           csrf_cookie: str) -> service.BuyForm:  # fmt: skip
    sent = form.get("csrf_token", "")
    if not _same_origin(request):
        raise CsrfRefused("the form came from another site", details={"reason": "cross_origin"})
    if not csrf_cookie or not sent or not secrets.compare_digest(sent.encode(), csrf_cookie.encode()):
        raise CsrfRefused("the form's security token is missing or stale: reload the page and try again",
                          details={"reason": "csrf_token_mismatch"})  # fmt: skip
    form_key = form.get("form_key", "")
    if not service.IDEMPOTENCY.fullmatch(form_key):
        raise BadForm(
            "the form's key is missing: reload the page and try again", details={"field": "form_key"}
        )
    decision_id = form.get("decision_id") or None
    if decision_id is not None and len(decision_id) > 40:
        raise BadForm("the decision is not valid", details={"field": "decision_id"})
    db = _db(request)
    with db.read() as session:
        secret = service.secret_of(session, request.app.state.settings.secret)
        visitor = service.known_visitor(session=session, workspace_id=workspace, anonymous_id=visitor_id,
                                        secret=secret, token=form.get("t") or None)  # fmt: skip
    email = service.clean_email(form.get("email", ""), required=visitor.user_id is None)
    return service.BuyForm(
        workspace_id=workspace, key=offer, visitor=visitor, email=email,
        currency=_bounded(form.get("currency"), 8), decision_id=decision_id, seal=form.get("seal", "")[:64],
        csrf=csrf_cookie, form_key=form_key,
    )  # fmt: skip


@router.post("/{workspace}/{offer}/buy", response_class=HTMLResponse)
async def buy(request: Request, workspace: str, offer: str) -> Response:
    """Create the checkout: Stripe's hosted page, or the manual provider's thank-you page (303 either way)."""
    form = await _read_form(request)
    csrf_cookie = request.cookies.get(CSRF_COOKIE, "")
    csrf_cookie = csrf_cookie if service.IDEMPOTENCY.fullmatch(csrf_cookie) else ""
    visitor = _visitor_id(request)
    settings = request.app.state.settings

    def work() -> service.Bought:
        parsed = _parse(request, form, workspace, offer, visitor[0], csrf_cookie)
        _limit(request, "storefront_buy_limiter", BUYS_PER_MINUTE, workspace, "checkouts")
        return service.buy(db=_db(request), form=parsed, secret_configured=settings.secret, provider=_stripe(request),
                           tax_percent=settings.tax_percent, public_url=settings.public_url,
                           holdout_share=settings.holdout_share)  # fmt: skip

    try:
        bought = await run_in_threadpool(work)
    except BadForm as exc:
        if exc.details and exc.details.get("field") == "email":  # shown again, with the message by the field
            return await run_in_threadpool(_form_again, request, workspace, offer, form, exc.message)
        raise
    location = bought.redirect or f"{PREFIX}/{workspace}/thanks/{bought.token}"
    response = RedirectResponse(location, status_code=303, headers={"Cache-Control": "no-store"})
    _set_cookies(request, response, visitor, (csrf_cookie, False))
    return response


def _form_again(
    request: Request, workspace: str, offer: str, form: Mapping[str, str], message: str
) -> Response:
    """The same form again (a new key: nothing was bought), the visitor's input kept, the error by its field."""
    return _shown_page(request, workspace, offer, "buy.html", email=(form.get("email") or "")[: service.MAX_EMAIL],
                       error=message)  # fmt: skip


# -- the thank-you page ----------------------------------------------------------------------------------


def _thanks(request: Request, workspace: str, token: str) -> service.Thanks:
    settings = request.app.state.settings
    with _db(request).read() as session:
        return service.thanks(session=session, workspace_id=workspace, token=token,
                              secret_configured=settings.secret, ttl_s=settings.download_ttl_s)  # fmt: skip


@router.get("/{workspace}/thanks/{token}", response_class=HTMLResponse)
def thanks_page(request: Request, workspace: str, token: str) -> Response:
    """The order's state, the deliverable's preview at once, its file once ready (the page polls)."""
    if token == "buy":  # the checkout link of an offer keyed "thanks"
        return buy_form(request, workspace, "thanks")
    found = _thanks(request, workspace, token)
    return render(
        "thanks.html", {"workspace": workspace, "t": found, "preview": Markup(found.preview_html or "")}
    )


@router.get("/{workspace}/thanks/{token}/status", response_class=HTMLResponse)
def thanks_status(request: Request, workspace: str, token: str) -> Response:
    """The part of the thank-you page that changes (what its script polls)."""
    found = _thanks(request, workspace, token)
    return render(
        "status.html", {"workspace": workspace, "t": found, "preview": Markup(found.preview_html or "")}
    )


def not_found_page() -> Response:
    return _error_page(404, PageNotFound("there is no such page").message)
