"""The subscription loyalist: joins the membership, takes lessons, renews every month."""

from __future__ import annotations

from offerloop.sim.audience.catalog import _COURSES, _MEMBERSHIP, _money
from offerloop.sim.audience.clock import _DAY_MS
from offerloop.sim.audience.session import _BuyerRun


class LoyalistRun(_BuyerRun):
    """The subscription loyalist."""

    __slots__ = ()

    def _prepare(self) -> None:
        if self.plan.existing:  # a member from before the window
            rng = self.rng
            self.subscribed = True
            self.subscription_id = f"sub_{rng.getrandbits(48):012x}"
            self.owned = list(_COURSES)
            for c in self.owned:
                self.progress[c.product_id] = rng.randint(0, 16)

    def _landing_path(self) -> str:
        return "/members" if self.subscribed else self.rng.choice(("/membership", "/", "/links"))

    def _behave(self, reason: str) -> None:
        plan, rng = self.plan, self.rng
        if not self.subscribed and plan.will_identify and (self.sessions > 1 or rng.random() < 0.6):
            self._land(reason, path="/membership")
            self._product_viewed(_MEMBERSHIP)
            self._checkout(_MEMBERSHIP, complete=False)
            self._maybe_identify()
            self.subscribed = True
            self.subscription_id = self._id("sub")
            self.owned = list(_COURSES)
            currency = plan.currency if plan.currency in ("USD", "EUR", "GBP", "CAD") else "USD"
            self._track(
                "Subscription Started",
                {
                    "subscription_id": self.subscription_id,
                    "plan_id": _MEMBERSHIP.product_id,
                    "plan": "inner_circle",
                    "revenue": _money(_MEMBERSHIP.price_cents),
                    "currency": currency,
                    "billing_interval": "month",
                },
            )
            self._push(self.t + 30 * _DAY_MS, "renew")
            self._view("/members")
            self._lessons(1)
            return
        self._land(reason)
        if not self.subscribed:
            for _ in range(rng.randint(1, 4)):
                self._view(rng.choice(("/membership", "/pricing", "/testimonials", "/faq")))
            return
        if rng.random() < 0.65:
            self._lessons(rng.randint(1, 4))
        if rng.random() < 0.45:
            self._community(post=rng.random() < 0.25, comments=rng.randint(0, 2))
