"""HTTP API of the analytics domain (secret key): summary, retention, cohorts and persona velocity."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query, Request

from offerloop.analytics import service, velocity
from offerloop.analytics.exceptions import BadAnalyticsQuery, CurrencyRequired
from offerloop.analytics.schemas import CohortBy, Cohorts, HoldoutRetention, Retention, Summary, Velocity
from offerloop.core.errors import ValidationFailed, error_responses
from offerloop.web import DaysList, Instant, Int, PastDay
from offerloop.workspaces.auth import DB, SecretKey, get_settings
from offerloop.workspaces.exceptions import InvalidKey, SecretKeyRequired

router = APIRouter(prefix="/v1/analytics", tags=["analytics"])

_KEY = (InvalidKey, SecretKeyRequired, ValidationFailed)
_INSTANT = "ISO 8601 date (midnight UTC) or date-time (no offset: UTC)"
AsOf = Annotated[
    PastDay | None,
    Query(description="The data's end, inclusive (YYYY-MM-DD); default: the day of the last purchase"),
]
Days = Annotated[
    DaysList, Query(max_length=200, description="Windows in days, comma separated (1 to 12 of 1..3660)")
]


@router.get(
    "/summary",
    summary="Buyers, revenue and ARPU of a period in one currency",
    responses=error_responses(*_KEY, BadAnalyticsQuery, CurrencyRequired),
)
def summary(
    db: DB,
    principal: SecretKey,
    start: Annotated[Instant | None, Query(description=_INSTANT + "; inclusive")] = None,
    end: Annotated[Instant | None, Query(description=_INSTANT + "; exclusive")] = None,
    currency: Annotated[
        str | None, Query(max_length=8, description="ISO 4217; default: the workspace's only currency")
    ] = None,
) -> Summary:
    with db.read() as session:
        return service.summary(
            session=session, workspace_id=principal.workspace_id, start=start, end=end, currency=currency
        )


@router.get(
    "/retention",
    summary="Share of buyers who buy again within N days of their first purchase (day N included)",
    responses=error_responses(*_KEY, BadAnalyticsQuery),
)
def retention(db: DB, principal: SecretKey, days: Days = "30,60,90", as_of: AsOf = None) -> Retention:
    windows = service.parse_windows(days)
    with db.read() as session:
        return service.retention(
            session=session, workspace_id=principal.workspace_id, windows=windows, as_of=as_of
        )


@router.get(
    "/retention/holdout",
    summary="Retention of personalized buyers vs the decision engine's holdout group, and the delta",
    responses=error_responses(*_KEY, BadAnalyticsQuery),
)
def holdout_retention(
    request: Request, db: DB, principal: SecretKey, days: Days = "30,60,90", as_of: AsOf = None
) -> HoldoutRetention:
    windows = service.parse_windows(days)
    share = float(get_settings(request).holdout_share)
    with db.read() as session:
        return service.holdout_retention(
            session=session, workspace_id=principal.workspace_id, windows=windows, holdout_share=share,
            as_of=as_of,
        )  # fmt: skip


@router.get(
    "/cohorts",
    summary="Acquisition cohorts by first-purchase month (also per first-touch channel or persona)",
    responses=error_responses(*_KEY, BadAnalyticsQuery),
)
def cohorts(
    db: DB,
    principal: SecretKey,
    by: Annotated[CohortBy, Query(description="first_purchase_month, first_touch_channel or persona")] = (
        "first_purchase_month"
    ),
    periods: Annotated[Int, Query(ge=1, le=service.MAX_PERIODS, description="Months after the first")] = 12,
    as_of: AsOf = None,
) -> Cohorts:
    with db.read() as session:
        return service.cohorts(
            session=session, workspace_id=principal.workspace_id, by=by, periods=periods, as_of=as_of
        )


@router.get(
    "/velocity",
    summary="Persona conversion velocity: time from first assignment to first purchase, LTV, offer lift",
    responses=error_responses(*_KEY, BadAnalyticsQuery),
)
def persona_velocity(db: DB, principal: SecretKey, as_of: AsOf = None) -> Velocity:
    with db.read() as session:
        return velocity.velocity(session=session, workspace_id=principal.workspace_id, as_of=as_of)
