"""The lurker researcher: reads the blog and the sales pages, takes the quiz, seldom buys."""

from __future__ import annotations

from offerloop.sim.audience.catalog import _BLOG, _COURSES, _LURKER_PATHS, _PLAYBOOKS, _SHOP_PRODUCTS
from offerloop.sim.audience.session import _BuyerRun


class LurkerRun(_BuyerRun):
    """The lurker researcher."""

    __slots__ = ()

    def _landing_path(self) -> str:
        rng = self.rng
        return rng.choices((f"/blog/{rng.choice(_BLOG)}", "/", rng.choice(_COURSES).path), (6, 2, 2))[0]

    def _behave(self, reason: str) -> None:
        rng = self.rng
        self._land(reason)
        for _ in range(rng.randint(3, 10)):
            path = rng.choice(_LURKER_PATHS)
            self._view(path)
            if rng.random() < 0.15:
                product = next((p for p in _SHOP_PRODUCTS if p.path == path), None)
                if product is not None:
                    self._product_viewed(product)
        if not self.quizzed and (self.sessions > 1 or rng.random() < 0.4) and rng.random() < 0.7:
            self._quiz()
        elif self.quizzed and not self.assessed and rng.random() < 0.3:
            self._assessment()
        r = rng.random()
        if r < 0.01:
            product = rng.choice(_PLAYBOOKS)
            self._view(product.path)
            self._checkout(product)
        elif r < 0.05:
            self._checkout(rng.choice(_SHOP_PRODUCTS), complete=False)
