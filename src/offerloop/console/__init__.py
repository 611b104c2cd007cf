"""The creator console at /console: server-rendered pages (Jinja2 + htmx), every asset shipped in
``static/``; the API reference at /docs from shipped Swagger UI files. No business logic of its own: the
pages call the domains' services; the console keeps only its users and sessions."""

from __future__ import annotations

import importlib

from fastapi import FastAPI
from fastapi.responses import RedirectResponse
from fastapi.staticfiles import StaticFiles

from offerloop.console import docs, web


def install(app: FastAPI) -> None:
    """Mount the console, its static files, /docs and the / → /console redirect on ``app``."""
    # Importing a page module registers its routes on web.router; the catch-all of sections must come last (an
    # import sorter would put it before settings: it is imported by name after the others).
    from offerloop.console.pages import (  # noqa: F401
        analytics,
        assembly,
        auth,
        buyers,
        decisions,
        home,
        journeys,
        ledger,
        offers,
        orders,
        personas,
        settings,
    )

    importlib.import_module("offerloop.console.pages.sections")
    app.mount("/console/static", StaticFiles(directory=web.STATIC), name="console-static")
    app.include_router(web.router)
    docs.install(app)

    @app.get("/", include_in_schema=False)
    async def root() -> RedirectResponse:
        return RedirectResponse("/console", status_code=307)
