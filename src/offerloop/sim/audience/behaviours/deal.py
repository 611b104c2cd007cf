"""The deal seeker: comes for promotions, tries coupon codes, buys at a discount."""

from __future__ import annotations

from offerloop.sim.audience.catalog import _SHOP_PRODUCTS, _money
from offerloop.sim.audience.clock import _HOUR_MS, _MIN_MS
from offerloop.sim.audience.session import _BuyerRun


class DealRun(_BuyerRun):
    """The deal seeker."""

    __slots__ = ()

    def _landing_path(self) -> str:
        rng = self.rng
        return rng.choice(("/shop", rng.choice(_SHOP_PRODUCTS).path))

    def _special_session(
        self, cand: int, mean_gap: float, expected_sessions: float
    ) -> tuple[int, str] | None:
        """A visit during a promotion that starts soon, when the next session would miss every one."""
        world, rng = self.world, self.rng
        promo = self._promo_at(cand)
        if promo is None and rng.random() < 0.8:
            for p in world.promos:
                if p.ends_ms > self.t + _HOUR_MS and p.starts_ms < self.t + 3 * mean_gap:
                    lo = max(p.starts_ms, self.t + 20 * _MIN_MS)
                    at = lo + int(rng.random() * (p.ends_ms - lo))
                    if at < world.end_ms:
                        return at, "promo"
                    break
        return None

    def _behave(self, reason: str) -> None:
        rng = self.rng
        promo = self._promo_at(self.t)
        product = rng.choice(_SHOP_PRODUCTS[:6])
        if promo is not None and rng.random() < 0.85:
            self._land(
                "promo",
                path=rng.choice(("/shop", product.path)),
                extra=(("coupon", promo.code),),
                campaign_name=promo.name,
            )
        else:
            self._land(reason)
        for _ in range(rng.randint(0, 2)):
            self._view(rng.choice(("/shop", "/pricing", rng.choice(_SHOP_PRODUCTS).path)))
        self._view(product.path)
        self._product_viewed(product)
        if promo is not None and promo.name not in self.used_promos and rng.random() < 0.6:
            self.used_promos.add(promo.name)
            self._checkout(product, coupon=promo)
        elif promo is None and not self.welcome_used and rng.random() < 0.12:
            self.welcome_used = True
            self._checkout(product, welcome=True)
        elif rng.random() < 0.35:
            checkout_id = self._id("chk")
            self._track(
                "Checkout Started",
                {
                    "checkout_id": checkout_id,
                    "product_id": product.product_id,
                    "product_type": product.product_type,
                    "value": _money(product.price_cents),
                    "currency": "USD",
                },
            )
            expired = [p for p in self.world.promos if p.ends_ms <= self.t]
            code = rng.choice(expired).code if expired else rng.choice(("SAVE50", "FREESHIP", "CREATOR100"))
            self._track(
                "Coupon Denied",
                {
                    "checkout_id": checkout_id,
                    "coupon_name": code,
                    "reason": "expired" if expired else "invalid",
                },
            )
