"""HTTP API of the checkout domain: checkout, orders, refunds, subscriptions, fulfilment and Stripe webhooks."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from fastapi import APIRouter, Request
from pydantic import BaseModel, Field, field_validator, model_validator
from sqlalchemy.exc import IntegrityError

from offerloop import pipeline
from offerloop.checkout import service
from offerloop.checkout.exceptions import CheckoutError
from offerloop.checkout.stripe_provider import StripeConfig, StripeProvider
from offerloop.core.identifiers import normalize_email
from offerloop.workspaces.auth import DB, SecretKey, get_settings

router = APIRouter(prefix="/v1", tags=["checkout"])


class CheckoutIn(BaseModel):
    user_id: str | None = None
    anonymous_id: str | None = None
    email: str | None = Field(default=None, max_length=320)
    offer: str
    currency: str = Field(default="USD", min_length=3, max_length=3)
    coupon: str | None = None
    bumps: list[str] = Field(default_factory=list, max_length=10)
    quantity: int = Field(default=1, ge=1, le=100)
    provider: Literal["manual", "stripe"] = "manual"
    decision_id: str | None = Field(default=None, description="The /v1/offers decision that presented it")
    success_url: str = "https://example.invalid/thanks"
    cancel_url: str = "https://example.invalid/cancel"

    @field_validator("email")
    @classmethod
    def _email(cls, value: str | None) -> str | None:  # the one e-mail rule (core.identifiers)
        if value is not None and normalize_email(value) is None:
            raise ValueError(f"{value[:80]!r} is not an e-mail address")
        return None if value is None else normalize_email(value)

    @model_validator(mode="after")
    def _someone(self) -> CheckoutIn:
        if not (self.user_id or self.anonymous_id or self.email):
            raise ValueError("give user_id, anonymous_id or email")
        return self


class PaidIn(BaseModel):
    processor_fee: int | None = Field(default=None, ge=0)
    reference: str | None = Field(default=None, description="Invoice or bank reference")


class RefundIn(BaseModel):
    amount: int | None = Field(default=None, ge=1, description="Minor units; omit for a full refund")
    reason: str | None = None


class SubscriptionActionIn(BaseModel):
    action: Literal[
        "renew", "payment_failed", "payment_succeeded", "pause", "resume", "cancel", "change_plan"
    ]
    plan: str | None = None
    at_period_end: bool = True
    at: datetime | None = None


def _stripe(request: Request) -> StripeProvider:
    s = get_settings(request)
    if not s.stripe_api_key or not s.stripe_webhook_secret:
        raise CheckoutError("Stripe is not configured (OFFERLOOP_STRIPE_API_KEY, OFFERLOOP_STRIPE_WEBHOOK_SECRET)",
                            code="provider_not_configured")  # fmt: skip
    return StripeProvider(StripeConfig(api_key=s.stripe_api_key, webhook_secret=s.stripe_webhook_secret,
                                       api_base=s.stripe_api_base))  # fmt: skip


@router.post(
    "/checkout", status_code=201, summary="Create an order; Stripe answers with a hosted checkout URL"
)
def checkout(request: Request, db: DB, principal: SecretKey, body: CheckoutIn) -> dict[str, Any]:
    # The buyer an identify acknowledged before now made (and not a second one made here, racing the
    # identity stage for the same identifier).
    pipeline.catch_up(db, workspace_id=principal.workspace_id)
    return service.checkout(
        db=db, workspace_id=principal.workspace_id, offer_key=body.offer, currency=body.currency,
        provider_name=body.provider, provider=_stripe(request) if body.provider == "stripe" else None,
        user_id=body.user_id, anonymous_id=body.anonymous_id, email=body.email, coupon=body.coupon, bumps=body.bumps,
        quantity=body.quantity, decision_id=body.decision_id, tax_percent=get_settings(request).tax_percent,
        success_url=body.success_url, cancel_url=body.cancel_url,
    )  # fmt: skip


@router.get("/orders/{order_id}", summary="An order, its fulfilment by component")
def get_order(db: DB, principal: SecretKey, order_id: str) -> dict[str, Any]:
    with db.read() as session:
        return service.get_order(session=session, workspace_id=principal.workspace_id, order_id=order_id)


@router.get("/orders/{order_id}/payments", summary="The provider events about an order and what each did")
def order_payments(db: DB, principal: SecretKey, order_id: str) -> dict[str, Any]:
    with db.read() as session:
        items = service.payment_events(
            session=session, workspace_id=principal.workspace_id, order_id=order_id
        )
    return {"items": items}


@router.post(
    "/orders/{order_id}/paid", summary="Manual provider: mark an order paid (invoice, bank transfer)"
)
def mark_paid(request: Request, db: DB, principal: SecretKey, order_id: str, body: PaidIn) -> dict[str, Any]:
    with db.write() as session:
        out = service.mark_paid(session=session, workspace_id=principal.workspace_id, order_id=order_id,
                                actor=principal.key_id, processor_fee=body.processor_fee, provider_ref=body.reference,
                                platform_fee_percent=get_settings(request).platform_fee_percent)  # fmt: skip
    return out


@router.post("/orders/{order_id}/refund", summary="Full or partial refund")
def refund(db: DB, principal: SecretKey, order_id: str, body: RefundIn) -> dict[str, Any]:
    with db.write() as session:
        return service.refund(session=session, workspace_id=principal.workspace_id, order_id=order_id,
                              amount=body.amount, actor=principal.key_id, reason=body.reason)  # fmt: skip


@router.post("/orders/{order_id}/cancel", summary="Cancel a pending order (its held units go back)")
def cancel(db: DB, principal: SecretKey, order_id: str) -> dict[str, Any]:
    with db.write() as session:
        return service.cancel_pending(session=session, workspace_id=principal.workspace_id, order_id=order_id,
                                      reason="canceled by the creator")  # fmt: skip


@router.post("/orders/{order_id}/fulfilment/{component}/{ref}/retry", summary="Retry one failed component")
def retry(
    request: Request, db: DB, principal: SecretKey, order_id: str, component: str, ref: str
) -> dict[str, Any]:
    with db.write() as session:
        out = service.retry_task(session=session, workspace_id=principal.workspace_id, order_id=order_id,
                                 component=component, ref=ref)  # fmt: skip
    return out


@router.get("/subscriptions/{subscription_id}", summary="A subscription and its lifecycle state")
def get_subscription(db: DB, principal: SecretKey, subscription_id: str) -> dict[str, Any]:
    with db.read() as session:
        row = service.get_subscription(
            session=session, workspace_id=principal.workspace_id, subscription_id=subscription_id
        )
        return service.subscription_read(row)


@router.post(
    "/subscriptions/{subscription_id}/actions",
    summary="Renew, fail a payment, pause, resume, cancel, change plan",
)
def subscription_action(
    db: DB, principal: SecretKey, subscription_id: str, body: SubscriptionActionIn
) -> dict[str, Any]:
    with db.write() as session:
        return service.subscription_action(session=session, workspace_id=principal.workspace_id,
                                           subscription_id=subscription_id, action=body.action, plan=body.plan,
                                           at_period_end=body.at_period_end, at=body.at, actor=principal.key_id)  # fmt: skip


@router.post(
    "/webhooks/stripe", summary="Stripe webhooks: verified on the raw body, applied once by event id"
)
async def stripe_webhook(request: Request, db: DB) -> dict[str, Any]:
    raw = await request.body()
    provider = _stripe(request)
    event = provider.verify_webhook(raw, request.headers.get("stripe-signature", ""))
    normalized = provider.normalize(event)
    if normalized is None:
        return {"received": True, "outcome": "ignored_type", "type": event.type}
    from starlette.concurrency import run_in_threadpool

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
    return {"received": True, "outcome": outcome, "type": event.type}
