"""Quotes: what a checkout charges for an offer, its order bumps and a coupon."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal

from offerloop.core.money import Money, currency_code, total
from offerloop.offers.exceptions import PricingError
from offerloop.offers.model import RECURRING_KINDS, Catalog, Coupon, Interval, Offer, Variant, iso, utc


@dataclass(frozen=True, slots=True)
class QuoteLine:
    offer_key: str
    title: str
    unit_amount: Money
    quantity: int
    subtotal: Money  # unit_amount x quantity
    discount: Money  # this line's share of the coupon
    total: Money  # subtotal - discount
    role: Literal["offer", "bump"] = "offer"
    interval: Interval | None = None  # recurring offers: the amount is per interval
    variant: str | None = None  # the offer's variant this line sells (its price point and bundle)

    def to_dict(self) -> dict[str, Any]:
        out = {
            "offer_key": self.offer_key,
            "title": self.title,
            "role": self.role,
            "unit_amount": self.unit_amount.amount,
            "quantity": self.quantity,
            "subtotal": self.subtotal.amount,
            "discount": self.discount.amount,
            "total": self.total.amount,
            "interval": self.interval,
        }
        if self.variant is not None:
            out["variant"] = self.variant
        return out


@dataclass(frozen=True, slots=True)
class Quote:
    """What a checkout charges: the offer, its bumps, the coupon's discount spread over eligible lines."""

    offer_key: str
    currency: str
    lines: tuple[QuoteLine, ...]
    subtotal: Money
    discount: Money
    total: Money
    coupon: str | None = None
    catalog_version: str = ""

    def to_dict(self) -> dict[str, Any]:
        return {
            "offer_key": self.offer_key,
            "currency": self.currency,
            "lines": [line.to_dict() for line in self.lines],
            "subtotal": self.subtotal.amount,
            "discount": self.discount.amount,
            "total": self.total.amount,
            "coupon": self.coupon,
            "catalog_version": self.catalog_version,
        }


def _priced(offer: Offer, currency: str, variant: Variant | None = None) -> Money:
    price = offer.price_of_variant(variant, currency)
    if price is None:
        offered = ", ".join(offer.currencies)
        raise PricingError(
            f"{offer.key!r} is not offered in {currency} (offered in {offered})", code="currency_not_offered"
        )
    return price


def _offer_or_error(catalog: Catalog, key: str) -> Offer:
    offer = catalog.offer(key)
    if offer is None:
        raise PricingError(f"no offer {key!r} in the catalog", code="unknown_offer")
    if not offer.active:
        raise PricingError(f"offer {key!r} is not active", code="offer_inactive")
    return offer


