"""Sign in and sign out."""

from __future__ import annotations

import secrets
from typing import Annotated

from fastapi import Query, Request
from fastapi.responses import RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from offerloop.console import service, web
from offerloop.console.exceptions import BadCredentials, CsrfRefused, LoginRateLimited, WorkspaceNeeded
from offerloop.console.schemas import NewSession
from offerloop.core.ratelimit import RateLimiter
from offerloop.db.uow import Database

router = web.router
Next = Annotated[str, Query(max_length=500)]


def safe_next(target: str) -> str:
    """Only a console path of this server (never //host or a scheme: no open redirect)."""
    ok = target.startswith("/console") and not target.startswith("//") and "\\" not in target
    return target if ok and "://" not in target else "/console"


def limiters(request: Request) -> tuple[RateLimiter, RateLimiter]:
    """Per client address and per e-mail: a token bucket each, held by the app (see core/ratelimit)."""
    state = request.app.state
    if not hasattr(state, "console_login_limits"):
        per_minute = state.settings.console_logins_per_minute
        state.console_login_limits = (
            RateLimiter(rate_per_s=per_minute / 60, burst=per_minute),
            RateLimiter(rate_per_s=per_minute / 60, burst=per_minute),
        )
    limits: tuple[RateLimiter, RateLimiter] = state.console_login_limits
    return limits


def _login_page(request: Request, *, next_url: str, error: str | None = None, email: str = "",
                status_code: int = 200, headers: dict[str, str] | None = None) -> Response:  # fmt: skip
    token = secrets.token_urlsafe(32)
    page = web.render(
        request, "auth/login.html", {"next": next_url, "error": error, "email": email, "login_token": token},
        status_code=status_code, headers=headers,
    )  # fmt: skip
    page.set_cookie(web.LOGIN_COOKIE, token, path=web.COOKIE_PATH, httponly=True, samesite="lax",
                    secure=web.secure_cookies(request), max_age=3600)  # fmt: skip
    return page


@router.get("/console/login")
async def login_form(request: Request, next: Next = "/console") -> Response:
    return _login_page(request, next_url=safe_next(next))


def _sign_in(
    db: Database, email: str, password: str, hours: float, old_token: str, workspace_id: str | None
) -> NewSession:
    with db.write() as session:
        created = service.sign_in(
            session=session, email=email, password=password, hours=hours, workspace_id=workspace_id
        )
        # A fresh session on every sign-in (a token planted before it never becomes valid); the browser's
        # previous session, if it was one, ends.
        previous = service.signed_in(session=session, token=old_token) if old_token else None
        if previous is not None:
            service.sign_out(
                session=session, workspace_id=previous.workspace_id, session_hash=previous.session_hash
            )
        return created


@router.post("/console/login")
async def login(request: Request, db: web.DB, form: web.Form) -> Response:
    next_url = safe_next(form.get("next", "/console")[:500])
    email = web.field(form, "email", max_length=320, required=False)
    password = web.field(form, "password", max_length=1024, required=False)
    workspace = web.field(form, "workspace", max_length=40, required=False).strip() or None
    sent, expected = form.get("login_token", ""), request.cookies.get(web.LOGIN_COOKIE, "")
    if (
        not web.same_origin(request)
        or not sent
        or not secrets.compare_digest(sent.encode(), expected.encode())
    ):
        raise CsrfRefused(
            "the sign-in form expired: load it again", details={"reason": "login_token_mismatch"}
        )
    by_address, by_email = limiters(request)
    client = request.client.host if request.client else "unknown"
    for verdict in (by_address.take(client), by_email.take(email.strip().lower()[:320])):
        if not verdict.allowed:
            raise LoginRateLimited(
                f"too many sign-in attempts; try again in {verdict.retry_after_s} s",
                details={"retry_after_s": verdict.retry_after_s},
            )
    hours = request.app.state.settings.console_session_hours
    try:
        created = await run_in_threadpool(
            _sign_in, db, email, password, hours, request.cookies.get(web.COOKIE, ""), workspace
        )
    except (BadCredentials, WorkspaceNeeded) as exc:
        return _login_page(request, next_url=next_url, error=exc.message, email=email[:320],
                           status_code=exc.status_code)  # fmt: skip
    response = RedirectResponse(next_url, status_code=303, headers={"Cache-Control": "no-store"})
    response.set_cookie(web.COOKIE, created.token, path=web.COOKIE_PATH, httponly=True, samesite="lax",
                        secure=web.secure_cookies(request), max_age=int(hours * 3600))  # fmt: skip
    response.delete_cookie(web.LOGIN_COOKIE, path=web.COOKIE_PATH)
    return response


def _sign_out(db: Database, workspace_id: str, session_hash: str) -> None:
    with db.write() as session:
        service.sign_out(session=session, workspace_id=workspace_id, session_hash=session_hash)


@router.post("/console/logout")
async def logout(db: web.DB, user: web.Posted) -> Response:
    await run_in_threadpool(_sign_out, db, user.workspace_id, user.session_hash)
    response = RedirectResponse("/console/login", status_code=303, headers={"Cache-Control": "no-store"})
    response.delete_cookie(web.COOKIE, path=web.COOKIE_PATH)
    return response
