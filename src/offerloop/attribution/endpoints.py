"""HTTP API of the attribution domain (secret key): a model's credit per channel, source, campaign or
content; the stored per-conversion credit, its refresh and its sums by key or persona."""

from __future__ import annotations

from typing import Annotated, Any, get_args

import orjson
from fastapi import APIRouter, Query
from pydantic import BaseModel, Field

from offerloop.attribution import service
from offerloop.attribution.exceptions import AttributionInputError, TooManyChannels
from offerloop.attribution.schemas import AttributionRead, CreditKey, CreditsRead, Key, Model, RefreshRead
from offerloop.core.clock import utcnow
from offerloop.core.errors import ValidationFailed, error_responses
from offerloop.web import Day, Decimal, Int
from offerloop.workspaces.auth import DB, SecretKey
from offerloop.workspaces.exceptions import InvalidKey, SecretKeyRequired

router = APIRouter(prefix="/v1", tags=["attribution"])

_KEY = (InvalidKey, SecretKeyRequired, ValidationFailed)
_ERRORS = error_responses(*_KEY, AttributionInputError, TooManyChannels)

Start = Annotated[
    Day | None, Query(description="First day (UTC) of conversions, YYYY-MM-DD; default: 30 days before end")
]
End = Annotated[Day | None, Query(description="Last day (UTC), inclusive, YYYY-MM-DD; default: today")]
Currency = Annotated[str | None, Query(pattern=r"^[A-Z]{3}$", description="Value in this currency only")]
Conversion = Annotated[str, Query(min_length=1, max_length=255, description="The conversion's event name")]
WhereParam = Annotated[
    str | None,
    Query(
        max_length=4000,
        description='A condition on its properties as JSON, e.g. {"total_minor": {"gte": 1000}}',
    ),
]
Lookback = Annotated[Int, Query(ge=1, le=service.MAX_LOOKBACK_DAYS, description="Days of touches before it")]
Order = Annotated[Int, Query(ge=1, le=3, description="Markov order")]
HalfLife = Annotated[Decimal, Query(gt=0, le=365, description="time_decay half-life in days")]


def _where(text: str | None) -> Any:
    if not text:
        return None
    try:
        return orjson.loads(text)
    except orjson.JSONDecodeError as exc:
        raise AttributionInputError(
            f"where is not valid JSON (numbers must be finite doubles): {exc}"
        ) from exc


@router.get("/attribution", summary="Credit per channel, source, campaign or content by one model",
            response_model=AttributionRead, responses=_ERRORS)  # fmt: skip
def get_attribution(
    db: DB, principal: SecretKey, model: Model = "markov", conversion: Conversion = service.DEFAULT_CONVERSION,
    where: WhereParam = None, start: Start = None, end: End = None, by: Key = "channel",
    lookback_days: Lookback = 30, order: Order = 1, half_life_days: HalfLife = 7.0, currency: Currency = None,
) -> AttributionRead:  # fmt: skip
    definition = service.Definition.parse(conversion, _where(where))
    lo, hi = service.period(start, end, today=utcnow().date())
    with db.read() as session:
        return service.attribution(session=session, workspace_id=principal.workspace_id, model=model,
                                   definition=definition, start=lo, end=hi, by=by, lookback_days=lookback_days,
                                   order=order, half_life_days=half_life_days, currency=currency)  # fmt: skip


class RefreshRequest(BaseModel):
    models: list[Model] = Field(default_factory=lambda: list(get_args(Model)), min_length=1, max_length=7)
    conversion: str = Field(default=service.DEFAULT_CONVERSION, min_length=1, max_length=255)
    where: dict[str, Any] | None = Field(
        default=None, description="Refused (422): stored credit covers every conversion"
    )
    start: Day | None = None
    end: Day | None = None
    lookback_days: Int = Field(default=30, ge=1, le=service.MAX_LOOKBACK_DAYS)
    order: Int = Field(default=1, ge=1, le=3)
    half_life_days: Decimal = Field(default=7.0, gt=0, le=365)


@router.post("/attribution/refresh", summary="Recompute the stored per-conversion credit of a period",
             response_model=RefreshRead, responses=_ERRORS)  # fmt: skip
def refresh(db: DB, principal: SecretKey, body: RefreshRequest) -> RefreshRead:
    definition = service.Definition.parse(body.conversion, body.where)
    lo, hi = service.period(body.start, body.end, today=utcnow().date())
    with db.write() as session:
        return service.refresh(session=session, workspace_id=principal.workspace_id, models_=body.models,
                               definition=definition, start=lo, end=hi, lookback_days=body.lookback_days,
                               order=body.order, half_life_days=body.half_life_days)  # fmt: skip


@router.get("/attribution/credits", summary="Stored credit summed by a key or by the buyer's persona",
            response_model=CreditsRead, responses=_ERRORS)  # fmt: skip
def get_credits(
    db: DB, principal: SecretKey, model: Model = "markov", by: CreditKey = "channel", start: Start = None,
    end: End = None, currency: Currency = None, conversion: Conversion = service.DEFAULT_CONVERSION,
) -> CreditsRead:  # fmt: skip
    lo, hi = service.period(start, end, today=utcnow().date())
    with db.read() as session:
        return service.credits(session=session, workspace_id=principal.workspace_id, model=model,
                               conversion=service.Definition.parse(conversion, None).event, by=by,
                               start=lo, end=hi, currency=currency)  # fmt: skip
