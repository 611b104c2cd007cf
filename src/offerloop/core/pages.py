"""One way to page through a list endpoint: ``?limit=&cursor=`` in, ``{items, next_cursor}`` out.

A cursor is opaque to clients: the sort key of the last item of the previous page, JSON-encoded and
base64url'd. A list is always ordered by a unique key (usually ``(created_at, id)`` or the id alone,
newest first), so paging while rows are added neither repeats nor skips an item. A cursor that does
not decode, or decodes to the wrong shape, is a 422 ``invalid_cursor``, never a 500.
"""

from __future__ import annotations

import base64
import binascii
from collections.abc import Callable, Sequence
from typing import Any, Generic, TypeVar

import orjson
from pydantic import BaseModel, Field

from offerloop.core.errors import ValidationFailed

T = TypeVar("T")

DEFAULT_LIMIT = 50
MAX_LIMIT = 500
MAX_CURSOR_CHARS = 512


class InvalidCursor(ValidationFailed):
    code = "invalid_cursor"


class Page(BaseModel, Generic[T]):
    """A page of a list, newest (or first by the list's order) first."""

    items: list[T]
    next_cursor: str | None = Field(
        default=None, description="Pass as `cursor` to get the next page; null on the last page"
    )


def encode_cursor(key: Sequence[str | int | float | None]) -> str:
    return base64.urlsafe_b64encode(orjson.dumps(list(key))).decode().rstrip("=")


def decode_cursor(cursor: str | None, *, types: Sequence[type]) -> tuple[Any, ...] | None:
    """The sort key a cursor holds, checked against ``types`` (one per part, e.g. ``(str, str)``)."""
    if cursor is None or cursor == "":
        return None
    if len(cursor) > MAX_CURSOR_CHARS:
        raise InvalidCursor("cursor is too long: pass the next_cursor of the previous page unchanged")
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        key = orjson.loads(raw)
    except (binascii.Error, ValueError, orjson.JSONDecodeError):
        raise InvalidCursor(
            "cursor is not valid: pass the next_cursor of the previous page unchanged"
        ) from None
    if (
        not isinstance(key, list)
        or len(key) != len(types)
        or not all(
            isinstance(v, t) and not (t is int and isinstance(v, bool))
            for v, t in zip(key, types, strict=True)
        )
    ):
        raise InvalidCursor("cursor does not belong to this list: pass the next_cursor of its previous page")
    return tuple(key)


def page_of(
    rows: Sequence[Any], limit: int, *, key: Callable[[Any], Sequence[Any]], item: Callable[[Any], T]
) -> Page[T]:
    """A page from ``limit + 1`` fetched rows: the extra row only says there is a next page."""
    shown = list(rows[:limit])
    more = len(rows) > limit
    return Page[T](
        items=[item(r) for r in shown], next_cursor=encode_cursor(key(shown[-1])) if more and shown else None
    )


R = TypeVar("R", bound=BaseModel)


def page_by_id(rows: Sequence[Any], limit: int, read: type[R]) -> Page[R]:
    """``page_of`` for rows keyed by their ``id`` alone, each read into ``read`` from its attributes."""
    return page_of(
        rows, limit, key=lambda r: (r.id,), item=lambda r: read.model_validate(r, from_attributes=True)
    )
