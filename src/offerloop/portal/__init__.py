"""The buyer portal at /p/<workspace>: sign-in by magic link mailed through delivery, purchases and
downloads, subscription, access and quota, my data. Server-rendered (Jinja2, no script), its stylesheet
shipped in ``static/``; no business logic of its own: the pages call the domains' services."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from offerloop.portal import web


def install(app: FastAPI) -> None:
    """Mount the portal and its static files on ``app``."""
    from offerloop.portal import pages  # noqa: F401  (registers the routes on web.router)

    app.mount("/p/static", StaticFiles(directory=web.STATIC), name="portal-static")
    app.include_router(web.router)
