"""The sections of the nav whose pages are not in the console yet (registered last: a catch-all)."""

from __future__ import annotations

from fastapi import Request
from fastapi.responses import RedirectResponse, Response

from offerloop.console import web

router = web.router


@router.get("/console/{section}")
async def not_built(request: Request, section: str, user: web.User) -> Response:
    """A section of the nav whose pages are not in the console yet: where to reach it meanwhile."""
    names = dict(web.SECTIONS)
    if section == "home":
        return RedirectResponse("/console", status_code=307)
    if section not in names:
        return web.render(request, "errors/error.html", {"status": 404, "code": "not_found",
                          "message": "no such console page", "details": None}, status_code=404)  # fmt: skip
    return web.render(request, "errors/not_built.html", {"section": section, "title": names[section]})
