"""The gifting guest: shows up before a holiday, buys one gift, rarely comes back."""

from __future__ import annotations

from offerloop.sim.audience.catalog import _GIFTABLE, _RETURN_PATHS
from offerloop.sim.audience.clock import _HOUR_MS, _MIN_MS
from offerloop.sim.audience.session import _BuyerRun


class GiftingRun(_BuyerRun):
    """The gifting guest."""

    __slots__ = ()

    def _first_session(self) -> tuple[int, str]:
        plan = self.plan
        if plan.first_seen_ms >= plan.gift_ms or plan.budget < 12:
            return max(plan.first_seen_ms, plan.gift_ms), "gift"  # no time to browse first: buy at once
        return plan.first_seen_ms, "first"

    def _next_session(self) -> tuple[int, str]:
        plan, rng = self.plan, self.rng
        if not self.purchased:
            if self.pre_gift_sessions < 2 and self._room(10) and self.t < plan.gift_ms - 2 * _HOUR_MS:
                self.pre_gift_sessions += 1
                return self.t + int(rng.uniform(0.2, 0.7) * (plan.gift_ms - self.t)), "normal"
            return max(plan.gift_ms, self.t + 10 * _MIN_MS), "gift"
        return super()._next_session()

    def _gap(self, mean_gap: float, left: int) -> float:
        return max(mean_gap, left / 2)  # gift buyers rarely come back

    def _landing_path(self) -> str:
        rng = self.rng
        return rng.choice(("/gifts", "/shop", "/", rng.choice(_GIFTABLE).path))

    def _behave(self, reason: str) -> None:
        plan, rng = self.plan, self.rng
        if reason == "gift" and not self.purchased:
            product = rng.choice(_GIFTABLE)
            drops = self._open_drops()
            if drops and rng.random() < 0.3:
                product = drops[0].product
            landing = rng.choice(("/gifts", product.path)) if self._room(9) else product.path
            self._land("first" if self.sessions == 1 else reason, path=landing)
            if self.page is not None and self.page["path"] != product.path:
                self._view(product.path)
            self._product_viewed(product)
            self.purchased = True
            drop = next((d for d in drops if d.product is product), None)
            self._checkout(product, gift=plan.gift_occasion, drop=drop)
            return
        self._land(reason)
        if not self.purchased:
            for _ in range(rng.randint(1, 4)):
                if not self._room(7):
                    return
                product = rng.choice(_GIFTABLE)
                self._view(product.path)
                if self._room(7):
                    self._product_viewed(product)
            return
        # Rare return visit after the gift: read a few pages and leave.
        if self.identified and rng.random() < 0.5:
            self._view("/account/orders")
        for _ in range(rng.randint(3, 8)):
            self._view(rng.choice(_RETURN_PATHS))
