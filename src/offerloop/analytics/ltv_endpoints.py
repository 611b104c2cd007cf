"""HTTP API of the LTV fit (secret key): the fitted models with LTV by persona and channel, and the refresh
that writes each buyer's LTV features."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Depends, Query, Request
from pydantic import BaseModel, ConfigDict, Field

from offerloop.analytics import ltv as service
from offerloop.analytics.ltv_exceptions import BadLTVPeriod, LTVFitFailed, NotEnoughBuyers
from offerloop.analytics.ltv_schemas import LTVOptions, LTVRead, LTVRefreshRead, TimeUnit
from offerloop.core.errors import ValidationFailed, error_responses
from offerloop.web import Decimal, Int, PastDay
from offerloop.workspaces.auth import DB, SecretKey
from offerloop.workspaces.exceptions import InvalidKey, SecretKeyRequired

router = APIRouter(prefix="/v1/analytics", tags=["analytics"])

_ERRORS = (InvalidKey, SecretKeyRequired, ValidationFailed, NotEnoughBuyers, LTVFitFailed, BadLTVPeriod)
Unit = Annotated[TimeUnit, Query(description="The time unit of t_x, T, the horizon and the parameters")]
_HORIZON = "Time units ahead for expected purchases and value"
_DISCOUNT = "Discount rate per time unit for the expected value (0: none)"
_CURRENCY = "Default: the most frequent one"
_AS_OF = "Fit on the purchases up to this day (inclusive, not after today); default: today (UTC)"
Horizon = Annotated[Int, Query(ge=1, le=520, description=_HORIZON)]
Discount = Annotated[Decimal, Query(ge=0.0, le=1.0, description=_DISCOUNT)]
Currency = Annotated[
    str | None, Query(min_length=3, max_length=3, pattern="^[A-Za-z]{3}$", description=_CURRENCY)
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
    calibration_end: Annotated[
        PastDay, Query(description="Last day of the calibration period (inclusive, not after today)")
    ],
    options: Options,
    observation_end: Annotated[
        PastDay | None,
        Query(
            description="Last day of the holdout period (inclusive, not after today); default: the last purchase"
        ),
    ] = None,
) -> LTVRead:
    with db.read() as session:
        return service.fit(session=session, workspace_id=principal.workspace_id, calibration_end=calibration_end,
                           observation_end=observation_end, options=options)  # fmt: skip


class LTVRefreshIn(BaseModel):
    """The refresh's options as a JSON body (the query parameters of the same names are the other way to
    give them: one or the other, not both)."""

    model_config = ConfigDict(extra="forbid")
    time_unit: TimeUnit = "week"
    horizon: Int = Field(default=52, ge=1, le=520, description=_HORIZON)
    discount_rate: Decimal = Field(default=0.0, ge=0.0, le=1.0, description=_DISCOUNT)
    currency: str | None = Field(default=None, min_length=3, max_length=3, pattern="^[A-Za-z]{3}$",
                                 description=_CURRENCY)  # fmt: skip
    as_of: PastDay | None = Field(default=None, description=_AS_OF)


@router.post(
    "/ltv/refresh",
    summary="Fit on every purchase to date and write each buyer's ltv_* features for the decision engine",
    response_model=LTVRefreshRead,
    responses=error_responses(*_ERRORS),
)
def refresh_ltv(
    request: Request,
    db: DB,
    principal: SecretKey,
    options: Options,
    as_of: Annotated[PastDay | None, Query(description=_AS_OF)] = None,
    body: Annotated[
        LTVRefreshIn | None, Body(description="The options as JSON, instead of the query")
    ] = None,
) -> LTVRefreshRead:
    if body is not None:
        if request.query_params:
            raise ValidationFailed(
                "give the refresh's options either as a JSON body or as query parameters, not both",
                code="conflicting_parameters", details={"query": sorted(request.query_params.keys())[:20]},
            )  # fmt: skip
        options = LTVOptions(time_unit=body.time_unit, horizon=body.horizon, discount_rate=body.discount_rate,
                             currency=body.currency)  # fmt: skip
        as_of = body.as_of
    with db.write() as session:
        return service.refresh(
            session=session, workspace_id=principal.workspace_id, options=options, today=as_of
        )
