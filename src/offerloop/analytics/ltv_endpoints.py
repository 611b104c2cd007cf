"""HTTP API of the LTV fit (secret key): the fitted models with LTV by persona and channel, and the refresh
that writes each buyer's LTV features."""

from __future__ import annotations

from datetime import date
from typing import Annotated

from fastapi import APIRouter, Depends, Query

from offerloop.analytics import ltv as service
from offerloop.analytics.ltv_exceptions import BadLTVPeriod, LTVFitFailed, NotEnoughBuyers
from offerloop.analytics.ltv_schemas import LTVOptions, LTVRead, LTVRefreshRead, TimeUnit
from offerloop.core.errors import ValidationFailed, error_responses
from offerloop.workspaces.auth import DB, SecretKey
from offerloop.workspaces.exceptions import InvalidKey, SecretKeyRequired

router = APIRouter(prefix="/v1/analytics", tags=["analytics"])

_ERRORS = (InvalidKey, SecretKeyRequired, ValidationFailed, NotEnoughBuyers, LTVFitFailed, BadLTVPeriod)
Unit = Annotated[TimeUnit, Query(description="The time unit of t_x, T, the horizon and the parameters")]
Horizon = Annotated[int, Query(ge=1, le=520, description="Time units ahead for expected purchases and value")]
Discount = Annotated[
    float, Query(ge=0.0, le=1.0, description="Discount rate per time unit for the expected value (0: none)")
]
Currency = Annotated[
    str | None,
    Query(min_length=3, max_length=3, pattern="^[A-Za-z]{3}$", description="Default: the most frequent one"),
]


def _options(
    time_unit: Unit = "week", horizon: Horizon = 52, discount_rate: Discount = 0.0, currency: Currency = None
) -> LTVOptions:
    return LTVOptions(time_unit=time_unit, horizon=horizon, discount_rate=discount_rate, currency=currency)


Options = Annotated[LTVOptions, Depends(_options)]


@router.get(
    "/ltv",
    summary="BG/NBD + Gamma-Gamma fitted on the purchases up to calibration_end, with LTV by persona and channel",
    response_model=LTVRead,
    responses=error_responses(*_ERRORS),
)
def get_ltv(
    db: DB,
    principal: SecretKey,
    calibration_end: Annotated[date, Query(description="Last day of the calibration period (inclusive)")],
    options: Options,
    observation_end: Annotated[
        date | None,
        Query(description="Last day of the holdout period (inclusive); default: the last purchase"),
    ] = None,
) -> LTVRead:
    with db.read() as session:
        return service.fit(session=session, workspace_id=principal.workspace_id, calibration_end=calibration_end,
                           observation_end=observation_end, options=options)  # fmt: skip


@router.post(
    "/ltv/refresh",
    summary="Fit on every purchase to date and write each buyer's ltv_* features for the decision engine",
    response_model=LTVRefreshRead,
    responses=error_responses(*_ERRORS),
)
def refresh_ltv(
    db: DB,
    principal: SecretKey,
    options: Options,
    as_of: Annotated[
        date | None,
        Query(description="Fit on the purchases up to this day (inclusive); default: today (UTC)"),
    ] = None,
) -> LTVRefreshRead:
    with db.write() as session:
        return service.refresh(
            session=session, workspace_id=principal.workspace_id, options=options, today=as_of
        )