def price_of(
    catalog: Catalog,
    offer_key: str,
    currency: str,
    *,
    coupon: str | Coupon | None = None,
    bumps: Sequence[str] = (),
    now: datetime,
    quantity: int = 1,
    coupon_redemptions: int = 0,
    buyer_redeemed_coupon: bool = False,
    variant: str | None = None,
) -> Quote:
    """Quote ``offer_key`` in ``currency`` with order ``bumps`` (one each) and an optional coupon.

    The coupon's discount is computed once on the eligible lines' subtotal (a percentage rounded half
    to even on the minor unit; a fixed amount capped at that subtotal), then allocated across those
    lines in proportion to their subtotals, so line discounts always add up to the quote's discount.
    For a recurring offer the quote is the first charge (the coupon applies to it only).

    ``coupon_redemptions`` (redemptions so far) and ``buyer_redeemed_coupon`` come from the caller's
    records: they check ``max_redemptions`` and ``once_per_buyer``. ``variant`` names the offer's variant
    sold (its price point, when it has one, is the unit price). Drop availability (sign-off,
    window, inventory) is not checked here: see :func:`drop_state`.

    Raises :class:`PricingError` with code ``unknown_offer``, ``offer_inactive``, ``invalid_currency``,
    ``currency_not_offered``, ``invalid_quantity``, ``per_buyer_limit``, ``bump_not_offered``,
    ``duplicate_bump``, ``unknown_variant``, ``unknown_coupon``, ``coupon_expired``, ``coupon_exhausted``,
    ``coupon_already_used``, ``coupon_not_applicable`` or ``coupon_currency_not_offered``.
    """
    now = utc(now)
    try:
        cur = currency_code(currency)
    except ValueError:
        raise PricingError(f"not an ISO 4217 currency code: {currency!r}", code="invalid_currency") from None
    offer = _offer_or_error(catalog, offer_key)
    if isinstance(quantity, bool) or not isinstance(quantity, int) or quantity < 1:
        raise PricingError(f"quantity must be a positive integer, got {quantity!r}", code="invalid_quantity")
    if quantity > 1 and offer.kind in (*RECURRING_KINDS, "bundle"):
        raise PricingError(
            f"a {offer.kind} is bought one at a time, got quantity {quantity}", code="invalid_quantity"
        )
    if offer.kind == "drop" and offer.per_buyer_limit is not None and quantity > offer.per_buyer_limit:
        raise PricingError(
            f"{offer.key!r} is limited to {offer.per_buyer_limit} per buyer, got quantity {quantity}",
            code="per_buyer_limit",
        )

    chosen = None
    if variant is not None:
        chosen = offer.variant(variant)
        if chosen is None:
            known = ", ".join(v.key for v in offer.variants) or "none"
            raise PricingError(
                f"{offer.key!r} has no variant {variant[:80]!r} (variants: {known})", code="unknown_variant"
            )
    priced: list[tuple[Offer, Money, int, Literal["offer", "bump"]]] = [
        (offer, _priced(offer, cur, chosen), quantity, "offer")
    ]
    for bump_key in bumps:
        if bump_key not in offer.order_bumps:
            allowed = ", ".join(offer.order_bumps) or "none"
            raise PricingError(
                f"{bump_key!r} is not an order bump of {offer.key!r} (bumps: {allowed})",
                code="bump_not_offered",
            )
        if any(item[0].key == bump_key for item in priced):
            raise PricingError(f"{bump_key!r} is already in the order", code="duplicate_bump")
        bump = _offer_or_error(catalog, bump_key)
        priced.append((bump, _priced(bump, cur), 1, "bump"))

    subtotals = [unit.times(qty) for _, unit, qty, _ in priced]
    discounts = [Money.zero(cur) for _ in priced]
    code: str | None = None
    if coupon is not None:
        found = coupon if isinstance(coupon, Coupon) else catalog.coupon(coupon)
        if found is None:
            raise PricingError(f"no coupon {coupon!r}", code="unknown_coupon")
        code = found.code
        discounts = _discounts(
            found,
            [item[0].key for item in priced],
            subtotals,
            cur,
            now,
            coupon_redemptions,
            buyer_redeemed_coupon,
        )

    lines = tuple(
        QuoteLine(
            offer_key=item.key,
            title=item.title,
            unit_amount=unit,
            quantity=qty,
            subtotal=sub,
            discount=off,
            total=sub - off,
            role=role,
            interval=item.interval,
            variant=variant if role == "offer" else None,
        )
        for (item, unit, qty, role), sub, off in zip(priced, subtotals, discounts, strict=True)
    )
    subtotal = total(subtotals, cur)
    discount = total(discounts, cur)
    return Quote(
        offer_key=offer.key,
        currency=cur,
        lines=lines,
        subtotal=subtotal,
        discount=discount,
        total=subtotal - discount,
        coupon=code,
        catalog_version=catalog.version,
    )


def _discounts(
    coupon: Coupon,
    keys: Sequence[str],
    subtotals: Sequence[Money],
    currency: str,
    now: datetime,
    redemptions: int,
    buyer_redeemed: bool,
) -> list[Money]:
    """Each line's share of the coupon's discount (zero for lines it does not apply to)."""
    if coupon.expired(now):
        raise PricingError(f"coupon {coupon.code} expired at {iso(coupon.expires_at)}", code="coupon_expired")
    if coupon.max_redemptions is not None and redemptions >= coupon.max_redemptions:
        raise PricingError(
            f"coupon {coupon.code} has been redeemed {coupon.max_redemptions} times, its limit",
            code="coupon_exhausted",
        )
    if coupon.once_per_buyer and buyer_redeemed:
        raise PricingError(f"coupon {coupon.code} can be used once per buyer", code="coupon_already_used")
    eligible = [i for i, key in enumerate(keys) if coupon.applies(key)]
    if not eligible:
        raise PricingError(
            f"coupon {coupon.code} does not apply to {', '.join(repr(k) for k in keys)}",
            code="coupon_not_applicable",
        )
    base = total([subtotals[i] for i in eligible], currency)
    if coupon.percent_off is not None:
        off = base.percent(coupon.percent_off)
    else:
        fixed = coupon.amount_off.get(currency)
        if fixed is None:
            offered = ", ".join(sorted(coupon.amount_off))
            raise PricingError(
                f"coupon {coupon.code} has no amount in {currency} (only {offered})",
                code="coupon_currency_not_offered",
            )
        off = min(fixed, base)  # never below zero: a coupon does not pay the buyer
    out = [Money.zero(currency) for _ in keys]
    if off.amount > 0:
        for i, share in zip(eligible, off.allocate([subtotals[i].amount for i in eligible]), strict=True):
            out[i] = share
    return out
