"""The hosted pages for off-platform flows at /o/<workspace>: an offer page per offer (the variant the
decision engine picks for the visitor), a checkout link for e-mails and bios, and a thank-you page with the
deliverable's preview at once and its file when ready. Every asset ships in ``static/``; no business logic
of their own (see ``service``)."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.staticfiles import StaticFiles

from offerloop.storefront import web


def install(app: FastAPI) -> None:
    """Mount the hosted pages and their static files on ``app``."""
    app.mount(f"{web.PREFIX}/_static", StaticFiles(directory=web.STATIC), name="storefront-static")
    app.include_router(web.router)
