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
