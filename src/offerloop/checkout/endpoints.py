"""HTTP API of the checkout domain: checkout, orders, payments, refunds, fulfilment and Stripe webhooks."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request
from sqlalchemy.exc import IntegrityError
from starlette.concurrency import run_in_threadpool

from offerloop import pipeline
from offerloop.checkout import service
from offerloop.checkout.exceptions import (
    CheckoutError,
    OrderNotFound,
    ProviderError,
    ProviderRefused,
    RefundRefused,
    SoldOut,
    WebhookRefused,
)
from offerloop.checkout.schemas import (
    CheckoutIn,
    OrderDetail,
    OrderRead,
    OrderStatus,
    PaidIn,
    PaymentEventRead,
    RefundIn,
    RetryQueued,
    WebhookReceived,
)
from offerloop.checkout.stripe_provider import StripeProvider
from offerloop.core.errors import ValidationFailed, error_responses
from offerloop.core.pages import DEFAULT_LIMIT, MAX_LIMIT, InvalidCursor, Page
from offerloop.identity.exceptions import BuyerErased
from offerloop.offers.exceptions import NotForSale, OfferNotFound, PricingError
from offerloop.workspaces.auth import DB, SecretKey, get_settings
from offerloop.workspaces.exceptions import InvalidKey, SecretKeyRequired

router = APIRouter(prefix="/v1", tags=["checkout"])

Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT, description="Items per page")]
Cursor = Annotated[str | None, Query(description="The next_cursor of the previous page")]
_KEY = (InvalidKey, SecretKeyRequired, ValidationFailed)
_ORDER = (*_KEY, OrderNotFound)


def _stripe(request: Request) -> StripeProvider:
    provider = service.stripe_provider(get_settings(request))
    if provider is None:
        raise CheckoutError("Stripe is not configured (OFFERLOOP_STRIPE_API_KEY, OFFERLOOP_STRIPE_WEBHOOK_SECRET)",
                            code="provider_not_configured")  # fmt: skip
    return provider


@router.post(
    "/checkout", status_code=201, summary="Create an order; Stripe answers with a hosted checkout URL",
    responses=error_responses(*_KEY, OfferNotFound, CheckoutError, SoldOut, NotForSale, BuyerErased, PricingError,
                              ProviderError),
)  # fmt: skip
def checkout(request: Request, db: DB, principal: SecretKey, body: CheckoutIn) -> OrderRead:
    # The buyer an identify acknowledged before this request names is the order's buyer, not a new one.
    pipeline.catch_up(db, workspace_id=principal.workspace_id)
    return service.checkout(
        db=db, workspace_id=principal.workspace_id, offer_key=body.offer, currency=body.currency,
        provider_name=body.provider, provider=_stripe(request) if body.provider == "stripe" else None,
        user_id=body.user_id, anonymous_id=body.anonymous_id, email=body.email, coupon=body.coupon, bumps=body.bumps,
        quantity=body.quantity, decision_id=body.decision_id, tax_percent=get_settings(request).tax_percent,
        variant=body.variant,
        success_url=body.success_url, cancel_url=body.cancel_url,
    )  # fmt: skip


@router.get(
    "/orders", summary="The workspace's orders, newest first", responses=error_responses(*_KEY, InvalidCursor)
)
def list_orders(
    db: DB, principal: SecretKey, limit: Limit = DEFAULT_LIMIT, cursor: Cursor = None,
    status: Annotated[OrderStatus | None, Query(description="Only orders in this status")] = None,
    buyer_id: Annotated[str | None, Query(max_length=40, description="Only this buyer's orders")] = None,
) -> Page[OrderRead]:  # fmt: skip
    with db.read() as session:
        return service.list_orders(session=session, workspace_id=principal.workspace_id, limit=limit, cursor=cursor,
                                   status=status, buyer_id=buyer_id)  # fmt: skip


@router.get(
    "/orders/{order_id}", summary="An order, its fulfilment by component", responses=error_responses(*_ORDER)
)
def get_order(db: DB, principal: SecretKey, order_id: str) -> OrderDetail:
    with db.read() as session:
        return service.get_order(session=session, workspace_id=principal.workspace_id, order_id=order_id)


@router.get(
    "/orders/{order_id}/payments", summary="The provider events about an order and what each did",
    responses=error_responses(*_ORDER, InvalidCursor),
)  # fmt: skip
def order_payments(
    db: DB, principal: SecretKey, order_id: str, limit: Limit = DEFAULT_LIMIT, cursor: Cursor = None
) -> Page[PaymentEventRead]:
    with db.read() as session:
        return service.payment_events(session=session, workspace_id=principal.workspace_id, order_id=order_id,
                                      limit=limit, cursor=cursor)  # fmt: skip


@router.post(
    "/orders/{order_id}/paid", summary="Manual provider: mark an order paid (invoice, bank transfer)",
    responses=error_responses(*_ORDER, SoldOut, CheckoutError),
)  # fmt: skip
def mark_paid(request: Request, db: DB, principal: SecretKey, order_id: str, body: PaidIn) -> OrderRead:
    with db.write() as session:
        return service.mark_paid(session=session, workspace_id=principal.workspace_id, order_id=order_id,
                                 actor=principal.key_id, processor_fee=body.processor_fee, provider_ref=body.reference,
                                 platform_fee_percent=get_settings(request).platform_fee_percent)  # fmt: skip


@router.post(
    "/orders/{order_id}/refund",
    summary="Full or partial refund; an order paid through Stripe is refunded in Stripe first, then booked",
    responses=error_responses(*_ORDER, CheckoutError, RefundRefused, ProviderRefused, ProviderError),
)
def refund(request: Request, db: DB, principal: SecretKey, order_id: str, body: RefundIn) -> OrderRead:
    provider = service.stripe_provider(get_settings(request))
    with db.write() as session:
        return service.refund(session=session, workspace_id=principal.workspace_id, order_id=order_id,
                              amount=body.amount, actor=principal.key_id, reason=body.reason,
                              provider=provider)  # fmt: skip


@router.post(
    "/orders/{order_id}/cancel", summary="Cancel a pending order (its held units go back)",
    responses=error_responses(*_ORDER, CheckoutError),
)  # fmt: skip
def cancel(db: DB, principal: SecretKey, order_id: str) -> OrderRead:
    with db.write() as session:
        return service.cancel_pending(session=session, workspace_id=principal.workspace_id, order_id=order_id,
                                      reason="canceled by the creator")  # fmt: skip


@router.post(
    "/orders/{order_id}/fulfilment/{component}/{ref}/retry", summary="Retry one failed component",
    responses=error_responses(*_ORDER, CheckoutError),
)  # fmt: skip
def retry(db: DB, principal: SecretKey, order_id: str, component: str, ref: str) -> RetryQueued:
    with db.write() as session:
        return service.retry_task(session=session, workspace_id=principal.workspace_id, order_id=order_id,
                                  component=component, ref=ref)  # fmt: skip


@router.post(
    "/webhooks/stripe", summary="Stripe webhooks: verified on the raw body, applied once by event id",
    responses=error_responses(WebhookRefused, CheckoutError),
)  # fmt: skip
async def stripe_webhook(request: Request, db: DB) -> WebhookReceived:
    raw = await request.body()
    provider = _stripe(request)
    event = provider.verify_webhook(raw, request.headers.get("stripe-signature", ""))
    normalized = provider.normalize(event)
    if normalized is None:
        return WebhookReceived(outcome="ignored_type", type=event.type)
    settings = get_settings(request)
    terms = service.WebhookTerms(
        platform_fee_percent=settings.platform_fee_percent, tax_percent=settings.tax_percent
    )

    def apply() -> str:
        try:
            with db.write() as session:
                return service.handle_payment_event(
                    session=session, event=normalized, payload=event.raw, terms=terms
                )
        except IntegrityError:
            # The same event delivered twice at once: if the other delivery stored it, this one is a
            # duplicate; anything else is a real failure and Stripe must retry.
            with db.read() as session:
                if service.event_seen(
                    session=session,
                    provider=normalized.provider,
                    provider_event_id=normalized.provider_event_id,
                ):
                    return "duplicate"
            raise

    outcome = await run_in_threadpool(apply)
    return WebhookReceived(outcome=outcome, type=event.type)
