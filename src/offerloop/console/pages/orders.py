"""Orders and subscriptions: the orders paged newest first (by status or buyer), one order with its payments,
ledger entries (refunds among them), entitlements and the subscription it started; a full or partial refund
(owner only, confirmed, CSRF-checked; the checkout service's rules decide what can be refunded); the
subscriptions paged and their actions (cancel at period end or now, pause, resume, change plan: owner only).
Every role sees these pages; only an owner changes money or access."""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Annotated, Any, get_args

from fastapi import Path, Query, Request
from fastapi.responses import RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from offerloop.checkout import service as checkout_service
from offerloop.checkout.schemas import OrderStatus
from offerloop.console import web
from offerloop.console.exceptions import InvalidUser
from offerloop.core.money import Money, exponent
from offerloop.db.uow import Database
from offerloop.entitlements import service as entitlements_service
from offerloop.ledger import service as ledger_service
from offerloop.subscriptions import service as subscriptions_service
from offerloop.subscriptions.schemas import Status

router = web.router
Id = Annotated[str, Path(min_length=1, max_length=40, pattern=r"^[A-Za-z0-9_-]+$")]
Cursor = Annotated[str | None, Query(max_length=200)]
BuyerFilter = Annotated[str | None, Query(max_length=40, pattern=r"^[A-Za-z0-9_-]*$")]
PAGE = 50
PAYMENTS_SHOWN = 50
REASON_CHARS = 2000
# What the console offers on a subscription: the service's actions a creator takes (renewals and payment
# outcomes are the provider's and the schedule's).
SUBSCRIPTION_ACTIONS = ("cancel_at_period_end", "cancel_now", "pause", "resume", "change_plan")


def _amount(value: int, currency: str) -> str:
    return Money(currency, int(value)).format()


web.templates.filters["amount"] = _amount


def _listing(
    lister: Any, db: Database, workspace_id: str, status: Any, buyer: str | None, cursor: str | None
) -> Any:
    """One page of a domain's list (orders, subscriptions), filtered by status and buyer."""
    with db.read() as session:
        return lister(
            session=session,
            workspace_id=workspace_id,
            limit=PAGE,
            cursor=cursor,
            status=status,
            buyer_id=buyer,
        )


@router.get("/console/orders")
async def orders(
    request: Request, db: web.DB, user: web.User, cursor: Cursor = None,
    status: Annotated[OrderStatus | None, Query()] = None, buyer: BuyerFilter = None,
) -> Response:  # fmt: skip
    page = await run_in_threadpool(
        _listing, checkout_service.list_orders, db, user.workspace_id, status, buyer or None, cursor
    )
    return web.render(request, "orders/list.html", {
        "current": "orders", "page": page, "status": status, "buyer": buyer or "", "cursor": cursor,
        "statuses": get_args(OrderStatus),
    })  # fmt: skip


def _order(db: Database, workspace_id: str, order_id: str) -> dict[str, Any]:
    with db.read() as session:
        order = checkout_service.get_order(session=session, workspace_id=workspace_id, order_id=order_id)
        try:
            books = ledger_service.order_ledger(session=session, workspace_id=workspace_id, order_id=order.id)
        except ledger_service.LedgerOrderNotFound:  # nothing booked yet (a pending or canceled order)
            books = None
        granted = entitlements_service.list_for_buyer(
            session=session, workspace_id=workspace_id, buyer_id=order.buyer_id
        )
        subscriptions = subscriptions_service.list_subscriptions(
            session=session, workspace_id=workspace_id, limit=PAGE, buyer_id=order.buyer_id
        )
        return {
            "order": order,
            "books": books,
            "payments": checkout_service.payment_events(
                session=session, workspace_id=workspace_id, order_id=order.id, limit=PAYMENTS_SHOWN
            ),
            "entitlements": [e for e in granted if e.source == order.id],
            "subscriptions": [s for s in subscriptions.items if s.order_id == order.id],
        }


@router.get("/console/orders/{order_id}")
async def order_page(
    request: Request,
    db: web.DB,
    user: web.User,
    order_id: Id,
    done: Annotated[str, Query(max_length=40)] = "",
) -> Response:
    found = await run_in_threadpool(_order, db, user.workspace_id, order_id)
    return web.render(request, "orders/order.html", {"current": "orders", "done": done, **found})


def _minor_units(text: str, currency: str) -> int:
    """A decimal amount in the currency's major units ("12.50") as integer minor units, exactly."""
    digits = exponent(currency)
    pattern = rf"^\d{{1,15}}(\.\d{{1,{digits}}})?$" if digits else r"^\d{1,15}$"
    value = text.strip().replace(",", "")
    if not re.fullmatch(pattern, value):
        raise InvalidUser(
            f"amount must be a number in {currency} with at most {digits} decimals, e.g. "
            + ("12.50" if digits == 2 else "1200"),
            details={"field": "amount"},
        )
    return int(Decimal(value).scaleb(digits))


