"""When a schedule ticks: weekdays, days of the month (clamped to short months), wall times across DST."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

import pytest

from offerloop.delivery import schedule
from offerloop.delivery.journeys.spec import Schedule

PARIS = ZoneInfo("Europe/Paris")


def every(**fields: object) -> Schedule:
    return Schedule.model_validate(fields)


def utc(*parts: int) -> datetime:
    return datetime(*parts, tzinfo=UTC)  # type: ignore[misc]


@pytest.mark.parametrize(
    ("fields", "now", "latest", "coming"),
    [
        # Daily at 09:00 Paris: 08:00 UTC in winter.
        ({"every": "day", "at": "09:00"}, utc(2026, 12, 7, 7, 59), utc(2026, 12, 6, 8), utc(2026, 12, 7, 8)),
        ({"every": "day", "at": "09:00"}, utc(2026, 12, 7, 8, 0), utc(2026, 12, 7, 8), utc(2026, 12, 8, 8)),
        # Mondays and Thursdays (2026-12-07 is a Monday).
        ({"every": "week", "at": "09:00", "days": ["mon", "thu"]}, utc(2026, 12, 9, 12),
         utc(2026, 12, 7, 8), utc(2026, 12, 10, 8)),
        # Weekly defaults to Monday.
        ({"every": "week", "at": "18:30"}, utc(2026, 12, 6, 12), utc(2026, 11, 30, 17, 30), utc(2026, 12, 7, 17, 30)),
        # The 31st of every month: February's last day stands in for it.
        ({"every": "month", "at": "09:00", "days": [31]}, utc(2027, 3, 1, 12), utc(2027, 2, 28, 8), utc(2027, 3, 31, 7)),
        # Monthly defaults to the 1st.
        ({"every": "month", "at": "00:00"}, utc(2026, 12, 15), utc(2026, 11, 30, 23), utc(2026, 12, 31, 23)),
        # Across the spring change (2027-03-28 in Paris): 09:00 is 08:00 UTC before, 07:00 UTC after.
        ({"every": "day", "at": "09:00"}, utc(2027, 3, 27, 9), utc(2027, 3, 27, 8), utc(2027, 3, 28, 7)),
        # 02:30 does not exist on the change day: it is moved forward by the gap (03:30 summer time).
        ({"every": "day", "at": "02:30"}, utc(2027, 3, 28, 0), utc(2027, 3, 27, 1, 30), utc(2027, 3, 28, 1, 30)),
    ],
)  # fmt: skip
def test_ticks(fields: dict[str, object], now: datetime, latest: datetime, coming: datetime) -> None:
    plan = every(**fields)
    assert schedule.latest_tick(plan, now, PARIS) == latest
    assert schedule.next_tick(plan, now, PARIS) == coming
