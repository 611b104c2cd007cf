"""Home: today's numbers (events, buyers, revenue, conversion), quarantine, consumer lag and alerts — each
read from its domain's service; the alerts (drift, failing components, late deliverables) load as a
fragment after the page, so a slow health computation never holds the numbers back."""

from __future__ import annotations

from datetime import UTC, datetime, time
from typing import Any

from fastapi import Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from offerloop.analytics import health as health_service
from offerloop.analytics import service as analytics_service
from offerloop.console import web
from offerloop.core.clock import utcnow
from offerloop.db.uow import Database
from offerloop.delivery import promises as promise_service
from offerloop.events import service as events_service
from offerloop.identity import service as identity_service
from offerloop.pipeline import status as pipeline_status

router = web.router
LATE_SHOWN = 10


def start_of_day(now: datetime) -> datetime:
    return datetime.combine(now.astimezone(UTC).date(), time.min, tzinfo=UTC)


def numbers(db: Database, workspace_id: str, now: datetime) -> dict[str, Any]:
    since = start_of_day(now)
    with db.read() as session:
        events, active = events_service.activity_since(
            session=session, workspace_id=workspace_id, since=since
        )
        revenue = analytics_service.revenue_by_currency(
            session=session, workspace_id=workspace_id, start=since
        )
        # a buyer who paid in two currencies counts once at most per currency: the largest is a lower bound
        purchasers = max((r.buyers for r in revenue), default=0)
        pipeline = pipeline_status.overview(session=session, workspace_id=workspace_id)
        return {
            "since": since,
            "events_today": events,
            "active_today": active,
            "new_buyers_today": identity_service.new_buyers_since(
                session=session, workspace_id=workspace_id, since=since
            ),
            "revenue": revenue,
            "purchasers_today": purchasers,
            # buyers who purchased today among buyers seen today (a purchase is an event: they are a subset)
            "conversion": (purchasers / active) if active else None,
            "quarantine": events_service.open_quarantine_count(session=session, workspace_id=workspace_id),
            "lag": max((c.lag for c in pipeline.consumers), default=0),
            "consumers": pipeline.consumers,
        }


@router.get("/console")
async def home(request: Request, db: web.DB, user: web.User) -> Response:
    figures = await run_in_threadpool(numbers, db, user.workspace_id, utcnow())
    return web.render(request, "home/index.html", {"current": "home", **figures})


def alerts(db: Database, workspace_id: str, now: datetime) -> dict[str, Any]:
    with db.read() as session:
        health = health_service.check(session=session, workspace_id=workspace_id, now=now)
        late = promise_service.list_promises(
            session=session, workspace_id=workspace_id, limit=LATE_SHOWN, cursor=None, status="late"
        )
        pipeline = pipeline_status.overview(session=session, workspace_id=workspace_id)
    failing = [c for c in pipeline.consumers if c.parked]
    return {
        "health": health.alerts.alerts,
        "stuck": pipeline_status.stuck(db, now),
        "failing": failing,
        "late": late.items,
        "more_late": late.next_cursor is not None,
    }


@router.get("/console/home/alerts")
async def home_alerts(request: Request, db: web.DB, user: web.User) -> Response:
    found = await run_in_threadpool(alerts, db, user.workspace_id, utcnow())
    return web.render(request, "home/alerts.html", found)
