"""HTTP API of the offers domain: the catalog, drop sign-off, and the offers a buyer is shown."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.exceptions import RequestValidationError
from pydantic import ValidationError

from offerloop import pipeline
from offerloop.core.currencies import InvalidCurrency
from offerloop.core.errors import error_responses
from offerloop.core.pages import InvalidCursor
from offerloop.decisions.schemas import DecideRequest
from offerloop.offers import service
from offerloop.offers.exceptions import CatalogError, OfferNotFound
from offerloop.offers.schemas import CatalogLoaded, CatalogText, OfferPage, OffersPresented, SignOffRead
from offerloop.web import Cursor, Limit
from offerloop.workspaces.auth import DB, SecretKey

router = APIRouter(prefix="/v1", tags=["offers"])


@router.put(
    "/offers/catalog",
    summary="Load the offers catalog (offers, coupons, drops, tiers)",
    response_model=CatalogLoaded,
    responses=error_responses(CatalogError),
)
def load_catalog(db: DB, principal: SecretKey, body: CatalogText) -> dict[str, Any]:
    with db.write() as session:
        return service.load_catalog(session=session, workspace_id=principal.workspace_id, text=body.text,
                                    actor=principal.key_id)  # fmt: skip


@router.get(
    "/offers/catalog",
    summary="Every offer with its state (drops: live, sold out…) and stock",
    response_model=OfferPage,
    responses=error_responses(OfferNotFound, InvalidCursor),
)
def list_catalog(
    db: DB, principal: SecretKey, limit: Limit = 50, cursor: Cursor = None, kind: str | None = None
) -> OfferPage:
    with db.read() as session:
        return service.offers_page(
            session=session, workspace_id=principal.workspace_id, limit=limit, cursor=cursor, kind=kind
        )


@router.post(
    "/offers/{key}/signoff",
    summary="The creator's sign-off a drop needs before it goes live",
    response_model=SignOffRead,
    responses=error_responses(OfferNotFound),
)
def sign_off(db: DB, principal: SecretKey, key: str) -> dict[str, Any]:
    with db.write() as session:
        return service.sign_off(
            session=session, workspace_id=principal.workspace_id, key=key, actor=principal.key_id
        )


@router.get(
    "/offers",
    summary="The offers this buyer may buy, ordered by the decision engine for a placement",
    response_model=OffersPresented,
    responses=error_responses(OfferNotFound, InvalidCurrency),
)
def offers_for(
    request: Request, db: DB, principal: SecretKey, placement: str = "offers", user_id: str | None = None,
    anonymous_id: str | None = None, currency: str = "USD", k: int = 3,
) -> dict[str, Any]:  # fmt: skip
    try:
        decide = DecideRequest(user_id=user_id, anonymous_id=anonymous_id, placement=placement, k=k)
    except ValidationError as exc:  # the query parameters are the decide request: a 422, not a 500
        raise RequestValidationError(exc.errors(include_url=False)) from None
    pipeline.catch_up(db, workspace_id=principal.workspace_id)  # see every event acknowledged before now
    # Deciding only reads (as /v1/decide): requests decide in parallel, and the decision is logged with its
    # propensity, for attribution and learning, in a short write of its own before the answer goes out.
    pending: list[Any] = []
    with db.read() as session:
        out = service.present(session=session, workspace_id=principal.workspace_id, request=decide, currency=currency,
                              holdout_share=request.app.state.settings.holdout_share, log=pending)  # fmt: skip
    if pending:
        with db.write() as session:
            service.record_decisions(session=session, decisions=pending)
    return out
