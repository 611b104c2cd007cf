"""Column types that behave the same on SQLite and PostgreSQL."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from functools import lru_cache
from typing import Any

from sqlalchemy import JSON, BigInteger, DateTime, Dialect, Integer
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.types import TypeDecorator


def parse_stored_datetime(text: str) -> datetime:
    """A DATETIME text as SQLite holds it, including years below 1000 that older versions wrote unpadded."""
    year, dash, rest = text.partition("-")
    if dash and year.isdigit() and len(year) < 4:
        text = f"{int(year):04d}-{rest}"
    return datetime.fromisoformat(text)


@lru_cache(maxsize=8192)
def _sqlite_utc(text: str) -> datetime:
    """A stored DATETIME text as an aware UTC datetime; cached, since a log's rows repeat their times (a
    batch's received_at and sent_at) and datetimes are immutable."""
    value = parse_stored_datetime(text)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class _SQLiteJSON(TypeDecorator[Any]):
    """JSON on SQLite that reads back every value it stores.

    A column declared JSON has NUMERIC affinity in SQLite, so a top-level number (``42``) comes back as an
    INTEGER or REAL, not as JSON text; SQLAlchemy's JSON type would hand that to the JSON parser and fail.
    """

    impl = JSON
    cache_ok = True

    def result_processor(self, dialect: Dialect, coltype: Any) -> Callable[[Any], Any] | None:
        parse = self.impl_instance.result_processor(dialect, coltype)
        if parse is None:
            return None

        def process(value: Any) -> Any:
            return value if isinstance(value, int | float) else parse(value)

        return process


# SQLite only auto-increments an INTEGER PRIMARY KEY; PostgreSQL gets a real bigint.
BigIntPK = BigInteger().with_variant(Integer(), "sqlite")

# JSONB on PostgreSQL (indexable, compact), plain JSON text elsewhere.
JSONType = JSON().with_variant(JSONB(), "postgresql").with_variant(_SQLiteJSON(), "sqlite")


class UTCDateTime(TypeDecorator[datetime]):
    """Stores UTC; always returns timezone-aware UTC datetimes (SQLite has no tz support)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        if dialect.name == "sqlite":
            return value.replace(tzinfo=None)
        return value

    def result_processor(self, dialect: Dialect, coltype: Any) -> Callable[[Any], Any] | None:
        if dialect.name != "sqlite":
            return super().result_processor(dialect, coltype)

        # SQLite holds text: parsed here, so a year below 1000 written by an older version still reads.
        def process(value: Any) -> datetime | None:
            if isinstance(value, str):
                return _sqlite_utc(value)
            return self.process_result_value(value, dialect)

        return process

    def process_result_value(self, value: Any, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if isinstance(value, str):
            value = parse_stored_datetime(value)
        if value.tzinfo is None:
            return value.replace(tzinfo=UTC)  # type: ignore[no-any-return]
        return value.astimezone(UTC)  # type: ignore[no-any-return]
