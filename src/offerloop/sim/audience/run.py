"""One buyer's message generator: plumbing, identity and scheduling shared by every persona's behaviour."""

from __future__ import annotations

import heapq
import random
import time
from typing import Any, NamedTuple

from offerloop.sim.audience.catalog import _Product
from offerloop.sim.audience.clock import _HOUR_MS
from offerloop.sim.audience.parameters import _LOYALIST, PERSONA_PARAMETERS
from offerloop.sim.audience.population import _Plan
from offerloop.sim.audience.world import _Drop, _Promo, _World


class _Rec(NamedTuple):
    """One message before it is rendered: everything ``Audience._message`` needs, nothing more.

    ``page``/``campaign``/``fields`` are never mutated after the record is made, so records can be
    rendered again, identically, for duplicate re-sends.
    """

    t: int  # true event time (UTC ms); the stream is ordered by it
    buyer: int
    seq: int  # per-buyer message number: with the seed it determines messageId and send delay
    kind: str
    fields: dict[str, Any]
    device: int  # index into the plan's devices; -1 = server-side (no anonymousId, no device context)
    identified: bool
    page: dict[str, str] | None
    campaign: dict[str, str] | None
    context_traits: dict[str, Any] | None


class _Exhausted(Exception):
    """The buyer's event budget is used up."""


