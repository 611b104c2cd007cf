"""HTTP helpers shared by the domain routers and the app factory."""

from __future__ import annotations

import math
import re
from datetime import UTC, date, datetime
from typing import Annotated, Any

import orjson
from fastapi import Depends, Query, Request
from fastapi.routing import APIRoute
from pydantic import AfterValidator, BaseModel, BeforeValidator, WithJsonSchema
from pydantic_core import PydanticCustomError
from starlette.responses import JSONResponse, Response
from starlette.types import Message, Receive, Scope, Send

from offerloop.core.clock import utcnow
from offerloop.core.errors import ValidationFailed
from offerloop.core.pages import MAX_LIMIT


class JSONBytes(JSONResponse):
    """A JSON response serialised with orjson (datetimes, non-str keys handled natively)."""

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content, option=orjson.OPT_NON_STR_KEYS)


def model_json(model: BaseModel, status_code: int = 200) -> Response:
    """A response model already built by the route, serialised once by pydantic's own serialiser: returned
    as a Response, FastAPI neither validates it again against the declared response model nor re-encodes it
    (declare ``response_model`` on the route so the OpenAPI schema still describes it)."""
    return Response(model.model_dump_json(), status_code=status_code, media_type="application/json")


# The query parameters of every list endpoint (see offerloop.core.pages): one spelling, one bound.
Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT, description="Items per page")]
Cursor = Annotated[
    str | None, Query(description="The next_cursor of the previous page; omit for the first page")
]


# -- strict parameters -------------------------------------------------------------------------------
# One parsing for the dates, instants and numbers the analytics, LTV, attribution, experiments and health
# routes take (query or JSON body): ASCII digits only (Python's int() and str.isdigit() take Arabic-Indic
# and other Unicode digits), no "+", "_", blanks, exponents, NaN or infinity, no epoch numbers for times,
# and a date is a date: "2026-01-01", not "2026-01-01T00:00:00+05:00". A value refused here is a 422
# ``validation_failed`` naming the parameter, like any other invalid input.

_DAY = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}")
_INSTANT = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}([T ][0-9]{2}:[0-9]{2}(:[0-9]{2}(\.[0-9]{1,6})?)?(Z|[+-][0-9]{2}:[0-9]{2})?)?"
)
_INT = re.compile(r"-?[0-9]{1,18}")
_DECIMAL = re.compile(r"-?[0-9]{1,18}(\.[0-9]{1,18})?")
_DAYS_LIST = re.compile(r" *[0-9]{1,9} *(, *[0-9]{1,9} *)*")


def _refuse(kind: str, message: str, value: Any) -> PydanticCustomError:
    return PydanticCustomError(kind, message + ", got {got}", {"got": repr(value)[:60]})


def parse_day(value: Any) -> date:
    """``YYYY-MM-DD`` in ASCII digits (a ``date`` passes): no time, no offset."""
    if isinstance(value, date) and not isinstance(value, datetime):
        return value
    if not isinstance(value, str) or not _DAY.fullmatch(value):
        raise _refuse("strict_date", "must be a date YYYY-MM-DD (ASCII digits; no time, no offset)", value)
    try:
        return date.fromisoformat(value)
    except ValueError:
        raise _refuse("strict_date", "must be a real calendar date", value) from None


def not_after_today(value: date | None) -> date | None:
    """A day whose data exists: today (UTC) at the latest."""
    today = utcnow().date()
    if value is not None and value > today:
        raise PydanticCustomError(
            "future_date",
            "must not be after today ({today}, UTC): a day to come has no data yet",
            {"today": today.isoformat()},
        )
    return value


def parse_instant(value: Any) -> datetime:
    """An ISO 8601 date (midnight) or date-time in ASCII digits, with ``Z`` or ``+HH:MM`` or no offset (UTC);
    no epoch numbers. Returned aware, in UTC."""
    if isinstance(value, datetime):
        parsed = value
    elif not isinstance(value, str) or not _INSTANT.fullmatch(value):
        raise _refuse(
            "strict_datetime",
            "must be an ISO 8601 date or date-time (ASCII digits, optional Z or +HH:MM)",
            value,
        )
    else:
        try:
            parsed = datetime.fromisoformat(value)
        except ValueError:
            raise _refuse("strict_datetime", "must be a real calendar date and time", value) from None
    return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)


def parse_int(value: Any) -> int:
    """A whole number: a JSON integer, or text of ASCII digits with an optional leading "-"."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    if not isinstance(value, str) or not _INT.fullmatch(value):
        raise _refuse("strict_int", "must be a whole number in ASCII digits", value)
    return int(value)


def parse_decimal(value: Any) -> float:
    """A finite number: a JSON number, or text of ASCII digits with an optional "-" and decimal part."""
    if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
        return float(value)
    if not isinstance(value, str) or not _DECIMAL.fullmatch(value):
        raise _refuse("strict_number", "must be a decimal number in ASCII digits (e.g. 0.25)", value)
    return float(value)


def check_days_list(value: Any) -> str:
    """A comma-separated list of whole numbers in ASCII digits (the list's own bounds are the route's)."""
    if not isinstance(value, str) or not _DAYS_LIST.fullmatch(value):
        raise _refuse("strict_int_list", "must be whole numbers in ASCII digits, comma separated", value)
    return value


Day = Annotated[date, BeforeValidator(parse_day), WithJsonSchema({"type": "string", "format": "date"})]
PastDay = Annotated[date, BeforeValidator(parse_day), AfterValidator(not_after_today),
                    WithJsonSchema({"type": "string", "format": "date"})]  # fmt: skip
Instant = Annotated[
    datetime, BeforeValidator(parse_instant), WithJsonSchema({"type": "string", "format": "date-time"})
]
Int = Annotated[int, BeforeValidator(parse_int), WithJsonSchema({"type": "integer"})]
Decimal = Annotated[float, BeforeValidator(parse_decimal), WithJsonSchema({"type": "number"})]
DaysList = Annotated[str, BeforeValidator(check_days_list), WithJsonSchema({"type": "string"})]


def single_valued_query(request: Request) -> None:
    """Refuse a query parameter given more than once (``?as_of=a&as_of=b``): a route would silently use one."""
    seen: dict[str, int] = {}
    for name, _ in request.query_params.multi_items():
        seen[name] = seen.get(name, 0) + 1
    repeated = sorted(name for name, n in seen.items() if n > 1)
    if repeated:
        raise ValidationFailed(
            f"query parameter {repeated[0]!r} is given {seen[repeated[0]]} times: give each parameter once",
            code="repeated_parameter",
            details={"repeated": repeated[:20]},
        )


SingleValued = Depends(single_valued_query)


# -- HEAD ------------------------------------------------------------------------------------------------


class HeadAsGetRoute(APIRoute):
    """A route whose GET also answers HEAD (RFC 9110 9.3.2): the GET's status and header fields, no content.
    Link checkers and uptime monitors ask with HEAD; FastAPI routes answer it 405 otherwise. The page runs as
    for GET and only its body is dropped on the way out, so the two can never disagree on status or headers."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.methods and "GET" in self.methods:
            self.methods.add("HEAD")

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http" and scope["method"] == "HEAD":
            send = _headers_only(send)
        await super().handle(scope, receive, send)


def _headers_only(send: Send) -> Send:
    async def sender(message: Message) -> None:
        if message["type"] != "http.response.body":
            await send(message)
        elif not message.get("more_body", False):
            await send({"type": "http.response.body", "body": b"", "more_body": False})

    return sender
