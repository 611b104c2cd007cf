"""HTTP API of the subscriptions domain: list, read and drive a subscription's lifecycle."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request

from offerloop.checkout import service as checkout_service
from offerloop.checkout.exceptions import CheckoutError, ProviderError, ProviderRefused, RefundRefused
from offerloop.core.clock import utcnow
from offerloop.core.errors import ValidationFailed, error_responses
from offerloop.core.pages import DEFAULT_LIMIT, MAX_LIMIT, InvalidCursor, Page
from offerloop.offers.exceptions import OfferNotFound, PricingError
from offerloop.subscriptions import service
from offerloop.subscriptions.exceptions import (
    InvalidAction,
    ProviderManaged,
    SubscriptionError,
    SubscriptionNotFound,
)
from offerloop.subscriptions.schemas import Status, SubscriptionActionIn, SubscriptionRead
from offerloop.workspaces.auth import DB, SecretKey, get_settings
from offerloop.workspaces.exceptions import InvalidKey, SecretKeyRequired

router = APIRouter(prefix="/v1", tags=["subscriptions"])

Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT, description="Items per page")]
Cursor = Annotated[str | None, Query(description="The next_cursor of the previous page")]
_KEY = (InvalidKey, SecretKeyRequired, ValidationFailed)


@router.get(
    "/subscriptions", summary="The workspace's subscriptions, newest first",
    responses=error_responses(*_KEY, InvalidCursor),
)  # fmt: skip
def list_subscriptions(
    db: DB, principal: SecretKey, limit: Limit = DEFAULT_LIMIT, cursor: Cursor = None,
    status: Annotated[Status | None, Query(description="Only subscriptions in this status")] = None,
    buyer_id: Annotated[str | None, Query(max_length=40, description="Only this buyer's")] = None,
    plan: Annotated[str | None, Query(max_length=120, description="Only those on this plan (offer key)")] = None,
) -> Page[SubscriptionRead]:  # fmt: skip
    with db.read() as session:
        return service.list_subscriptions(session=session, workspace_id=principal.workspace_id, limit=limit,
                                          cursor=cursor, status=status, buyer_id=buyer_id, offer_key=plan)  # fmt: skip


@router.get(
    "/subscriptions/{subscription_id}", summary="A subscription and its lifecycle state",
    responses=error_responses(*_KEY, SubscriptionNotFound),
)  # fmt: skip
def get_subscription(db: DB, principal: SecretKey, subscription_id: str) -> SubscriptionRead:
    with db.read() as session:
        return service.get(
            session=session, workspace_id=principal.workspace_id, subscription_id=subscription_id
        )


@router.post(
    "/subscriptions/{subscription_id}/actions", summary="Renew, fail a payment, pause, resume, cancel, change plan",
    responses=error_responses(*_KEY, SubscriptionNotFound, OfferNotFound, SubscriptionError, InvalidAction,
                              ProviderManaged, PricingError, CheckoutError, RefundRefused, ProviderRefused,
                              ProviderError),
)  # fmt: skip
def subscription_action(
    request: Request, db: DB, principal: SecretKey, subscription_id: str, body: SubscriptionActionIn
) -> SubscriptionRead:
    # a change to a plan Stripe bills is made in Stripe first, a downgrade's credit refunded there (409/502 when
    # Stripe does not: nothing changes); its payment steps (renew, payment_*) are Stripe's alone (409)
    provider = checkout_service.stripe_provider(get_settings(request))
    with db.write() as session:
        if body.at is not None:
            service.check_requested_at(session=session, workspace_id=principal.workspace_id,
                                       subscription_id=subscription_id, at=body.at, now=utcnow())  # fmt: skip
        return service.act(session=session, workspace_id=principal.workspace_id, subscription_id=subscription_id,
                           action=body.action, plan=body.plan, at_period_end=body.at_period_end, at=body.at,
                           actor=principal.key_id, provider=provider)  # fmt: skip
