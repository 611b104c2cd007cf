"""Durations as creators write them in configs: ``90s``, ``15m``, ``2h``, ``3d``, ``1w`` (a bare number is days)."""

from __future__ import annotations

import math
import re
from datetime import timedelta
from typing import Any, Final

UNITS: Final = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_PATTERN: Final = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*$")


def seconds(value: Any) -> float | None:
    """The length of ``value`` in seconds, or None if it is not a duration (negative, NaN, unknown unit)."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value) * 86400 if 0 <= value < math.inf else None  # NaN and infinity are no length
    if isinstance(value, str):
        found = _PATTERN.match(value)
        if found:
            return float(found.group(1)) * UNITS[found.group(2)]
    return None


def timedelta_of(value: Any) -> timedelta | None:
    length = seconds(value)
    return None if length is None else timedelta(seconds=length)


def text(length: float) -> str:
    """``3d`` for 259200 seconds: the largest unit that divides it."""
    for unit in ("w", "d", "h", "m"):
        size = UNITS[unit]
        if length >= size and length % size == 0:
            return f"{int(length // size)}{unit}"
    return f"{length:g}s"