class _RunState:
    """One buyer's state while its messages are generated, and the plumbing every behaviour uses."""

    __slots__ = (
        "assessed",
        "bought_drops",
        "campaign",
        "count",
        "dev_idx",
        "device",
        "drop_cursor",
        "grouped",
        "identified",
        "logged_in",
        "out",
        "owned",
        "page",
        "pending",
        "pending_seq",
        "plan",
        "pre_gift_sessions",
        "profile_update_due",
        "progress",
        "purchased",
        "quizzed",
        "renewals",
        "rng",
        "sessions",
        "subscribed",
        "subscription_id",
        "t",
        "used_promos",
        "welcome_used",
        "world",
    )

    def __init__(self, world: _World, plan: _Plan) -> None:
        self.world = world
        self.plan = plan
        self.rng = random.Random(f"{world.seed_key}:buyer:{plan.index}")
        self.t = plan.first_seen_ms
        self.count = 0
        self.out: list[_Rec] = []
        self.identified = False
        self.logged_in: set[int] = set()
        self.dev_idx = 0
        self.device = plan.devices[0]
        self.page: dict[str, str] | None = None
        self.campaign: dict[str, str] | None = None
        self.pending: list[tuple[int, int, str, int]] = []
        self.pending_seq = 0
        self.sessions = 0
        self.owned: list[_Product] = []
        self.progress: dict[str, int] = {}
        self.bought_drops: set[str] = set()
        self.used_promos: set[str] = set()
        self.subscribed = False
        self.subscription_id = ""
        self.renewals = 0
        self.purchased = False
        self.pre_gift_sessions = 0
        self.quizzed = False
        self.assessed = False
        self.welcome_used = False
        self.profile_update_due = False
        self.grouped = False
        self.drop_cursor = 0

    # ---- plumbing -------------------------------------------------------------------------------

    def _push(self, at: int, kind: str, arg: int = 0) -> None:
        if at < self.world.end_ms:
            self.pending_seq += 1
            heapq.heappush(self.pending, (at, self.pending_seq, kind, arg))

    def _tick(self, lo_s: float, hi_s: float) -> None:
        self.t += int((lo_s + (hi_s - lo_s) * self.rng.random()) * 1000)

    def _id(self, prefix: str) -> str:
        return f"{prefix}_{self.rng.getrandbits(48):012x}"

    def _emit(
        self,
        kind: str,
        fields: dict[str, Any],
        *,
        server: bool = False,
        context_traits: dict[str, Any] | None = None,
    ) -> None:
        """Record one message (as a light ``_Rec``; ``Audience._message`` builds the dict)."""
        plan = self.plan
        if self.count >= plan.budget:
            raise _Exhausted
        if kind != "identify" and not self.identified and self.count == plan.identify_at:
            self._identify()
            if self.count >= plan.budget:
                raise _Exhausted
        self.out.append(
            _Rec(
                self.t,
                plan.index,
                self.count,
                kind,
                fields,
                -1 if server else self.dev_idx,
                self.identified,
                self.page,
                self.campaign,
                context_traits,
            )
        )
        self.count += 1
        self.t += 200 + int(self.rng.random() * 2300)

    def _track(self, event: str, props: dict[str, Any], *, server: bool = False) -> None:
        self._emit("track", {"event": event, "properties": props}, server=server)

    def _room(self, reserve: int) -> bool:
        return self.count + reserve < self.plan.budget

    # ---- identity -------------------------------------------------------------------------------

    def _messy_email(self) -> str:
        email = self.plan.email
        r = self.rng.random()
        if r < 0.72:
            return email
        local, _, domain = email.partition("@")
        pretty = (
            ".".join(part[:1].upper() + part[1:] for part in local.split(".")) + "@" + domain.capitalize()
        )
        if r < 0.86:
            return pretty
        return self.rng.choice(("  ", " ", "\t")) + pretty + self.rng.choice((" ", "  ", "\n"))

    def _messy_phone(self) -> str:
        phone = self.plan.phone or ""
        if phone.startswith("+44"):
            return self.rng.choice((phone, "07700 " + phone[-6:], "+44 7700 " + phone[-6:]))
        area, line = phone[2:5], phone[5:]
        head, tail = line[:3], line[3:]
        return self.rng.choice(
            (phone, phone, f"({area}) {head}-{tail}", f"{area}-{head}-{tail}", f"{area}.{head}.{tail} ",
             f"+1 {area} {head} {tail}", f"1-{area}-{head}-{tail}")
        )  # fmt: skip

    def _traits(self) -> dict[str, Any]:
        plan, rng = self.plan, self.rng
        traits: dict[str, Any] = {"email": self._messy_email()}
        if rng.random() < 0.8:
            traits["name"] = f"{plan.first_name} {plan.last_name}"
        if rng.random() < 0.6:
            traits["first_name"] = plan.first_name
        if plan.phone is not None and rng.random() < 0.8:
            traits["phone"] = self._messy_phone()
        if plan.tiktok_id is not None:
            traits["tiktok_id"] = plan.tiktok_id
        if plan.instagram_id is not None:
            traits["instagram_id"] = plan.instagram_id
        if self.subscribed or plan.persona == _LOYALIST:
            traits["plan"] = "inner_circle"
        elif rng.random() < 0.5:
            traits["plan"] = "free"
        return traits

    def _identify(self) -> None:
        plan, rng = self.plan, self.rng
        self.identified = True
        self.logged_in.add(self.dev_idx)
        r = rng.random()
        traits = self._traits()
        if r < 0.05:
            self._emit("identify", {}, context_traits=traits)
        elif r < 0.9:
            self._emit("identify", {"traits": traits})
        else:
            self._emit("identify", {})
            self.profile_update_due = True
        if plan.subscriber and self.world.sends:
            self._schedule_send(self.t)
        if self.subscribed and plan.existing:  # only loyalists subscribe
            self._push(max(plan.renew_ms, self.t + _HOUR_MS), "renew")
        self._tick(1, 15)
        if not self.device.app and rng.random() < 0.12:
            self._emit("alias", {"previousId": self.device.anonymous_id})
        if PERSONA_PARAMETERS[plan.persona].joins_groups and rng.random() < 0.3:
            self._group()

    def _group(self) -> None:
        if self.grouped:
            return
        self.grouped = True
        rng = self.rng
        if rng.random() < 0.5:
            month = time.strftime("%Y_%m", time.gmtime(self.t // 1000))
            gid, traits = f"cohort_{month}", {"name": f"Launch Lab cohort {month}", "type": "cohort"}
        else:
            gid, traits = "community_inner_circle", {"name": "Inner Circle", "type": "community"}
        self._emit("group", {"groupId": gid, "traits": traits})

    def _login(self) -> None:
        """First use of another device after identifying: the buyer logs in there."""
        self.logged_in.add(self.dev_idx)
        if self.profile_update_due:
            self.profile_update_due = False
            self._emit("identify", {"traits": self._traits()})
        else:
            self._emit("identify", {})

    def _maybe_identify(self) -> None:
        if self.plan.will_identify and not self.identified:
            self._identify()

    # ---- scheduling -----------------------------------------------------------------------------

    def _schedule_send(self, after_ms: int) -> None:
        for i, send in enumerate(self.world.sends):
            if send.sent_ms > after_ms:
                self._push(send.sent_ms, "send", i)
                return

    def _promo_at(self, at: int) -> _Promo | None:
        for p in self.world.promos:
            if p.starts_ms <= at < p.ends_ms:
                return p
        return None

    def _open_drops(self) -> list[_Drop]:
        return [d for d in self.world.drops if d.opens_ms <= self.t < d.closes_ms]
