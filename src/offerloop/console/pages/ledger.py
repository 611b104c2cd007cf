"""Ledger and payouts: every account's balance per currency, the entries newest first (paged; of one kind or
order), and, when asked for a period, its payout totals in one currency. Read-only: every role
sees it; refunds are made on the order's page and show here at once."""

from __future__ import annotations

from datetime import UTC, date, datetime, timedelta
from typing import Annotated, Any, get_args

from fastapi import Query, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from offerloop.console import web
from offerloop.console.exceptions import InvalidUser
from offerloop.core.clock import utcnow
from offerloop.db.uow import Database
from offerloop.ledger import service as ledger_service

router = web.router
PAGE = 50
Day = Annotated[date | None, Query()]


def _month(today: date) -> tuple[date, date]:
    first = today.replace(day=1)
    return first, (first + timedelta(days=32)).replace(day=1)


def _at(day: date) -> datetime:
    return datetime(day.year, day.month, day.day, tzinfo=UTC)


def _books(
    db: Database, workspace_id: str, kind: Any, order: str | None, cursor: str | None,
    period: tuple[date, date], currency: str | None, asked: bool,
) -> dict[str, Any]:  # fmt: skip
    with db.read() as session:
        balances = ledger_service.balances(session=session, workspace_id=workspace_id)
        currencies = sorted({b.currency for b in balances})
        shown = currency or (currencies[0] if currencies else None)
        entries = ledger_service.list_entries(
            session=session, workspace_id=workspace_id, limit=PAGE, cursor=cursor, kind=kind, order_id=order,
            newest_first=True,
        )  # fmt: skip
        totals = None
        if shown and asked:  # the report reads every entry of the period: only when asked for
            totals = ledger_service.payouts(session=session, workspace_id=workspace_id, start=_at(period[0]),
                                            end=_at(period[1]), currency=shown)  # fmt: skip
        return {"balances": balances, "currencies": currencies, "currency": shown, "entries": entries,
                "totals": totals}  # fmt: skip


@router.get("/console/ledger")
async def ledger(
    request: Request, db: web.DB, user: web.User,
    cursor: Annotated[str | None, Query(max_length=200)] = None,
    kind: Annotated[ledger_service.EntryKindName | None, Query()] = None,
    order: Annotated[str | None, Query(max_length=40, pattern=r"^[A-Za-z0-9_-]*$")] = None,
    start: Day = None, end: Day = None,
    currency: Annotated[str | None, Query(min_length=3, max_length=3, pattern=r"^[A-Za-z]{3}$")] = None,
) -> Response:  # fmt: skip
    first, after = _month(utcnow().date())
    period = (start or first, end or after)
    if period[1] <= period[0] or (period[1] - period[0]).days > 3700:
        raise InvalidUser("the period must end after it starts, within ten years", details={"field": "end"})
    found = await run_in_threadpool(
        _books,
        db,
        user.workspace_id,
        kind,
        order or None,
        cursor,
        period,
        currency.upper() if currency else None,
        start is not None or end is not None or currency is not None,
    )
    return web.render(request, "ledger/index.html", {
        "current": "ledger", "kind": kind, "order": order or "", "cursor": cursor, "start": period[0],
        "end": period[1], "kinds": get_args(ledger_service.EntryKindName), **found,
    })  # fmt: skip
