"""Quiet hours, send windows and 'wait until 09:00' in the buyer's own zone, across daylight-saving changes
in two hemispheres' zones (Europe/Paris and America/New_York, which change on different dates)."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from offerloop.delivery import rules
from offerloop.delivery.journeys.spec import Window

PARIS = rules.zone("Europe/Paris")
NEW_YORK = rules.zone("America/New_York")


def utc(*args: int) -> datetime:
    return datetime(*args, tzinfo=UTC)


@pytest.mark.parametrize(
    ("tz", "after", "expected"),
    [
        # Paris springs forward on 2026-03-29 (02:00 -> 03:00): 09:00 is UTC+1 the day before, UTC+2 on the day.
        (PARIS, utc(2026, 3, 28, 9, 0), utc(2026, 3, 29, 7, 0)),
        (PARIS, utc(2026, 3, 27, 12, 0), utc(2026, 3, 28, 8, 0)),
        # ... and falls back on 2026-10-25: 09:00 is UTC+1 again.
        (PARIS, utc(2026, 10, 24, 9, 0), utc(2026, 10, 25, 8, 0)),
        # New York springs forward on 2026-03-08 and falls back on 2026-11-01.
        (NEW_YORK, utc(2026, 3, 7, 15, 0), utc(2026, 3, 8, 13, 0)),
        (NEW_YORK, utc(2026, 10, 31, 14, 0), utc(2026, 11, 1, 14, 0)),
    ],
)
def test_the_next_nine_oclock_is_nine_on_the_wall_clock_across_dst(tz, after, expected) -> None:
    got = rules.next_local(after, "09:00", tz)
    assert got == expected
    assert got.astimezone(tz).strftime("%H:%M") == "09:00"


def test_a_time_in_the_spring_gap_moves_forward_and_a_repeated_one_is_its_first() -> None:
    # 02:30 does not exist in Paris on 2026-03-29: it is 03:30 summer time (01:30 UTC).
    assert rules.next_local(utc(2026, 3, 28, 23, 0), "02:30", PARIS) == utc(2026, 3, 29, 1, 30)
    # 01:30 happens twice in New York on 2026-11-01: the first is 05:30 UTC (EDT).
    assert rules.next_local(utc(2026, 11, 1, 4, 0), "01:30", NEW_YORK) == utc(2026, 11, 1, 5, 30)


def test_the_send_window_in_two_zones_on_the_day_each_changes() -> None:
    window = Window(start="08:00", end="21:00")
    # 06:30 UTC on Paris's spring change day is 08:30 there (open), 01:30 in New York (closed until 08:00 EST... EDT).
    at = utc(2026, 3, 29, 6, 30)
    assert rules.window_opens(at, window, PARIS) is None
    assert rules.window_opens(at, window, NEW_YORK) == utc(2026, 3, 29, 12, 0)  # 08:00 EDT
    # New York's change day: 12:30 UTC is 08:30 EDT (open); Paris, 13:30 CET, open too.
    assert rules.window_opens(utc(2026, 3, 8, 12, 30), window, NEW_YORK) is None
    # 11:30 UTC that day is 07:30 EDT: opens at 12:00 UTC, not 13:00 as in winter.
    assert rules.window_opens(utc(2026, 3, 8, 11, 30), window, NEW_YORK) == utc(2026, 3, 8, 12, 0)
    # Late evening: 21:00 Paris on the autumn change day is 20:00 UTC; at 20:30 UTC it is closed until 08:00 CET.
    assert rules.window_opens(utc(2026, 10, 25, 20, 30), window, PARIS) == utc(2026, 10, 26, 7, 0)


def test_a_window_across_midnight_and_a_whole_day_window() -> None:
    night = Window(start="22:00", end="02:00")
    assert rules.window_opens(utc(2026, 6, 1, 23, 0), night, rules.zone("UTC")) is None
    assert rules.window_opens(utc(2026, 6, 2, 1, 0), night, rules.zone("UTC")) is None
    assert rules.window_opens(utc(2026, 6, 2, 3, 0), night, rules.zone("UTC")) == utc(2026, 6, 2, 22, 0)
    assert rules.window_opens(utc(2026, 6, 2, 3, 0), Window(start="00:00", end="00:00"), PARIS) is None


def test_an_unknown_or_hostile_zone_falls_back() -> None:
    assert rules.zone("Mars/Olympus").key == "UTC"
    assert rules.zone("../../etc/passwd", "Europe/Paris").key == "Europe/Paris"
    assert rules.zone(None, "America/New_York").key == "America/New_York"
    assert rules.zone(12).key == "UTC"
