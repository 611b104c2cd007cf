"""The weekend collector: browses drops and the shop on Saturdays and Sundays."""

from __future__ import annotations

from offerloop.sim.audience.catalog import _BLOG, _PLAYBOOKS
from offerloop.sim.audience.clock import _DAY_MS, _HOUR_MS, _MIN_MS, _local_ms, _utc_from_local
from offerloop.sim.audience.session import _BuyerRun


class WeekendRun(_BuyerRun):
    """The weekend collector."""

    __slots__ = ()

    def _landing_path(self) -> str:
        return self.rng.choice(("/drops", "/shop", "/", "/links"))

    def _special_session(
        self, cand: int, mean_gap: float, expected_sessions: float
    ) -> tuple[int, str] | None:
        weekend = self._weekend_next(expected_sessions)
        return None if weekend is None else (weekend, "normal")

    def _weekend_next(self, expected_sessions: float) -> int | None:
        """Next session on a Saturday/Sunday (buyer's local time), pacing the remaining sessions."""
        rng, zone = self.rng, self.plan.zone
        if rng.random() < 0.08:
            return None  # the occasional weekday visit
        local_now = _local_ms(zone, self.t)
        today = local_now - local_now % _DAY_MS
        last_day = _local_ms(zone, self.world.end_ms - 2 * _HOUR_MS)
        days: list[int] = []
        d = today + _DAY_MS
        while d <= last_day:
            if (d // _DAY_MS + 3) % 7 >= 5:  # 1970-01-01 was a Thursday; Monday = 0
                days.append(d)
            d += _DAY_MS
        today_open = (today // _DAY_MS + 3) % 7 >= 5 and local_now - today < 21 * _HOUR_MS
        rate = expected_sessions / max(1, len(days) + today_open)  # sessions still needed per weekend day
        if today_open and (not days or rng.random() < 1 - 1 / max(rate, 1.0)):
            return self.t + rng.randint(20, 150) * _MIN_MS
        if not days:
            return None
        skip = 0 if rate >= 1 else int(0.8 * rng.expovariate(rate))
        day = days[min(skip, len(days) - 1)]
        return _utc_from_local(zone, day + rng.randint(9, 21) * _HOUR_MS + rng.randint(0, 3599) * 1000)

    def _behave(self, reason: str) -> None:
        rng = self.rng
        self._land(reason)
        for _ in range(rng.randint(0, 2)):
            self._view(rng.choice(("/drops", "/shop", "/", f"/blog/{rng.choice(_BLOG)}")))
        drops = self._open_drops()
        if drops:
            for drop in drops[:2]:
                self._view(drop.product.path)
                self._drop_viewed(drop)
                if drop.drop_id not in self.bought_drops and rng.random() < 0.45:
                    self.bought_drops.add(drop.drop_id)
                    self._checkout(drop.product, drop=drop)
        else:
            past = [d for d in self.world.drops if d.closes_ms <= self.t]
            if past:
                drop = rng.choice(past)
                self._view(drop.product.path)
                self._drop_viewed(drop)
            else:
                self._product_viewed(rng.choice(_PLAYBOOKS))
        if rng.random() < 0.15:
            self._community(post=False, comments=1)
