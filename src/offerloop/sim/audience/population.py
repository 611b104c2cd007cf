"""Who the buyers are: one plan per buyer (persona, channel, devices, identities, timing, event budget)."""

from __future__ import annotations

import random
from collections.abc import Sequence
from dataclasses import dataclass

from offerloop.sim.audience.catalog import (
    _AREA_CODES,
    _BROWSER_UAS,
    _EMAIL_DOMAINS,
    _FIRST_NAMES,
    _LAST_NAMES,
    _UA_APP,
    _UA_INSTAGRAM_ANDROID,
    _UA_INSTAGRAM_IOS,
    _UA_TIKTOK_ANDROID,
    _UA_TIKTOK_IOS,
)
from offerloop.sim.audience.clock import _DAY_MS, _HOUR_MS, _MIN_MS, _weekend_time
from offerloop.sim.audience.ids import _rng_uuid
from offerloop.sim.audience.parameters import (
    _CHANNEL_WEIGHTS,
    _GIFTING,
    _PERSONA_GIVEN_CHANNEL,
    _WEEKEND,
    _ZONES,
    CHANNELS,
    PERSONA_PARAMETERS,
    PERSONAS,
)
from offerloop.sim.audience.world import _gift_occasions, _World


@dataclass(frozen=True, slots=True)
class SyntheticBuyer:
    """A synthetic person: hidden persona plus the identities it uses (ground truth)."""

    key: str  # stable internal key, e.g. "b00042"
    persona: str
    user_id: str | None  # None for visitors who never identify
    email: str | None  # canonical (lower-case, stripped); messages may carry messy variants
    anonymous_ids: tuple[str, ...]  # 1-3 devices
    channel: str  # acquisition channel
    tiktok_id: str | None
    instagram_id: str | None


@dataclass(frozen=True, slots=True)
class _Device:
    anonymous_id: str
    user_agent: str
    ip: str
    app: bool
    skew_ms: int  # client clock error: timestamp and sentAt are both off by this much


@dataclass(slots=True)
class _Plan:
    index: int
    persona: str
    channel: str
    zone: str
    locale: str
    currency: str
    devices: tuple[_Device, ...]
    first_seen_ms: int
    weight: float
    will_identify: bool
    existing: bool
    subscriber: bool
    user_id: str
    first_name: str
    last_name: str
    email: str
    phone: str | None
    tiktok_id: str | None
    instagram_id: str | None
    gift_occasion: str
    gift_ms: int
    renew_ms: int
    budget: int = 0
    identify_at: int = -1  # event index by which identify must have happened; -1: never identifies
    buyer: SyntheticBuyer | None = None


def _make_devices(rng: random.Random, persona: str, channel: str) -> tuple[_Device, ...]:
    n = rng.choices((1, 2, 3), (0.55, 0.33, 0.12))[0]
    devices: list[_Device] = []
    for i in range(n):
        app = False
        if i == 0 and channel == "tiktok" and rng.random() < 0.55:
            ua = rng.choice((_UA_TIKTOK_IOS, _UA_TIKTOK_IOS, _UA_TIKTOK_ANDROID))
        elif i == 0 and channel == "instagram" and rng.random() < 0.55:
            ua = rng.choice((_UA_INSTAGRAM_IOS, _UA_INSTAGRAM_IOS, _UA_INSTAGRAM_ANDROID))
        elif i > 0 and PERSONA_PARAMETERS[persona].uses_app and rng.random() < 0.35:
            ua, app = _UA_APP, True
        else:
            ua = rng.choices([u for u, _ in _BROWSER_UAS], [w for _, w in _BROWSER_UAS])[0]
        net = "192.0.2" if rng.random() < 0.5 else "198.51.100"
        ip = f"{net}.{rng.randint(1, 254)}"
        skew = 0
        if rng.random() < 0.08:
            skew = rng.choice((-1, 1)) * rng.choice(
                (rng.randint(2, 59) * _MIN_MS, rng.randint(1, 6) * _HOUR_MS + rng.randint(0, 59) * _MIN_MS)
            )
        devices.append(_Device(_rng_uuid(rng), ua, ip, app, skew))
    return tuple(devices)


