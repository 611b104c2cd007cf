"""The calendars every buyer shares: limited drops, promotions and the weekly newsletter sends."""

from __future__ import annotations

import random
import time
from dataclasses import dataclass
from datetime import date, timedelta

from offerloop.sim.audience.catalog import _DROP_NAMES, _DROP_PRICES, _PROMO_NAMES, _SUBJECTS, _Product
from offerloop.sim.audience.clock import _DAY_MS, _HOUR_MS, _day_ms, _nth_weekday


@dataclass(frozen=True, slots=True)
class _Drop:
    drop_id: str
    slug: str
    product: _Product
    opens_ms: int
    closes_ms: int
    inventory: int


@dataclass(frozen=True, slots=True)
class _Promo:
    name: str
    code: str
    pct: int
    starts_ms: int
    ends_ms: int


@dataclass(frozen=True, slots=True)
class _Send:
    email_id: str
    name: str
    subject: str
    sent_ms: int


@dataclass(frozen=True, slots=True)
class _World:
    seed_key: str
    start_ms: int
    end_ms: int
    drops: tuple[_Drop, ...]
    promos: tuple[_Promo, ...]
    sends: tuple[_Send, ...]


def _build_world(seed_key: str, start_ms: int, end_ms: int) -> _World:
    rng = random.Random(f"{seed_key}:world")
    drops: list[_Drop] = []
    cursor = start_ms + rng.randint(1, 4) * _DAY_MS
    n = 1
    while cursor < end_ms - _DAY_MS:
        day = cursor - cursor % _DAY_MS
        opens = day + rng.choice((16, 17, 17, 18, 19, 23)) * _HOUR_MS
        name = rng.choice(_DROP_NAMES).format(n=n)
        slug = f"drop-{n:03d}"
        product = _Product(f"drop_{n:03d}", name, "drop", rng.choice(_DROP_PRICES), f"/drops/{slug}")
        closes = opens + rng.randint(3, 8) * _DAY_MS
        drops.append(_Drop(f"drop_{n:03d}", slug, product, opens, closes, rng.choice((100, 150, 250, 500))))
        cursor = opens + rng.randint(6, 11) * _DAY_MS
        n += 1
    promos: list[_Promo] = []
    cursor = start_ms + rng.randint(3, 8) * _DAY_MS
    names = list(_PROMO_NAMES)
    rng.shuffle(names)
    i = 0
    while cursor < end_ms - _DAY_MS:
        name, prefix = names[i % len(names)]
        pct = rng.choice((15, 20, 20, 25, 30, 40))
        starts = cursor - cursor % _HOUR_MS
        ends = starts + rng.randint(48, 96) * _HOUR_MS
        promos.append(_Promo(name, f"{prefix}{pct}", pct, starts, ends))
        cursor = ends + rng.randint(8, 15) * _DAY_MS
        i += 1
    sends: list[_Send] = []
    day = start_ms - start_ms % _DAY_MS
    # Weekly newsletter every Tuesday 13:00 UTC (1970-01-01 was a Thursday).
    day += ((1 - (day // _DAY_MS + 3) % 7) % 7) * _DAY_MS
    while day + 13 * _HOUR_MS < end_ms:
        sent = day + 13 * _HOUR_MS
        label = time.strftime("%Y_%m_%d", time.gmtime(sent // 1000))
        sends.append(_Send(f"em_{label}", f"weekly_{label}", rng.choice(_SUBJECTS), sent))
        day += 7 * _DAY_MS
    return _World(seed_key, start_ms, end_ms, tuple(drops), tuple(promos), tuple(sends))


def _gift_occasions(start_ms: int, end_ms: int) -> list[tuple[str, int, float]]:
    """(occasion, holiday ms, weight) for holidays whose two-week shopping window overlaps the range."""
    out: list[tuple[str, int, float]] = []
    first = time.gmtime(start_ms // 1000).tm_year
    last = time.gmtime(end_ms // 1000).tm_year + 1
    for year in range(first, last + 1):
        labor_day = _nth_weekday(year, 9, 0, 1)
        thanksgiving = _nth_weekday(year, 11, 3, 4)
        holidays = (
            ("valentines_day", date(year, 2, 14), 2.0),
            ("mothers_day", _nth_weekday(year, 5, 6, 2), 3.0),
            ("graduation", date(year, 6, 1), 1.0),
            ("fathers_day", _nth_weekday(year, 6, 6, 3), 2.0),
            ("back_to_school", date(year, 8, 25), 1.0),
            ("grandparents_day", labor_day + timedelta(days=6), 1.0),
            ("halloween", date(year, 10, 31), 1.0),
            ("black_friday", thanksgiving + timedelta(days=1), 3.0),
            ("christmas", date(year, 12, 25), 5.0),
        )
        for name, day, weight in holidays:
            h = _day_ms(day)
            if h - 14 * _DAY_MS < end_ms - _DAY_MS and h > start_ms + _DAY_MS:
                out.append((name, h, weight))
    return out
