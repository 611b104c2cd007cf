"""Local time in the simulator: zoneinfo over the pinned tzdata package."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from offerloop.sim.audience.clock import _ms, _offset_ms, _utc_from_local, _zone
from offerloop.sim.audience.parameters import _ZONES

_HOUR = 3_600_000


def _at(*args: int) -> int:
    return _ms(datetime(*args, tzinfo=UTC))


def test_every_simulated_zone_comes_from_the_tzdata_package() -> None:
    assert [_zone(z.name).key for z in _ZONES] == [z.name for z in _ZONES]


@pytest.mark.parametrize(
    ("zone", "instant", "hours"),
    [
        # the DST changes of 2026 at their exact instants (the last millisecond before, the first after)
        ("America/New_York", _at(2026, 3, 8, 7) - 1, -5),
        ("America/New_York", _at(2026, 3, 8, 7), -4),
        ("Europe/Berlin", _at(2026, 10, 25, 1) - 1, 2),
        ("Europe/Berlin", _at(2026, 10, 25, 1), 1),
        ("Australia/Sydney", _at(2026, 10, 3, 16) - 1, 10),
        ("Australia/Sydney", _at(2026, 10, 3, 16), 11),
        # rules the hand-coded table had wrong: Mexico kept DST until October 2022, Brazil until February 2019
        ("America/Mexico_City", _at(2022, 7, 1, 12), -5),
        ("America/Mexico_City", _at(2023, 7, 1, 12), -6),
        ("America/Sao_Paulo", _at(2018, 12, 1, 12), -2),
        ("America/Sao_Paulo", _at(2019, 12, 1, 12), -3),
        ("Asia/Kolkata", _at(2026, 7, 1), 5.5),
    ],
)
def test_offsets(zone: str, instant: int, hours: float) -> None:
    assert _offset_ms(zone, instant) == int(hours * _HOUR)


def test_a_repeated_local_hour_reads_as_its_second_occurrence_and_a_skipped_one_after_the_change() -> None:
    # 01:30 on 2026-11-01 happens twice in New York (EDT, then EST): the second one is 06:30 UTC
    assert _utc_from_local("America/New_York", _at(2026, 11, 1, 1, 30)) == _at(2026, 11, 1, 6, 30)
    # 02:30 on 2026-03-08 never happens there: read with the offset after the change (EDT), 06:30 UTC
    assert _utc_from_local("America/New_York", _at(2026, 3, 8, 2, 30)) == _at(2026, 3, 8, 6, 30)
