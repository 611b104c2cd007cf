"""Time in UTC, always timezone-aware, and parsing of client timestamps."""

from __future__ import annotations

from datetime import UTC, datetime


def utcnow() -> datetime:
    return datetime.now(UTC)


def parse_timestamp(value: object) -> datetime | None:
    """Parse an ISO-8601 string (``Z`` allowed) or epoch seconds/milliseconds into aware UTC.

    Returns None when the value is absent; raises ValueError when it is present but unusable.
    """
    if value is None or value == "":
        return None
    if isinstance(value, bool):
        raise ValueError("timestamp must be a string or a number")
    if isinstance(value, int | float):
        seconds = value / 1000.0 if value > 1e11 else float(value)
        return datetime.fromtimestamp(seconds, UTC)
    if not isinstance(value, str):
        raise ValueError("timestamp must be a string or a number")
    text = value.strip()
    if text.endswith(("Z", "z")):
        text = text[:-1] + "+00:00"
    parsed = datetime.fromisoformat(text)
    if parsed.tzinfo is None:
        parsed = parsed.replace(tzinfo=UTC)
    return parsed.astimezone(UTC)