def _refund(
    db: Database,
    workspace_id: str,
    order_id: str,
    form: dict[str, str],
    actor: str,
    provider: checkout_service.StripeProvider | None,
) -> Any:
    mode = form.get("mode", "")
    if mode not in ("full", "partial"):
        raise InvalidUser("choose a full or a partial refund", details={"field": "mode"})
    if form.get("confirm") != "yes":
        raise InvalidUser(
            "tick the box to confirm the refund", details={"field": "confirm", "reason": "not_confirmed"}
        )
    reason = web.field(form, "reason", max_length=REASON_CHARS, required=False).strip() or None
    raw = web.field(form, "amount", max_length=40, required=mode == "partial")
    with db.write() as session:
        order = checkout_service.read_order(session=session, workspace_id=workspace_id, order_id=order_id)
        amount = _minor_units(raw, order.currency) if mode == "partial" else None
        return checkout_service.refund(
            session=session, workspace_id=workspace_id, order_id=order.id, amount=amount, actor=actor,
            reason=reason or "refunded from the console", provider=provider,
        )  # fmt: skip


@router.post("/console/orders/{order_id}/refund")
async def refund(request: Request, db: web.DB, user: web.Posted, form: web.Form, order_id: Id) -> Response:
    web.refuse_unless(user, "owner")
    # an order paid through Stripe is refunded in Stripe by the service, then booked
    provider = checkout_service.stripe_provider(request.app.state.settings)
    done = await run_in_threadpool(
        _refund, db, user.workspace_id, order_id, form, f"console:{user.user_id}", provider
    )
    return RedirectResponse(f"/console/orders/{done.id}?done=refunded", status_code=303)


# -- subscriptions ---------------------------------------------------------------------------------


@router.get("/console/subscriptions")
async def subscriptions(
    request: Request, db: web.DB, user: web.User, cursor: Cursor = None,
    status: Annotated[Status | None, Query()] = None, buyer: BuyerFilter = None,
) -> Response:  # fmt: skip
    page = await run_in_threadpool(
        _listing,
        subscriptions_service.list_subscriptions,
        db,
        user.workspace_id,
        status,
        buyer or None,
        cursor,
    )
    return web.render(request, "orders/subscriptions.html", {
        "current": "orders", "page": page, "status": status, "buyer": buyer or "", "cursor": cursor,
        "statuses": get_args(Status),
    })  # fmt: skip


def _subscription(db: Database, workspace_id: str, subscription_id: str) -> dict[str, Any]:
    with db.read() as session:
        sub = subscriptions_service.get(
            session=session, workspace_id=workspace_id, subscription_id=subscription_id
        )
        return {
            "sub": sub,
            "orders": checkout_service.subscription_orders(
                session=session, workspace_id=workspace_id, subscription_id=sub.id
            ),
        }


@router.get("/console/subscriptions/{subscription_id}")
async def subscription_page(
    request: Request, db: web.DB, user: web.User, subscription_id: Id,
    done: Annotated[str, Query(max_length=40)] = "",
) -> Response:  # fmt: skip
    found = await run_in_threadpool(_subscription, db, user.workspace_id, subscription_id)
    return web.render(request, "orders/subscription.html", {"current": "orders", "done": done, **found})


def _act(
    db: Database, workspace_id: str, subscription_id: str, form: dict[str, str], actor: str,
    provider: checkout_service.StripeProvider | None = None,
) -> Any:  # fmt: skip
    choice = form.get("action", "")
    if choice not in SUBSCRIPTION_ACTIONS:
        raise InvalidUser(
            f"action must be one of {', '.join(SUBSCRIPTION_ACTIONS)}", details={"field": "action"}
        )
    plan = web.field(form, "plan", max_length=120, required=choice == "change_plan").strip() or None
    action = "cancel" if choice.startswith("cancel") else choice
    with db.write() as session:
        return subscriptions_service.act(
            session=session, workspace_id=workspace_id, subscription_id=subscription_id, action=action,
            plan=plan if choice == "change_plan" else None, at_period_end=choice != "cancel_now", actor=actor,
            provider=provider,
        )  # fmt: skip


@router.post("/console/subscriptions/{subscription_id}/actions")
async def subscription_action(
    request: Request, db: web.DB, user: web.Posted, form: web.Form, subscription_id: Id
) -> Response:
    web.refuse_unless(user, "owner")
    provider = checkout_service.stripe_provider(
        request.app.state.settings
    )  # a downgrade's credit: Stripe first
    done = await run_in_threadpool(
        _act, db, user.workspace_id, subscription_id, form, f"console:{user.user_id}", provider
    )
    return RedirectResponse(f"/console/subscriptions/{done.id}?done={form['action']}", status_code=303)
