"""The early-adopter superfan: comes for every drop, takes lessons, posts in the community."""

from __future__ import annotations

from offerloop.sim.audience.catalog import _COACHING, _COURSES, _PLAYBOOKS
from offerloop.sim.audience.clock import _DAY_MS, _MIN_MS
from offerloop.sim.audience.session import _BuyerRun


class SuperfanRun(_BuyerRun):
    """The early-adopter superfan."""

    __slots__ = ()

    def _prepare(self) -> None:
        if self.plan.existing:  # owns a course or two already
            rng = self.rng
            self.owned = rng.sample(_COURSES, rng.randint(1, 2))
            for c in self.owned:
                self.progress[c.product_id] = rng.randint(0, 12)

    def _landing_path(self) -> str:
        return self.rng.choice(("/", "/drops", "/community", "/links", "/members"))

    def _special_session(
        self, cand: int, mean_gap: float, expected_sessions: float
    ) -> tuple[int, str] | None:
        """The opening of the next drop, if it comes before (or soon after) the next session."""
        drops, rng = self.world.drops, self.rng
        while self.drop_cursor < len(drops) and drops[self.drop_cursor].opens_ms <= self.t:
            self.drop_cursor += 1
        if self.drop_cursor < len(drops):
            drop = drops[self.drop_cursor]
            if drop.opens_ms <= cand + 2 * _DAY_MS and rng.random() < 0.92:
                self.drop_cursor += 1
                return drop.opens_ms + int(rng.expovariate(1 / (4 * _MIN_MS))), "drop"
        return None

    def _behave(self, reason: str) -> None:
        rng = self.rng
        if reason == "drop":
            drop = self.world.drops[self.drop_cursor - 1]
            self._land("drop", path=drop.product.path)
            self._drop_viewed(drop)
            if rng.random() < 0.85:
                self.bought_drops.add(drop.drop_id)
                self._checkout(drop.product, drop=drop)
            if rng.random() < 0.3:
                self._community(post=True, comments=0)
            return
        self._land(reason)
        r = rng.random()
        if r < 0.4:
            self._lessons(rng.randint(1, 3))
        elif r < 0.75:
            self._community(post=rng.random() < 0.35, comments=rng.randint(1, 3))
        else:
            self._view("/drops")
            for drop in self._open_drops()[:2]:
                self._drop_viewed(drop)
                if drop.drop_id not in self.bought_drops and rng.random() < 0.5:
                    self.bought_drops.add(drop.drop_id)
                    self._checkout(drop.product, drop=drop)
        if rng.random() < 0.05:
            product = rng.choice(_PLAYBOOKS + _COACHING + _COURSES)
            self._view(product.path)
            self._product_viewed(product)
            self._checkout(product)
        if self.identified and rng.random() < 0.1:
            self._group()
        if rng.random() < 0.25:
            self._community(post=False, comments=rng.randint(1, 2))
