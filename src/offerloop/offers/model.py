"""The offers catalog as the rest of offerloop uses it: offers, coupons and the catalog, frozen.

A catalog file is read into these by :mod:`offerloop.offers.schema`; they can also be built in code.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import Decimal
from types import MappingProxyType
from typing import Any, Final, Literal, TypeAlias

from offerloop.core.money import Money

OfferKind: TypeAlias = Literal["product", "micro_offer", "subscription", "bundle", "drop", "tier"]
ComponentKind: TypeAlias = Literal[
    "assessment", "module", "community_space", "certification", "coaching_quota", "download", "deliverable"
]
Interval: TypeAlias = Literal["month", "year"]
DropState: TypeAlias = Literal["draft", "scheduled", "live", "closed"]

OFFER_KINDS: Final[tuple[str, ...]] = ("product", "micro_offer", "subscription", "bundle", "drop", "tier")
COMPONENT_KINDS: Final[tuple[str, ...]] = (
    "assessment",
    "module",
    "community_space",
    "certification",
    "coaching_quota",
    "download",
    "deliverable",
)
INTERVALS: Final[tuple[str, ...]] = ("month", "year")
RECURRING_KINDS: Final[tuple[str, ...]] = ("subscription", "tier")
# A bundle is sold once at one price: recurring offers and limited drops (inventory) stay out of it.
BUNDLE_MEMBER_KINDS: Final[tuple[str, ...]] = ("product", "micro_offer")
DROP_STATES: Final[tuple[str, ...]] = ("draft", "scheduled", "live", "closed")
MAX_TRIAL_DAYS: Final = 365


@dataclass(frozen=True, slots=True)
class Component:
    """Something an offer grants: an assessment, a module, a community space, a download, ..."""

    component: ComponentKind
    ref: str
    quantity: int | None = None
    access_days: int | None = None  # None: for as long as the offer grants access

    def to_dict(self) -> dict[str, Any]:
        return {
            "component": self.component,
            "ref": self.ref,
            "quantity": self.quantity,
            "access_days": self.access_days,
        }


def _frozen_map(value: Mapping[str, Any]) -> Mapping[str, Any]:
    return MappingProxyType(dict(value))


@dataclass(frozen=True, slots=True)
class Variant:
    """One way of presenting an offer (its copy, a price point, extra components) that the decision engine
    chooses per buyer. Unset fields fall back to the offer's; ``bundle`` is granted on top of the offer's
    components."""

    key: str
    title: str | None = None
    description: str | None = None
    prices: Mapping[str, Money] = field(default_factory=dict, hash=False)  # empty: the offer's prices
    bundle: tuple[Component, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "prices", _frozen_map(self.prices))

    def to_dict(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "title": self.title,
            "description": self.description,
            "prices": {c: m.amount for c, m in sorted(self.prices.items())},
            "bundle": [c.to_dict() for c in self.bundle],
        }


@dataclass(frozen=True, slots=True)
class Offer:
    """One sellable offer. Kind-specific fields are None (or empty) for the other kinds."""

    key: str
    kind: OfferKind
    title: str
    prices: Mapping[str, Money] = field(default_factory=dict, hash=False)  # currency -> price
    description: str | None = None
    components: tuple[Component, ...] = ()
    persona_fit: tuple[str, ...] = ()
    tags: tuple[str, ...] = ()
    order_bumps: tuple[str, ...] = ()
    upsells: tuple[str, ...] = ()
    active: bool = True
    # micro_offer
    deliverable_policy: str | None = None
    turnaround_hours: int | None = None
    daily_capacity: int | None = None
    # subscription and tier
    interval: Interval | None = None
    trial_days: int = 0
    quotas: Mapping[str, int] = field(default_factory=dict, hash=False)  # name -> uses per period
    # bundle
    includes: tuple[str, ...] = ()
    # drop
    inventory: int | None = None
    opens_at: datetime | None = None
    closes_at: datetime | None = None
    per_buyer_limit: int | None = None
    requires_signoff: bool = False  # always True for drops read from a catalog file
    exclusive_to: tuple[str, ...] = ()  # tier keys whose members alone may buy this drop
    variants: tuple[Variant, ...] = ()  # chosen per buyer by the decision engine; none: the offer as is
    line: int | None = field(default=None, compare=False)  # where the offer starts in its file

    def __post_init__(self) -> None:
        # Read-only views: a frozen offer must not change through its mappings either.
        object.__setattr__(self, "prices", _frozen_map(self.prices))
        object.__setattr__(self, "quotas", _frozen_map(self.quotas))

    @property
    def recurring(self) -> bool:
        return self.kind in RECURRING_KINDS

    @property
    def currencies(self) -> tuple[str, ...]:
        return tuple(sorted(self.prices))

    def price(self, currency: str) -> Money | None:
        """The price in ``currency`` (per interval for recurring offers), or None when not offered."""
        return self.prices.get(currency.upper())

    def variant(self, key: str) -> Variant | None:
        return next((v for v in self.variants if v.key == key), None)

    def price_of_variant(self, variant: Variant | None, currency: str) -> Money | None:
        """What ``variant`` (None: the offer itself) costs in ``currency``: its own price point, else the offer's."""
        if variant is not None and variant.prices:
            return variant.prices.get(currency.upper())
        return self.price(currency)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON data (datetimes as ISO 8601 UTC); ``variants`` only when the offer has some."""
        out = self._plain()
        if self.variants:
            out["variants"] = [v.to_dict() for v in self.variants]
        return out

    def _plain(self) -> dict[str, Any]:
        return {
            "key": self.key,
            "kind": self.kind,
            "title": self.title,
            "description": self.description,
            "prices": {c: m.amount for c, m in sorted(self.prices.items())},
            "components": [c.to_dict() for c in self.components],
            "persona_fit": list(self.persona_fit),
            "tags": list(self.tags),
            "order_bumps": list(self.order_bumps),
            "upsells": list(self.upsells),
            "active": self.active,
            "deliverable_policy": self.deliverable_policy,
            "turnaround_hours": self.turnaround_hours,
            "daily_capacity": self.daily_capacity,
            "interval": self.interval,
            "trial_days": self.trial_days,
            "quotas": dict(sorted(self.quotas.items())),
            "includes": list(self.includes),
            "inventory": self.inventory,
            "opens_at": iso(self.opens_at),
            "closes_at": iso(self.closes_at),
            "per_buyer_limit": self.per_buyer_limit,
            "requires_signoff": self.requires_signoff,
            "exclusive_to": list(self.exclusive_to),
        }


@dataclass(frozen=True, slots=True)
class Coupon:
    """A discount code: a percentage, or a fixed amount per currency."""

    code: str
    percent_off: Decimal | None = None
    amount_off: Mapping[str, Money] = field(default_factory=dict, hash=False)
    applies_to: tuple[str, ...] | None = None  # offer keys; None: every offer
    max_redemptions: int | None = None
    expires_at: datetime | None = None
    once_per_buyer: bool = False
    line: int | None = field(default=None, compare=False)

    def __post_init__(self) -> None:
        object.__setattr__(self, "amount_off", _frozen_map(self.amount_off))

    def applies(self, offer_key: str) -> bool:
        return self.applies_to is None or offer_key in self.applies_to

    def expired(self, now: datetime) -> bool:
        """True from ``expires_at`` on (the expiry instant itself is already too late)."""
        return self.expires_at is not None and utc(now) >= self.expires_at


@dataclass(frozen=True, slots=True)
class Catalog:
    offers: tuple[Offer, ...]
    coupons: tuple[Coupon, ...] = ()
    version: str = ""  # first 16 hex characters of the sha256 of the parsed document
    path: str | None = field(default=None, compare=False)

    def offer(self, key: str) -> Offer | None:
        return next((o for o in self.offers if o.key == key), None)

    def coupon(self, code: str) -> Coupon | None:
        """The coupon with ``code`` (buyers type codes in any case)."""
        wanted = code.strip().upper()
        return next((c for c in self.coupons if c.code == wanted), None)

    def exclusive_drops(self, tier_key: str) -> tuple[Offer, ...]:
        """The drops that only members of tier ``tier_key`` may buy."""
        return tuple(o for o in self.offers if o.kind == "drop" and tier_key in o.exclusive_to)


def utc(moment: datetime) -> datetime:
    """``moment`` in UTC; a naive datetime is refused (whose midnight?)."""
    if moment.tzinfo is None:
        raise ValueError(f"expected a timezone-aware datetime, got {moment!r}")
    return moment.astimezone(UTC)


def iso(moment: datetime | None) -> str | None:
    """ISO 8601 in UTC with a ``Z``, or None."""
    return None if moment is None else moment.astimezone(UTC).isoformat().replace("+00:00", "Z")
