"""HTTP helpers shared by the domain routers and the app factory."""

from __future__ import annotations

from typing import Annotated, Any

import orjson
from fastapi import Query
from pydantic import BaseModel
from starlette.responses import JSONResponse, Response

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
