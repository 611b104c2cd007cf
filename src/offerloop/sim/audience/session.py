"""The session loop every buyer runs; a persona's behaviour (``behaviours/``) fills in the hooks."""

from __future__ import annotations

import heapq
from collections.abc import Iterator
from typing import Any

from offerloop.sim.audience.activities import _Activities
from offerloop.sim.audience.catalog import _BASE_URL, _BLOG, _MEMBERSHIP, _SHOP_PRODUCTS, _money
from offerloop.sim.audience.clock import _DAY_MS, _HOUR_MS, _MIN_MS, _local_ms, _utc_from_local
from offerloop.sim.audience.parameters import PERSONA_PARAMETERS
from offerloop.sim.audience.run import _Exhausted, _Rec


class _BuyerRun(_Activities):
    """Generates one buyer's messages in time order, exactly ``plan.budget`` of them."""

    __slots__ = ()

    # ---- hooks a behaviour overrides ------------------------------------------------------------

    def _prepare(self) -> None:
        """State the buyer already has when the window opens (a customer from before it)."""

    def _first_session(self) -> tuple[int, str]:
        return self.plan.first_seen_ms, "first"

    def _gap(self, mean_gap: float, left: int) -> float:
        """The mean time to the next session."""
        return mean_gap

    def _special_session(
        self, cand: int, mean_gap: float, expected_sessions: float
    ) -> tuple[int, str] | None:
        """A session the persona schedules itself (a drop, a promotion, a weekend), or None."""
        return None

    def _behave(self, reason: str) -> None:
        """One session's activities (``reason``: "first", "normal", "drop", "promo", "gift", "email:...")."""
        raise NotImplementedError

    # ---- the loop -------------------------------------------------------------------------------

    def run(self) -> Iterator[_Rec]:
        plan = self.plan
        if plan.budget <= 0:
            return
        rng = self.rng
        self._prepare()
        nxt = self._first_session()
        while self.count < plan.budget:
            try:
                if self.pending and self.pending[0][0] <= nxt[0]:
                    at, _, kind, arg = heapq.heappop(self.pending)
                    self._pending_event(at, kind, arg)
                else:
                    self._session(nxt[0], nxt[1])
                    nxt = self._next_session()
                if nxt[0] <= self.t:
                    nxt = (self.t + rng.randint(5, 90) * _MIN_MS, nxt[1])
            except _Exhausted:
                pass
            if self.out:
                yield from self.out
                self.out.clear()

    def _pending_event(self, at: int, kind: str, arg: int) -> None:
        plan, rng = self.plan, self.rng
        if kind == "send":
            send = self.world.sends[arg]
            if rng.random() < PERSONA_PARAMETERS[plan.persona].email_open_p:
                self._push(at + int(rng.expovariate(1 / (5 * _HOUR_MS))) + 30_000, "open", arg)
            self._schedule_send(send.sent_ms)
            return
        self.t = max(at, self.t + 1000)
        props: dict[str, Any]
        if kind == "open":
            send = self.world.sends[arg]
            props = {"email_id": send.email_id, "campaign_name": send.name, "subject": send.subject}
            self._track("Email Opened", props, server=True)
            if rng.random() < 0.35:
                self._push(self.t + rng.randint(5, 240) * 1000, "click", arg)
        elif kind == "click":
            send = self.world.sends[arg]
            path = rng.choice(("/", "/drops", f"/blog/{rng.choice(_BLOG)}", rng.choice(_SHOP_PRODUCTS).path))
            props = {
                "email_id": send.email_id,
                "campaign_name": send.name,
                "link_url": f"{_BASE_URL}{path}",
            }
            self._track("Email Link Clicked", props, server=True)
            self._session(self.t + rng.randint(2, 20) * 1000, f"email:{arg}:{path}")
        elif kind == "renew":
            self.renewals += 1
            props = {
                "subscription_id": self.subscription_id,
                "plan_id": _MEMBERSHIP.product_id,
                "revenue": _money(_MEMBERSHIP.price_cents),
                "currency": plan.currency if plan.currency in ("USD", "EUR", "GBP", "CAD") else "USD",
                "billing_interval": "month",
                "renewal_number": self.renewals,
            }
            self._track("Subscription Renewed", props, server=True)
            self._push(at + 30 * _DAY_MS, "renew")

    def _next_session(self) -> tuple[int, str]:
        plan, rng, world = self.plan, self.rng, self.world
        remaining = plan.budget - self.count
        left = world.end_ms - self.t
        if left <= 3 * _HOUR_MS:
            return self.t + rng.randint(2, 15) * _MIN_MS, "normal"
        per_session = PERSONA_PARAMETERS[plan.persona].session_events
        if self.sessions >= 3:  # pace by what this buyer's sessions actually produce
            per_session = max(1.0, self.count / self.sessions)
        expected_sessions = max(1.0, remaining / per_session)
        mean_gap = self._gap(left / (expected_sessions + 0.5), left)
        cand = self.t + max(20 * _MIN_MS, int(rng.expovariate(1 / mean_gap)))
        special = self._special_session(cand, mean_gap, expected_sessions)
        if special is not None:
            return special
        if cand >= world.end_ms - _HOUR_MS:
            return self.t + int(rng.uniform(0.05, 0.5) * left), "normal"
        return self._diurnal(cand), "normal"

    def _diurnal(self, cand: int) -> int:
        zone = self.plan.zone
        local = _local_ms(zone, cand)
        day = local - local % _DAY_MS
        hour = self.rng.choices(range(24), PERSONA_PARAMETERS[self.plan.persona].hours)[0]
        at = _utc_from_local(zone, day + hour * _HOUR_MS + self.rng.randint(0, 3599) * 1000)
        if at <= self.t + 15 * _MIN_MS:
            at += _DAY_MS
        return at if at < self.world.end_ms - _HOUR_MS else cand

    def _session(self, at: int, reason: str) -> None:
        plan, rng = self.plan, self.rng
        self.t = max(at, self.t + 30_000)
        self.sessions += 1
        n = len(plan.devices)
        if n > 1 and (reason != "first" or rng.random() < 0.2):
            self.dev_idx = rng.choices(range(n), (3, 2, 1)[:n])[0]
            self.device = plan.devices[self.dev_idx]
        if self.device.app and reason in ("first", "gift", "promo", "drop"):
            self.dev_idx, self.device = 0, plan.devices[0]
        self.page, self.campaign = None, None
        if self.identified and self.dev_idx not in self.logged_in:
            self._login()
        self._behave(reason)
