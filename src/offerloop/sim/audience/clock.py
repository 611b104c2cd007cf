"""Simulated time: UTC milliseconds, calendar helpers and local time through ``zoneinfo`` (pinned tzdata)."""

from __future__ import annotations

import random
import time
from datetime import UTC, date, datetime, timedelta
from functools import cache
from importlib import resources
from typing import Final
from zoneinfo import ZoneInfo

_DAY_MS: Final = 86_400_000
_HOUR_MS: Final = 3_600_000
_MIN_MS: Final = 60_000
_DEFAULT_START: Final = datetime(2026, 8, 1, tzinfo=UTC)

_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)
_MS: Final = timedelta(milliseconds=1)


def _ms(dt: datetime) -> int:
    return (dt - _EPOCH) // _MS


def _nth_weekday(year: int, month: int, weekday: int, n: int) -> date:
    """n-th (1-based; -1 = last) ``weekday`` (Mon=0) of the month."""
    if n > 0:
        first = date(year, month, 1)
        return first + timedelta(days=(weekday - first.weekday()) % 7 + 7 * (n - 1))
    nxt = date(year + (month == 12), month % 12 + 1, 1)
    last = nxt - timedelta(days=1)
    return last - timedelta(days=(last.weekday() - weekday) % 7)


def _day_ms(d: date) -> int:
    return (d - date(1970, 1, 1)).days * _DAY_MS


@cache
def _zone(name: str) -> ZoneInfo:
    """The IANA zone from the pinned ``tzdata`` package, never the host's tz database (same output anywhere)."""
    with resources.files("tzdata.zoneinfo").joinpath(*name.split("/")).open("rb") as fh:
        return ZoneInfo.from_file(fh, key=name)


def _offset_ms(zone: str, utc_ms: int) -> int:
    """The zone's UTC offset at the instant ``utc_ms``."""
    offset = datetime.fromtimestamp(utc_ms // 1000, _zone(zone)).utcoffset()
    assert offset is not None  # a ZoneInfo always has one
    return offset // _MS


def _local_ms(zone: str, utc_ms: int) -> int:
    return utc_ms + _offset_ms(zone, utc_ms)


def _utc_from_local(zone: str, local_ms: int) -> int:
    """The instant of a local wall-clock time.

    ``fold=1``: a repeated hour (clocks going back) is read as its second occurrence, a skipped hour
    (clocks going forward) with the offset in force after the change -- the reading the simulator has
    always used, so seeded output did not change when zoneinfo replaced the hand-coded DST rules.
    """
    wall = datetime(1970, 1, 1) + timedelta(milliseconds=local_ms)
    offset = wall.replace(tzinfo=_zone(zone), fold=1).utcoffset()
    assert offset is not None
    return local_ms - offset // _MS


def _weekend_time(rng: random.Random, zone: str, at: int, end_ms: int) -> int:
    """``at`` moved to the next Saturday or Sunday (local), daytime, if that is before ``end_ms``."""
    local = _local_ms(zone, at)
    day = local - local % _DAY_MS
    weekday = (day // _DAY_MS + 3) % 7
    if weekday < 5:
        day += (5 - weekday + rng.randint(0, 1)) * _DAY_MS
    moved = _utc_from_local(zone, day + rng.randint(9, 21) * _HOUR_MS + rng.randint(0, 3599) * 1000)
    return moved if at <= moved < end_ms - _DAY_MS else at


def _iso(ms: int) -> str:
    seconds, millis = divmod(ms, 1000)
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(seconds)) + f".{millis:03d}Z"
