"""The token bucket: a burst, then one request per 1/rate seconds, per key, with bounded memory."""

from __future__ import annotations

import pytest

from offerloop.core.ratelimit import RateLimiter, Verdict


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_burst_then_the_rate() -> None:
    clock = Clock()
    limiter = RateLimiter(rate_per_s=0.5, burst=3, clock=clock)  # one token every 2 s
    assert [limiter.take("a").allowed for _ in range(4)] == [True, True, True, False]
    assert limiter.take("a") == Verdict(False, 2)
    clock.now += 1.0
    assert limiter.take("a") == Verdict(False, 1)  # half a token back
    clock.now += 1.0
    assert limiter.take("a") == Verdict(True, 0)
    assert limiter.take("a") == Verdict(False, 2)
    clock.now += 3600.0  # a long pause refills to the burst, not beyond
    assert [limiter.take("a").allowed for _ in range(4)] == [True, True, True, False]


def test_keys_are_independent_and_the_oldest_is_forgotten_first() -> None:
    clock = Clock()
    limiter = RateLimiter(rate_per_s=1.0, burst=1, max_keys=2, clock=clock)
    assert limiter.take("a").allowed and limiter.take("b").allowed
    assert not limiter.take("a").allowed and not limiter.take("b").allowed
    assert limiter.take("c").allowed  # a third key: "a" (least recently seen) is dropped...
    assert limiter.take("a").allowed  # ...so it starts again from a full bucket
    assert not limiter.take("c").allowed


@pytest.mark.parametrize(("rate", "burst", "keys"), [(0.0, 1, 1), (-1.0, 1, 1), (1.0, 0, 1), (1.0, 1, 0)])
def test_nonsense_settings_are_refused(rate: float, burst: int, keys: int) -> None:
    with pytest.raises(ValueError, match="rate_per_s > 0"):
        RateLimiter(rate_per_s=rate, burst=burst, max_keys=keys)


def test_alive_limit_counts_what_has_not_lapsed() -> None:
    from offerloop.core.ratelimit import AliveLimit

    clock = Clock()
    holds = AliveLimit(most=2, ttl_s=900.0, clock=clock)
    assert holds.room("addr") == Verdict(True, 0)
    holds.add("addr", "ord_1")
    clock.now += 100.0
    holds.add("addr", "ord_2")
    holds.add("addr", "ord_2")  # the same order again (a second click) is not a second hold
    assert holds.room("addr") == Verdict(False, 800)  # ord_1 lapses 800 s from now
    assert holds.room("other") == Verdict(True, 0)
    clock.now += 800.0
    assert holds.room("addr") == Verdict(True, 0)  # ord_1 lapsed; ord_2 still counts
    holds.add("addr", "ord_3")
    assert holds.room("addr") == Verdict(False, 100)
    with pytest.raises(ValueError, match="most >= 1"):
        AliveLimit(most=0, ttl_s=1.0)
