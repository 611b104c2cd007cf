"""What every portal page shares: templates, the workspace of the URL, the signed-in buyer, CSRF and HTML
errors. Forms are read and origins checked with the console's helpers (``offerloop.console.web``).

A page is a route on ``router`` (``PortalRoute``): any OfferloopError it or its dependencies raise, and any
invalid parameter, is answered as an HTML page with the error's status (never JSON, never a 500); a request
without a session is sent to the workspace's sign-in page. Every page is scoped by the URL's workspace and
the session's buyer: nothing else is ever read.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable, Coroutine, Mapping
from dataclasses import dataclass
from pathlib import Path as FilePath
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Path, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import HTMLResponse, RedirectResponse, Response
from jinja2 import Environment, FileSystemLoader, select_autoescape

from offerloop import __version__
from offerloop.console import web as console_web
from offerloop.core.errors import OfferloopError
from offerloop.db.uow import Database
from offerloop.portal import service
from offerloop.portal.exceptions import (
    PortalCsrfRefused,
    PortalNotFound,
    PortalSignInRequired,
)
from offerloop.portal.schemas import SignedInBuyer
from offerloop.web import HeadAsGetRoute
from offerloop.workspaces.exceptions import WorkspaceNotFound

PACKAGE = FilePath(__file__).parent
STATIC = PACKAGE / "static"
COOKIE = "offerloop_portal"
FORM_COOKIE = "offerloop_portal_form"  # the double-submit token of the forms shown before a session exists
CSRF_FIELD = console_web.CSRF_FIELD
read_form = console_web.read_form
same_origin = console_web.same_origin
secure_cookies = console_web.secure_cookies
field = console_web.field  # bounded, NUL-free form fields (422 otherwise)

templates = Environment(
    loader=FileSystemLoader(PACKAGE / "templates"),
    autoescape=select_autoescape(default=True, default_for_string=True),
    trim_blocks=True,
    lstrip_blocks=True,
)
templates.globals.update(version=__version__, csrf_field=CSRF_FIELD)
templates.filters.update(money=console_web.templates.filters["money"])

NAV: tuple[tuple[str, str], ...] = (
    ("", "Purchases"),
    ("subscription", "Subscription"),
    ("access", "Access and quota"),
    ("data", "My data"),
)
templates.globals["nav"] = NAV


def cookie_path(workspace_id: str) -> str:
    return f"/p/{workspace_id}"


def render(
    request: Request, template: str, context: Mapping[str, Any] | None = None, *, status_code: int = 200,
    headers: Mapping[str, str] | None = None,
) -> HTMLResponse:  # fmt: skip
    buyer: SignedInBuyer | None = getattr(request.state, "portal_buyer", None)
    place: PortalWorkspace | None = getattr(request.state, "portal_workspace", None)
    page = templates.get_template(template).render(
        request=request, buyer=buyer, csrf=buyer.csrf_token if buyer else "", workspace=place,
        **(context or {}),
    )  # fmt: skip
    # Personal data: no shared cache keeps a page; same-origin referrers so the CSRF check sees our Origin.
    return HTMLResponse(
        page, status_code=status_code,
        headers={"Cache-Control": "no-store", "Referrer-Policy": "same-origin", **(headers or {})},
    )  # fmt: skip


def error_page(request: Request, status: int, code: str, message: str) -> Response:
    return render(request, "error.html", {"status": status, "code": code, "message": message},
                  status_code=status)  # fmt: skip


class PortalRoute(HeadAsGetRoute):
    """Domain errors and invalid parameters become HTML pages; a missing session, the sign-in page."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def portal_handler(request: Request) -> Response:
            try:
                return await handler(request)
            except PortalSignInRequired:
                place = request.path_params.get("workspace", "")
                return RedirectResponse(
                    f"/p/{place}/login", status_code=303, headers={"Cache-Control": "no-store"}
                )
            except OfferloopError as exc:
                page = error_page(request, exc.status_code, exc.code, exc.message)
                retry = exc.details.get("retry_after_s") if isinstance(exc.details, dict) else None
                if retry is not None:
                    page.headers["Retry-After"] = str(retry)
                return page
            except RequestValidationError as exc:
                if any(e["loc"][:2] == ("path", "workspace") for e in exc.errors()):
                    return error_page(request, 404, "not_found", "There is no buyer portal here.")
                return error_page(request, 422, "validation_failed", "The request is not valid.")

        return portal_handler


router = APIRouter(route_class=PortalRoute, include_in_schema=False)


def get_db(request: Request) -> Database:
    db: Database = request.app.state.db
    return db


DB = Annotated[Database, Depends(get_db)]
WorkspaceId = Annotated[str, Path(min_length=1, max_length=40, pattern=r"^[A-Za-z0-9_-]+$")]


@dataclass(frozen=True)
class PortalWorkspace:
    id: str
    name: str


def portal_workspace(request: Request, db: DB, workspace: WorkspaceId) -> PortalWorkspace:
    """The workspace of the URL (404 when there is none: another id shows nothing)."""
    try:
        with db.read() as session:
            name = service.workspace_name(session=session, workspace_id=workspace)
    except WorkspaceNotFound as exc:
        raise PortalNotFound("There is no buyer portal here.") from exc
    request.state.portal_workspace = found = PortalWorkspace(workspace, name)
    return found


Place = Annotated[PortalWorkspace, Depends(portal_workspace)]


def current_buyer(request: Request, db: DB, place: Place) -> SignedInBuyer:
    token = request.cookies.get(COOKIE, "")
    buyer = None
    if token:
        with db.read() as session:
            buyer = service.signed_in(session=session, workspace_id=place.id, token=token)
    if buyer is None:
        raise PortalSignInRequired("sign in to see your purchases")
    request.state.portal_buyer = buyer
    return buyer


Buyer = Annotated[SignedInBuyer, Depends(current_buyer)]
Form = Annotated[dict[str, str], Depends(read_form)]


def posted(request: Request, buyer: Buyer, form: Form) -> SignedInBuyer:
    """Every state-changing request carries the session's CSRF token and comes from a page of this server."""
    sent = form.get(CSRF_FIELD, "")
    if not same_origin(request):
        raise PortalCsrfRefused("the request came from another site")
    if not sent or not secrets.compare_digest(sent.encode(), buyer.csrf_token.encode()):
        raise PortalCsrfRefused(
            "the form's security token is missing or stale: reload the page and try again"
        )
    return buyer


Posted = Annotated[SignedInBuyer, Depends(posted)]


def form_token_checked(request: Request, form: Mapping[str, str]) -> None:
    """The forms shown before a session (ask for a link, use it) carry a token that must match their cookie."""
    sent, expected = form.get("form_token", ""), request.cookies.get(FORM_COOKIE, "")
    if not same_origin(request) or not sent or not secrets.compare_digest(sent.encode(), expected.encode()):
        raise PortalCsrfRefused("this form expired: load the page again")


def with_form_token(request: Request, place: PortalWorkspace, template: str, context: Mapping[str, Any],
                    status_code: int = 200) -> Response:  # fmt: skip
    """A page with a pre-session form: a fresh double-submit token in the form and in a cookie."""
    token = secrets.token_urlsafe(32)
    page = render(request, template, {**context, "form_token": token}, status_code=status_code)
    page.set_cookie(FORM_COOKIE, token, path=cookie_path(place.id), httponly=True, samesite="lax",
                    secure=secure_cookies(request), max_age=3600)  # fmt: skip
    return page


def client_address(request: Request) -> str:
    return request.client.host if request.client else "unknown"