def _make_email(rng: random.Random, first: str, last: str) -> str:
    f = first.lower()
    ln = "".join(ch for ch in last.lower() if ch.isalpha()).replace("ü", "u")
    local = rng.choice(
        (
            f"{f}.{ln}",
            f"{f}{ln}",
            f"{f[0]}{ln}",
            f"{f}.{ln}{rng.randint(1, 99)}",
            f"{f}_{rng.randint(80, 2009)}",
        )
    )
    return f"{local}@{rng.choice(_EMAIL_DOMAINS)}"


def _allocate(total: int, plans: Sequence[_Plan]) -> list[int]:
    """Split ``total`` events over buyers: per-persona minimum first, the rest in proportion to weight."""
    n = len(plans)
    if n == 0:
        return []
    mins = [PERSONA_PARAMETERS[p.persona].min_budget for p in plans]
    need = sum(mins)
    if need > total:  # tiny stream: scale the minimums down (some buyers may get no events)
        mins = [m * total // need for m in mins]
        short = total - sum(mins)
        for i in range(short):
            mins[i % n] += 1
        return mins
    rest = total - need
    weight_sum = sum(p.weight for p in plans)
    shares = [rest * p.weight / weight_sum for p in plans]
    budgets = [m + int(s) for m, s in zip(mins, shares, strict=True)]
    leftover = total - sum(budgets)
    order = sorted(range(n), key=lambda i: (-(shares[i] - int(shares[i])), i))
    for i in order[:leftover]:
        budgets[i] += 1
    return budgets


def _make_plans(rng: random.Random, world: _World, buyers: int) -> list[_Plan]:
    """One plan per buyer (budgets come later, from ``_allocate``)."""
    span = world.end_ms - world.start_ms
    # Exact channel mix (largest remainder), then shuffled: the mix is a property of the audience.
    quotas = [buyers * w for w in _CHANNEL_WEIGHTS]
    counts = [int(q) for q in quotas]
    for i in sorted(range(len(CHANNELS)), key=lambda i: (-(quotas[i] - counts[i]), i))[
        : buyers - sum(counts)
    ]:
        counts[i] += 1
    channels = [c for c, k in zip(CHANNELS, counts, strict=True) for _ in range(k)]
    rng.shuffle(channels)
    user_numbers = rng.sample(range(1, max(1_000_000, 10 * buyers)), buyers)
    occasions = _gift_occasions(world.start_ms, world.end_ms)
    zone_weights = [z.weight for z in _ZONES]
    plans: list[_Plan] = []
    for i, channel in enumerate(channels):
        persona = rng.choices(PERSONAS, _PERSONA_GIVEN_CHANNEL[channel])[0]
        zone, locales, currency, _ = rng.choices(_ZONES, zone_weights)[0]
        params = PERSONA_PARAMETERS[persona]
        identify_p = params.identify_p
        if channel == "newsletter":
            identify_p = min(0.98, identify_p + 0.15)
        existing = rng.random() < params.existing_p
        will_identify = existing or rng.random() < identify_p
        first = rng.choice(_FIRST_NAMES)
        last = rng.choice(_LAST_NAMES)
        phone: str | None = None
        if rng.random() < 0.35:
            if rng.random() < 0.85:
                phone = f"+1{rng.choice(_AREA_CODES)}55501{rng.randint(0, 99):02d}"
            else:
                phone = f"+447700900{rng.randint(100, 999)}"
        tiktok_p = 0.55 if channel == "tiktok" else 0.12
        insta_p = 0.55 if channel == "instagram" else 0.15
        tiktok_id = f"7{rng.randrange(10**17, 10**18)}" if rng.random() < tiktok_p else None
        instagram_id = f"1784{rng.randrange(10**12, 10**13)}" if rng.random() < insta_p else None
        # Gift timing: the two weeks before a holiday in (or just after) the window.
        gift_occasion, gift_ms = "birthday", world.start_ms + int(rng.random() * span)
        if occasions:
            gift_occasion, holiday, _ = rng.choices(occasions, [o[2] for o in occasions])[0]
            lo = max(world.start_ms + _DAY_MS, holiday - 14 * _DAY_MS)
            hi = min(world.end_ms - _DAY_MS, holiday - _DAY_MS)
            gift_ms = lo + int(rng.random() * max(_HOUR_MS, hi - lo))
        if persona == _GIFTING:
            first_seen = max(
                world.start_ms, gift_ms - int(rng.choice((0.0, 0.0, 1.0)) * rng.random() * 9 * _DAY_MS)
            )
        elif existing:
            first_seen = world.start_ms + int(rng.random() * 3 * _DAY_MS)
        else:
            first_seen = world.start_ms + int(rng.random() ** 1.3 * 0.85 * span)
        if persona == _WEEKEND:  # collectors discover the shop on a weekend, too
            first_seen = _weekend_time(rng, zone, first_seen, world.end_ms)
        remaining_frac = (world.end_ms - first_seen) / span
        weight = params.activity * rng.lognormvariate(0.0, params.activity_sigma)
        weight *= 1.3 if will_identify else 0.7
        if persona != _GIFTING:
            weight *= 0.3 + 0.7 * remaining_frac
        subscriber = channel == "newsletter" or rng.random() < params.subscriber_p
        plans.append(
            _Plan(
                index=i,
                persona=persona,
                channel=channel,
                zone=zone,
                locale=rng.choice(locales),
                currency=currency if rng.random() < 0.6 else "USD",
                devices=_make_devices(rng, persona, channel),
                first_seen_ms=first_seen,
                weight=weight,
                will_identify=will_identify,
                existing=existing,
                subscriber=subscriber,
                user_id=f"u_{user_numbers[i]:06d}",
                first_name=first,
                last_name=last,
                email=_make_email(rng, first, last),
                phone=phone,
                tiktok_id=tiktok_id,
                instagram_id=instagram_id,
                gift_occasion=gift_occasion,
                gift_ms=gift_ms,
                renew_ms=world.start_ms + int(rng.random() * 30 * _DAY_MS),
            )
        )
    # Unique emails: suffix clashes deterministically.
    seen: set[str] = set()
    for plan in plans:
        if plan.email in seen:
            local, _, domain = plan.email.partition("@")
            plan.email = f"{local}.{plan.index}@{domain}"
        seen.add(plan.email)
    return plans


def _finish_plan(rng: random.Random, plan: _Plan, budget: int, n_plans: int) -> None:
    """Set the plan's budget, when it identifies, and its ground-truth buyer."""
    plan.budget = budget
    persona = plan.persona
    if plan.will_identify and budget >= 2:
        rule, lo, hi = PERSONA_PARAMETERS[persona].identify_at
        if plan.existing:
            at = 0
        elif rule == "events":
            at = rng.randint(int(lo), int(hi))
        elif rule == "last":
            at = budget - 1
        else:  # "share"
            at = int(budget * rng.uniform(lo, hi))
        plan.identify_at = min(budget - 1, max(0 if plan.existing else 1, at))
    else:
        plan.will_identify = False
        plan.identify_at = -1
        plan.existing = False
    identified = plan.will_identify
    width = max(5, len(str(n_plans - 1)))
    plan.buyer = SyntheticBuyer(
        key=f"b{plan.index:0{width}d}",
        persona=persona,
        user_id=plan.user_id if identified else None,
        email=plan.email if identified else None,
        anonymous_ids=tuple(d.anonymous_id for d in plan.devices),
        channel=plan.channel,
        tiktok_id=plan.tiktok_id if identified else None,
        instagram_id=plan.instagram_id if identified else None,
    )
