"""What every console page shares: templates, the signed-in user, roles, CSRF, forms and HTML errors.

A page is a FastAPI route on ``router`` (``ConsoleRoute``): any OfferloopError it or its dependencies
raise, and any invalid parameter, is answered as an HTML page with the error's status (never JSON, never
a 500), and a request without a session is sent to the sign-in page.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Coroutine, Mapping
from pathlib import Path
from typing import Annotated, Any
from urllib.parse import parse_qsl, quote, urlsplit

from fastapi import APIRouter, Depends, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from fastapi.routing import APIRoute
from jinja2 import Environment, FileSystemLoader, select_autoescape
from starlette.concurrency import run_in_threadpool

from offerloop import __version__
from offerloop.console import service
from offerloop.console.exceptions import CsrfRefused, InvalidUser, RoleRefused, SignInRequired
from offerloop.console.schemas import Role, SignedIn
from offerloop.core.errors import OfferloopError, ValidationFailed
from offerloop.db.uow import Database
from offerloop.telemetry import log

PACKAGE = Path(__file__).parent
STATIC = PACKAGE / "static"
COOKIE = "offerloop_console"
LOGIN_COOKIE = "offerloop_console_login"  # the double-submit token of the sign-in form (no session yet)
COOKIE_PATH = "/console"
CSRF_FIELD = "csrf_token"
CSRF_HEADER = "x-csrf-token"
MAX_FORM_BYTES = 64 * 1024
MAX_FORM_FIELDS = 50

# The sections of the console (issue 14), in the order of the nav; pages not built yet say so.
SECTIONS: tuple[tuple[str, str], ...] = (
    ("home", "Home"),
    ("buyers", "Buyers"),
    ("personas", "Personas"),
    ("decisions", "Decisions"),
    ("journeys", "Journeys"),
    ("assembly", "Assembly"),
    ("offers", "Offers"),
    ("orders", "Orders and subscriptions"),
    ("ledger", "Ledger and payouts"),
    ("analytics", "Analytics"),
    ("settings", "Settings"),
)

templates = Environment(
    loader=FileSystemLoader(PACKAGE / "templates"),
    autoescape=select_autoescape(default=True, default_for_string=True),
    trim_blocks=True,
    lstrip_blocks=True,
)
templates.globals.update(sections=SECTIONS, version=__version__, csrf_field=CSRF_FIELD)


def _minor(amount: int, currency: str) -> str:
    """Integer minor units shown as the currency's major units (2 decimals; the console only shows money)."""
    sign = "-" if amount < 0 else ""
    whole, cents = divmod(abs(int(amount)), 100)
    return f"{sign}{whole:,}.{cents:02d} {currency}"


def _value(value: object) -> str:
    """A feature's value for people: floats to 3 decimals, the rest as they are."""
    return f"{value:.3f}".rstrip("0").rstrip(".") if isinstance(value, float) else str(value)


templates.filters["money"] = _minor
templates.filters["value"] = _value


def render(
    request: Request,
    template: str,
    context: Mapping[str, Any] | None = None,
    *,
    status_code: int = 200,
    headers: Mapping[str, str] | None = None,
) -> HTMLResponse:
    """A page (or, for an htmx request, the same template's fragment when it defines one)."""
    user: SignedIn | None = getattr(request.state, "console_user", None)
    page = templates.get_template(template).render(
        request=request,
        user=user,
        csrf=user.csrf_token if user else "",
        layout="fragment.html" if request.headers.get("hx-request") else "base.html",
        **(context or {}),
    )
    # Personal data: no shared cache may keep a console page. "same-origin" (not the server-wide
    # no-referrer): under no-referrer a browser sends `Origin: null` with the page's forms, and the CSRF
    # check needs to see that a POST came from this server; other sites still learn nothing.
    return HTMLResponse(
        page, status_code=status_code,
        headers={"Cache-Control": "no-store", "Referrer-Policy": "same-origin", **(headers or {})},
    )  # fmt: skip


def _error_page(request: Request, status: int, code: str, message: str, details: Any = None) -> Response:
    return render(
        request, "errors/error.html", {"status": status, "code": code, "message": message, "details": details},
        status_code=status,
    )  # fmt: skip


def _sign_in_redirect(request: Request) -> Response:
    target = request.url.path + (f"?{request.url.query}" if request.url.query else "")
    location = f"/console/login?next={quote(target, safe='')}"
    if request.headers.get("hx-request"):
        # htmx follows a redirect inside the fragment; this header makes it load the sign-in page instead
        return Response(status_code=401, headers={"HX-Redirect": location, "Cache-Control": "no-store"})
    return RedirectResponse(location, status_code=303, headers={"Cache-Control": "no-store"})


