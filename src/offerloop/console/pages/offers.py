"""Offers: the catalog as the offers domain reads it (offers, their variants and prices in integer minor units,
state), the drops with their live stock (remaining, held, sold; the stock table refreshes itself) and the
sign-off a drop needs before it goes live (owner only, CSRF-checked). Every role sees the catalog; the catalog
itself is loaded through the API or the CLI."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import Path, Query, Request
from fastapi.responses import RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from offerloop.console import web
from offerloop.db.uow import Database
from offerloop.offers import service as offers_service
from offerloop.offers.exceptions import OfferNotFound

router = web.router
OfferKey = Annotated[str, Path(min_length=1, max_length=120, pattern=r"^[A-Za-z0-9_.:-]+$")]
STOCK_REFRESH_S = 10  # how often the drops table asks for fresh stock figures


def _catalog(db: Database, workspace_id: str) -> dict[str, Any]:
    """Every offer with its state and stock, and each one's sign-off (an empty catalog: none loaded yet)."""
    with db.read() as session:
        try:
            offers = offers_service.list_offers(session=session, workspace_id=workspace_id)
        except OfferNotFound as exc:
            if exc.code != "no_catalog":
                raise
            return {"offers": [], "drops": [], "no_catalog": True}
        signed = offers_service.sign_offs(session=session, workspace_id=workspace_id)
    drops = []
    for o in offers:
        if o["kind"] != "drop":
            continue
        stock = o["stock"]
        by, at = signed.get(o["key"], (None, None))
        drops.append({
            "key": o["key"], "title": o["title"], "state": o["state"], "opens_at": o["opens_at"],
            "closes_at": o["closes_at"], "inventory": o["inventory"], "requires_signoff": o["requires_signoff"],
            "stock": stock, "remaining": None if stock is None else max(0, stock["total"] - stock["sold"] - stock["held"]),
            "signed_off_by": by, "signed_off_at": at,
        })  # fmt: skip
    return {"offers": offers, "drops": drops, "no_catalog": False}


@router.get("/console/offers")
async def offers(
    request: Request, db: web.DB, user: web.User,
    done: Annotated[str, Query(max_length=40, pattern=r"^[a-z_]*$")] = "",
    key: Annotated[str, Query(max_length=120, pattern=r"^[A-Za-z0-9_.:-]*$")] = "",
) -> Response:  # fmt: skip
    found = await run_in_threadpool(_catalog, db, user.workspace_id)
    return web.render(request, "offers/index.html", {
        "current": "offers", "done": done, "done_key": key, "refresh_s": STOCK_REFRESH_S, **found,
    })  # fmt: skip


@router.get("/console/offers/drops")
async def drops(request: Request, db: web.DB, user: web.User) -> Response:
    """The drops table alone (htmx swaps it in every few seconds: the live stock)."""
    found = await run_in_threadpool(_catalog, db, user.workspace_id)
    return web.render(request, "offers/drops.html", {"refresh_s": STOCK_REFRESH_S, **found})


def _sign_off(db: Database, workspace_id: str, key: str, actor: str) -> dict[str, Any]:
    with db.write() as session:
        return offers_service.sign_off(session=session, workspace_id=workspace_id, key=key, actor=actor)


@router.post("/console/offers/{key}/signoff")
async def sign_off(db: web.DB, user: web.Posted, key: OfferKey) -> Response:
    web.refuse_unless(user, "owner")
    await run_in_threadpool(_sign_off, db, user.workspace_id, key, f"console:{user.email}")
    return RedirectResponse(f"/console/offers?done=signed_off&key={key}#drops-title", status_code=303)
