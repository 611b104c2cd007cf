"""A token bucket per key (a client address, an account), held in the process: ``rate`` tokens a second
up to ``burst``; a request takes one. The keys kept are bounded (least recently seen dropped first), so
a flood of distinct keys costs memory only up to ``max_keys``.

Per process, not shared: with N server processes a client gets up to N times the rate. It is the first
line against a script hammering a public route that does work (a checkout link holding stock); a proxy's
limiter or a shared store is the next one.
"""

from __future__ import annotations

import math
import threading
import time
from collections import OrderedDict
from collections.abc import Callable, Hashable
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class Verdict:
    allowed: bool
    retry_after_s: int  # whole seconds until a token is back (0 when allowed)


class RateLimiter:
    def __init__(self, *, rate_per_s: float, burst: int, max_keys: int = 100_000,
                 clock: Callable[[], float] = time.monotonic) -> None:  # fmt: skip
        if rate_per_s <= 0 or burst < 1 or max_keys < 1:
            raise ValueError("rate_per_s > 0, burst >= 1 and max_keys >= 1")
        self.rate, self.burst, self.max_keys, self._clock = rate_per_s, burst, max_keys, clock
        self._buckets: OrderedDict[Hashable, tuple[float, float]] = OrderedDict()  # key → (tokens, at)
        self._lock = threading.Lock()

    def take(self, key: Hashable) -> Verdict:
        """Spend one token of ``key``'s bucket if it has one."""
        now = self._clock()
        with self._lock:
            tokens, at = self._buckets.pop(key, (float(self.burst), now))
            tokens = min(float(self.burst), tokens + (now - at) * self.rate)
            allowed = tokens >= 1.0
            if allowed:
                tokens -= 1.0
            self._buckets[key] = (tokens, now)
            while len(self._buckets) > self.max_keys:
                self._buckets.popitem(last=False)
        wait = 0 if allowed else max(1, math.ceil((1.0 - tokens) / self.rate))
        return Verdict(allowed, wait)


class AliveLimit:
    """At most ``most`` things alive at once per key, each alive ``ttl_s`` from when it was added (e.g. the
    stock holds one client address may have: a hold lapses after its minutes unless paid). Per process,
    bounded keys, like :class:`RateLimiter`."""

    def __init__(self, *, most: int, ttl_s: float, max_keys: int = 100_000,
                 clock: Callable[[], float] = time.monotonic) -> None:  # fmt: skip
        if most < 1 or ttl_s <= 0 or max_keys < 1:
            raise ValueError("most >= 1, ttl_s > 0 and max_keys >= 1")
        self.most, self.ttl_s, self.max_keys, self._clock = most, ttl_s, max_keys, clock
        self._alive: OrderedDict[Hashable, dict[Hashable, float]] = OrderedDict()  # key → {thing: expires}
        self._lock = threading.Lock()

    def _live(self, key: Hashable, now: float) -> dict[Hashable, float]:
        things = {t: until for t, until in self._alive.pop(key, {}).items() if until > now}
        self._alive[key] = things
        while len(self._alive) > self.max_keys:
            self._alive.popitem(last=False)
        return things

    def room(self, key: Hashable) -> Verdict:
        """Whether ``key`` may add one more now (and if not, whole seconds until its oldest lapses)."""
        now = self._clock()
        with self._lock:
            things = self._live(key, now)
            if len(things) < self.most:
                return Verdict(True, 0)
            return Verdict(False, max(1, math.ceil(min(things.values()) - now)))

    def add(self, key: Hashable, thing: Hashable) -> None:
        """Count ``thing`` against ``key`` for ``ttl_s`` (adding a thing already alive changes nothing)."""
        now = self._clock()
        with self._lock:
            self._live(key, now).setdefault(thing, now + self.ttl_s)