class ConsoleRoute(APIRoute):
    """Domain errors and invalid parameters become HTML pages; a missing session, the sign-in page."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def console_handler(request: Request) -> Response:
            try:
                return await handler(request)
            except SignInRequired:
                return _sign_in_redirect(request)
            except OfferloopError as exc:
                headers = {}
                retry = exc.details.get("retry_after_s") if isinstance(exc.details, dict) else None
                if retry is not None:
                    headers["Retry-After"] = str(retry)
                page = _error_page(request, exc.status_code, exc.code, exc.message, exc.details)
                page.headers.update(headers)
                return page
            except RequestValidationError as exc:
                fields = [".".join(str(p) for p in e["loc"][1:]) or str(e["loc"][0]) for e in exc.errors()]
                return _error_page(request, 422, "validation_failed", "the request is not valid", fields)

        return console_handler


router = APIRouter(route_class=ConsoleRoute, include_in_schema=False)


def get_db(request: Request) -> Database:
    db: Database = request.app.state.db
    return db


DB = Annotated[Database, Depends(get_db)]


def _lookup(db: Database, token: str) -> SignedIn | None:
    with db.read() as session:
        return service.signed_in(session=session, token=token)


async def current_user(request: Request, db: DB) -> SignedIn:
    token = request.cookies.get(COOKIE, "")
    user = await run_in_threadpool(_lookup, db, token) if token else None
    if user is None:
        raise SignInRequired("sign in to use the console")
    request.state.console_user = user
    return user


User = Annotated[SignedIn, Depends(current_user)]


def require(*roles: Role) -> Callable[..., Coroutine[Any, Any, SignedIn]]:
    """A dependency: the signed-in user, refused with 403 unless their role is one of ``roles``."""

    async def check(user: User) -> SignedIn:
        refuse_unless(user, *roles)
        return user

    return check


Owner = Annotated[SignedIn, Depends(require("owner"))]
Reviewer = Annotated[SignedIn, Depends(require("owner", "reviewer"))]


async def read_form(request: Request) -> dict[str, str]:
    """An urlencoded form, bounded (size and fields), decoded strictly; the last value of a repeated field."""
    if request.headers.get("content-type", "").split(";")[0].strip().lower() not in (
        "application/x-www-form-urlencoded",
        "",
    ):
        raise ValidationFailed("send the form as application/x-www-form-urlencoded")
    cached: dict[str, str] | None = getattr(request.state, "console_form", None)
    if cached is not None:
        return cached
    body = await request.body()
    if len(body) > MAX_FORM_BYTES:
        raise ValidationFailed(f"the form is over {MAX_FORM_BYTES} bytes")
    try:
        pairs = parse_qsl(body.decode("ascii"), keep_blank_values=True, strict_parsing=False,
                          max_num_fields=MAX_FORM_FIELDS, errors="strict")  # fmt: skip
    except (UnicodeDecodeError, ValueError) as exc:
        raise ValidationFailed("the form is not valid urlencoded UTF-8") from exc
    form = dict(pairs)
    request.state.console_form = form
    return form


Form = Annotated[dict[str, str], Depends(read_form)]


def same_origin(request: Request) -> bool:
    """A browser names the page a POST came from (Origin, else Referer): it must be this server."""
    source = request.headers.get("origin") or request.headers.get("referer")
    if source is None:
        return True  # not a browser (curl, tests): the CSRF token still has to match
    parts = urlsplit(source)
    public = urlsplit(request.app.state.settings.public_url)
    return parts.netloc != "" and parts.netloc in (request.headers.get("host"), public.netloc)


async def csrf_checked(request: Request, user: User, form: Form) -> SignedIn:
    """Every state-changing console request carries the session's CSRF token (a form field, or the header
    htmx sends) and comes from a page of this server."""
    sent = request.headers.get(CSRF_HEADER) or form.get(CSRF_FIELD, "")
    if not same_origin(request):
        raise CsrfRefused("the request came from another site", details={"reason": "cross_origin"})
    if not sent or not secrets.compare_digest(sent.encode(), user.csrf_token.encode()):
        raise CsrfRefused(
            "the form's security token is missing or stale: reload the page and try again",
            details={"reason": "csrf_token_mismatch"},
        )
    return user


Posted = Annotated[SignedIn, Depends(csrf_checked)]


def refuse_unless(user: SignedIn, *roles: Role) -> None:
    if user.role not in roles:
        raise RoleRefused(
            f"your role ({user.role}) cannot do this; it needs: {', '.join(roles)}",
            details={"role": user.role, "needs": list(roles)},
        )


def field(form: Mapping[str, str], name: str, *, max_length: int = 320, required: bool = True) -> str:
    value = form.get(name, "")
    if "\x00" in value or len(value) > max_length:
        raise InvalidUser(f"{name} is too long (at most {max_length} characters)", details={"field": name})
    if required and not value.strip():
        raise InvalidUser(f"{name} is required", details={"field": name})
    return value


def secure_cookies(request: Request) -> bool:
    return bool(request.app.state.settings.public_url.startswith("https://"))


def log_refusal(request: Request, reason: str) -> None:
    log.info("console refusal", path=request.url.path, reason=reason)
