"""Time in UTC, always timezone-aware, and parsing of client timestamps."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path


def utcnow() -> datetime:
    return datetime.now(UTC)


def offset_clock(path: str | Path) -> Callable[[], datetime]:
    """UTC plus the seconds written in the file at ``path`` (read at every call; absent or empty: 0), so a
    test can move a real server's clock for due work forward."""
    file = Path(path)

    def now() -> datetime:
        try:
            text = file.read_text().strip()
        except FileNotFoundError:
            text = ""
        return utcnow() + timedelta(seconds=float(text or 0))

    return now


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
