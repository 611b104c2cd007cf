"""The catch-all of /console/<section> (registered last): /console/home leads home; a name that is no section of
the nav is a 404 page."""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import RedirectResponse, Response

from offerloop.console import web

router = web.router


@router.get("/console/{section}")
async def unknown(request: Request, section: str, user: web.User) -> Response:
    if section == "home":
        return RedirectResponse("/console", status_code=307)
    return web.render(request, "errors/error.html", {"status": 404, "code": "not_found",
                      "message": "no such console page", "details": None}, status_code=404)  # fmt: skip
