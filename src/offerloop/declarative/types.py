"""Reusable field types for config models: strict, with messages that say what is expected."""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import BeforeValidator, Field, Strict, StringConstraints
from pydantic_core import PydanticCustomError

from offerloop.declarative.errors import did_you_mean
from offerloop.declarative.yaml_loading import show

__all__ = ["MAX_COUNT", "AwareDatetime", "Count", "Text", "matching", "one_of"]

Text = Annotated[str, StringConstraints(strict=True, strip_whitespace=True, min_length=1)]
"""A non-empty string, stripped."""

MAX_COUNT = 2**31 - 1  # what a database integer column holds everywhere

Count = Annotated[int, Strict(), Field(ge=1, le=MAX_COUNT)]
"""A strict integer from 1 to ``MAX_COUNT`` (a float or a boolean is refused)."""

_EXAMPLE = "e.g. 2026-03-02T17:00:00+01:00 or 2026-03-02T16:00:00Z"


def _instant(value: Any) -> datetime:
    """An ISO 8601 date-time with a zone (text or a datetime), as UTC; a zone-less time is refused."""
    parsed: datetime | None = value if isinstance(value, datetime) else None
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value.strip())
        except ValueError:
            parsed = None
    if parsed is None:
        raise PydanticCustomError(
            "config_datetime",
            "must be an ISO 8601 date-time with a time zone ({example}), got {got}",
            {"example": _EXAMPLE, "got": show(value)},
        )
    if parsed.tzinfo is None:
        raise PydanticCustomError(
            "config_timezone",
            "needs a time zone (add Z or an offset such as +01:00), got {got}",
            {"got": show(value)},
        )
    return parsed.astimezone(UTC)


AwareDatetime = Annotated[datetime, BeforeValidator(_instant)]
"""A timezone-aware instant from ISO 8601 text, normalised to UTC."""


def matching(pattern: str, what: str) -> BeforeValidator:
    """For ``Annotated[str, matching(pattern, what)]``: a string fully matching ``pattern``, else the
    error ``must be <what>, got <value>`` (a non-string is refused the same way)."""
    compiled = re.compile(pattern)

    def check(value: Any) -> Any:
        if not (isinstance(value, str) and compiled.fullmatch(value)):
            raise PydanticCustomError(
                "config_pattern", "must be {what}, got {got}", {"what": what, "got": show(value)}
            )
        return value

    return BeforeValidator(check)


def one_of(choices: Sequence[str], *, fold_case: bool = False) -> BeforeValidator:
    """For ``Annotated[str, one_of(...)]``: one of ``choices`` (any case, given as the choice, with
    ``fold_case``), else ``must be one of <choices>, got <value>`` with a "did you mean" hint."""
    folded = {choice.casefold() if fold_case else choice: choice for choice in choices}

    def check(value: Any) -> Any:
        if isinstance(value, str):
            found = folded.get(value.strip().casefold() if fold_case else value)
            if found is not None:
                return found
        raise PydanticCustomError(
            "config_choice",
            "must be one of {choices}, got {got}{hint}",
            {"choices": ", ".join(choices), "got": show(value), "hint": did_you_mean(value, choices)},
        )

    return BeforeValidator(check)
