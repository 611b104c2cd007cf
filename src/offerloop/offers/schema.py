"""The catalog file's schema (pydantic, strict, no unknown keys) and its reading into :mod:`.model` values.

A catalog is YAML (or JSON, when the path ends in ``.json``)::

    offers:
      - key: pricing-playbook
        kind: product                # product | micro_offer | subscription | bundle | drop | tier
        title: "The pricing playbook"
        prices: {USD: 2700, EUR: 2500}   # integer minor units per ISO 4217 currency, never floats
        components:
          - {component: download, ref: pricing-playbook-pdf}
        order_bumps: [sales-page-teardown]
        upsells: [membership-monthly]
    coupons:
      - {code: LAUNCH20, percent_off: 20, applies_to: all, expires_at: "2026-01-31T23:59:59Z"}

:func:`parse_catalog` raises :class:`CatalogError` listing every problem at once, each as
``file:line: path: message`` (``offers[2].prices.USD``), in file order.
"""

from __future__ import annotations

import difflib
from collections.abc import Callable
from decimal import Decimal, InvalidOperation
from pathlib import Path as FilePath
from typing import Annotated, Any, Final, Literal

from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, Field, Strict, model_validator
from pydantic_core import PydanticCustomError

from offerloop.core import currencies
from offerloop.core.money import Money
from offerloop.declarative import (
    AwareDatetime,
    Count,
    Reporter,
    Text,
    content_version,
    load_document,
    matching,
    show,
    validate,
)
from offerloop.offers.exceptions import CatalogError
from offerloop.offers.model import (
    BUNDLE_MEMBER_KINDS,
    MAX_TRIAL_DAYS,
    RECURRING_KINDS,
    Catalog,
    Component,
    ComponentKind,
    Coupon,
    Offer,
    Variant,
    iso,
)

__all__ = ["CatalogSchema", "OfferSchema", "VariantSchema", "load_catalog", "parse_catalog"]

KEY_HINT: Final = "lowercase letters, digits and '-', e.g. 'pricing-playbook'"
OfferKey = Annotated[str, matching(r"[a-z0-9][a-z0-9-]{0,63}", f"an offer key ({KEY_HINT})")]
Tag = Annotated[str, matching(r"[a-z0-9][a-z0-9-]{0,63}", f"a tag ({KEY_HINT})")]
PersonaName = Annotated[
    str, matching(r"[a-z][a-z0-9_]{0,63}", "a persona name (lowercase letters, digits and '_')")
]
QuotaName = Annotated[
    str, matching(r"[a-z][a-z0-9_]{0,63}", "a quota name (lowercase letters, digits and '_')")
]
PolicyId = Annotated[
    str, matching(r"[a-z0-9][a-z0-9_-]{0,63}", "a policy id (lowercase letters, digits, '_' and '-')")
]
CouponCode = Annotated[
    str,
    matching(
        r"[A-Z0-9][A-Z0-9_-]{0,31}", "a coupon code (capital letters, digits, '_' and '-', e.g. LAUNCH20)"
    ),
]
Ref = Annotated[str, matching(r"[^\s]{1,200}", "a non-empty reference without spaces")]
VariantKey = Annotated[
    str,
    matching(
        r"[a-z0-9][a-z0-9-]{0,39}", "a variant key (lowercase letters, digits and '-', e.g. 'launch-price')"
    ),
]


def _currency(value: Any) -> str:
    if isinstance(value, str) and len(value) == 3 and value.isupper() and currencies.is_active(value):
        return value
    raise PydanticCustomError(
        "config_currency",
        "not an ISO 4217 currency code (three capital letters, e.g. USD), got {got}",
        {"got": show(value)},
    )


def _amount(value: Any) -> int:
    """Integer minor units; floats and decimal strings are refused (no rounding guesses)."""
    if isinstance(value, int) and not isinstance(value, bool):
        return value
    raise PydanticCustomError(
        "config_amount",
        "must be an integer amount in minor units (e.g. 4900 for USD 49.00), got {got}",
        {"got": show(value)},
    )


def _some_currency(value: dict[str, int]) -> dict[str, int]:
    if not value:
        raise PydanticCustomError(
            "config_no_currency",
            "must map at least one currency to an amount, e.g. {example}",
            {"example": "{USD: 4900}"},
        )
    return value


# Far above any price, and below where JSON clients (doubles) and 64-bit columns lose the amount.
MAX_AMOUNT: Final = 10**15
Currency = Annotated[str, BeforeValidator(_currency)]
Amount = Annotated[int, BeforeValidator(_amount), Field(ge=0, le=MAX_AMOUNT)]
Prices = Annotated[dict[Currency, Amount], AfterValidator(_some_currency)]
PositiveAmounts = Annotated[
    dict[Currency, Annotated[int, BeforeValidator(_amount), Field(ge=1, le=MAX_AMOUNT)]],
    AfterValidator(_some_currency),
]


def _percent(value: Any) -> Decimal:
    """A percentage 0 < x <= 100 from a number or a decimal string ('12.5')."""
    number: Decimal | None = None
    if isinstance(value, int | float) and not isinstance(value, bool):
        number = Decimal(str(value))  # str(): 12.5, not the binary expansion of the float
    elif isinstance(value, str) and len(value) <= 40:
        try:
            number = Decimal(value.strip())
        except InvalidOperation:
            number = None
    if number is None or not number.is_finite():
        raise PydanticCustomError(
            "config_percent",
            "must be a number such as 20 or {example}, got {got}",
            {"example": "'12.5'", "got": show(value)},
        )
    if not Decimal(0) < number <= Decimal(100):
        raise PydanticCustomError(
            "config_percent", "must be more than 0 and at most 100, got {got}", {"got": show(value)}
        )
    return number


def _applies_to(value: Any) -> Any:
    """``all`` (None: every offer) or a non-empty list of offer keys."""
    if value == "all":
        return None
    if not isinstance(value, list) or not value:
        raise PydanticCustomError(
            "config_applies_to",
            "must be all or a non-empty list of offer keys, got {got}",
            {"got": show(value)},
        )
    return value


def _signed_off(value: bool) -> bool:
    if value is not True:
        raise PydanticCustomError(
            "config_signoff", "must be true (a drop cannot go live without sign-off), got false", {}
        )
    return value


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", strict=True, frozen=True)


class ComponentSchema(_Strict):
    component: ComponentKind
    ref: Ref
    quantity: Count | None = None
    access_days: Count | None = None  # None: for as long as the offer grants access


class VariantSchema(_Strict):
    """One presentation of the offer the decision engine may choose: copy, a price point, extra components."""

    key: VariantKey
    title: Text | None = None
    description: Text | None = None
    price: Prices | None = None  # the same currencies as the offer's prices; none: the offer's price
    bundle: list[ComponentSchema] = []  # granted on top of the offer's components


class _OfferBase(_Strict):
    key: OfferKey
    title: Text
    prices: Prices = Field(description="an amount in minor units per currency, e.g. {USD: 4900}")
    description: Text | None = None
    components: list[ComponentSchema] = []
    persona_fit: list[PersonaName] = []
    tags: list[Tag] = []
    order_bumps: list[OfferKey] = []
    upsells: list[OfferKey] = []
    active: bool = True
    variants: Annotated[list[VariantSchema], Field(max_length=20)] = []


class ProductSchema(_OfferBase):
    kind: Literal["product"]


class MicroOfferSchema(_OfferBase):
    kind: Literal["micro_offer"]
    deliverable_policy: PolicyId = Field(description="the policy id of its deliverable")
    turnaround_hours: Count = Field(description="the promised turnaround")
    daily_capacity: Count = Field(description="how many it takes a day")


class _RecurringBase(_OfferBase):
    interval: Literal["month", "year"] = Field(description="month or year")
    trial_days: Annotated[int, Strict(), Field(ge=0, le=MAX_TRIAL_DAYS)] = 0
    quotas: dict[QuotaName, Count] = {}  # name -> uses per billing period


class SubscriptionSchema(_RecurringBase):
    kind: Literal["subscription"]


class TierSchema(_RecurringBase):
    kind: Literal["tier"]

    @model_validator(mode="after")
    def _has_a_space(self) -> TierSchema:
        # What makes a superfan tier more than a subscription: a space to belong to.
        if not any(c.component == "community_space" for c in self.components):
            raise PydanticCustomError(
                "config_tier", "a tier must grant at least one community_space component"
            )
        return self


class BundleSchema(_OfferBase):
    kind: Literal["bundle"]
    includes: list[OfferKey] = Field(description="the offer keys it contains")


class DropSchema(_OfferBase):
    kind: Literal["drop"]
    inventory: Count = Field(description="how many units exist")
    opens_at: AwareDatetime = Field(description="when it goes on sale")
    closes_at: AwareDatetime = Field(description="when it stops selling")
    per_buyer_limit: Count = 1  # a limited edition: one per buyer unless the creator says otherwise
    requires_signoff: Annotated[bool, AfterValidator(_signed_off)] = True
    exclusive_to: list[OfferKey] = []  # tier keys whose members alone may buy this drop


OfferSchema = Annotated[
    ProductSchema | MicroOfferSchema | SubscriptionSchema | BundleSchema | DropSchema | TierSchema,
    Field(discriminator="kind"),
]


class CouponSchema(_Strict):
    code: CouponCode
    percent_off: Annotated[Decimal, BeforeValidator(_percent)] | None = None
    amount_off: PositiveAmounts | None = None
    applies_to: Annotated[list[OfferKey] | None, BeforeValidator(_applies_to)] = None
    max_redemptions: Count | None = None
    expires_at: AwareDatetime | None = None
    once_per_buyer: bool = False

    @model_validator(mode="before")
    @classmethod
    def _one_discount(cls, data: Any) -> Any:
        if isinstance(data, dict) and ("percent_off" in data) == ("amount_off" in data):
            both = "percent_off" in data
            message = (
                "give either percent_off or amount_off, not both"
                if both
                else "a coupon needs percent_off or amount_off"
            )
            raise PydanticCustomError("config_discount", message)
        return data


class CatalogSchema(_Strict):
    offers: Annotated[list[OfferSchema], Field(min_length=1)]
    coupons: list[CouponSchema] = []


# --------------------------------------------------------------------------------------------------
# What pydantic cannot see one entry at a time: references between entries, windows, uniqueness


def _check(catalog: CatalogSchema, report: Reporter) -> None:
    kinds: dict[str, str] = {}
    first: dict[str, int] = {}
    for index, offer in enumerate(catalog.offers):
        if offer.key in first:
            first_line = report.line(("offers", first[offer.key], "key"))
            report(
                ("offers", index, "key"), f"duplicate offer key {offer.key!r} (first at line {first_line})"
            )
        else:
            first[offer.key], kinds[offer.key] = index, offer.kind

    def known(where: tuple[Any, ...], key: str) -> bool:
        if key in kinds:
            return True
        report(where, f"unknown offer {key!r}{_close(key, list(kinds))}")
        return False

    for index, offer in enumerate(catalog.offers):
        at = ("offers", index)
        for field, label in (("order_bumps", "order bump"), ("upsells", "upsell")):
            for n, key in enumerate(getattr(offer, field)):
                if key == offer.key:
                    report((*at, field, n), f"an offer cannot be its own {label}")
                else:
                    known((*at, field, n), key)
        _check_variants(offer, at, report)
        if isinstance(offer, BundleSchema):
            _check_bundle(offer, at, kinds, known, report)
        if isinstance(offer, DropSchema):
            if offer.closes_at <= offer.opens_at:
                report(
                    (*at, "closes_at"),
                    f"must be after opens_at ({iso(offer.opens_at)}), got {iso(offer.closes_at)}",
                )
            if offer.per_buyer_limit > offer.inventory:
                report(
                    (*at, "per_buyer_limit"),
                    f"must not exceed inventory ({offer.inventory}), got {offer.per_buyer_limit}",
                )
            for n, key in enumerate(offer.exclusive_to):
                if known((*at, "exclusive_to", n), key) and kinds[key] != "tier":
                    report((*at, "exclusive_to", n), f"exclusive_to names tiers; {key!r} is a {kinds[key]}")
    codes: dict[str, int] = {}
    for index, coupon in enumerate(catalog.coupons):
        if coupon.code in codes:
            first_line = report.line(("coupons", codes[coupon.code], "code"))
            report(
                ("coupons", index, "code"),
                f"duplicate coupon code {coupon.code!r} (first at line {first_line})",
            )
        codes.setdefault(coupon.code, index)
        for n, key in enumerate(coupon.applies_to or ()):
            known(("coupons", index, "applies_to", n), key)


def _check_variants(offer: Any, at: tuple[Any, ...], report: Reporter) -> None:
    """Variant keys are unique within the offer; a variant's price point is in exactly the offer's currencies
    (a buyer shown a variant can pay it wherever the offer is sold); a plan's price is not varied (its
    renewals charge the plan's price)."""
    first: dict[str, int] = {}
    for n, variant in enumerate(offer.variants):
        where = (*at, "variants", n)
        if variant.key in first:
            first_line = report.line((*at, "variants", first[variant.key], "key"))
            report((*where, "key"), f"duplicate variant key {variant.key!r} (first at line {first_line})")
        first.setdefault(variant.key, n)
        if variant.price is None:
            continue
        if offer.kind in RECURRING_KINDS:
            report((*where, "price"), f"a {offer.kind}'s variants cannot change its price (renewals charge the "
                                      "plan's price): vary its copy or bundle")  # fmt: skip
        elif set(variant.price) != set(offer.prices):
            report((*where, "price"), f"must give a price in exactly the offer's currencies "
                                      f"({', '.join(sorted(offer.prices))}), got {', '.join(sorted(variant.price))}")  # fmt: skip


def _check_bundle(
    offer: BundleSchema,
    at: tuple[Any, ...],
    kinds: dict[str, str],
    known: Callable[[tuple[Any, ...], str], bool],
    report: Reporter,
) -> None:
    if len(set(offer.includes)) < 2:
        report(
            (*at, "includes"), f"a bundle needs at least 2 different offers, got {len(set(offer.includes))}"
        )
    seen: set[str] = set()
    for n, key in enumerate(offer.includes):
        where = (*at, "includes", n)
        if key == offer.key:
            report(where, "a bundle cannot contain itself")
        elif key in seen:
            report(where, f"{key!r} is listed twice")
        elif known(where, key) and kinds[key] not in BUNDLE_MEMBER_KINDS:
            report(where, f"a bundle holds product and micro_offer offers; {key!r} is a {kinds[key]}")
        seen.add(key)


def _close(key: str, keys: list[str]) -> str:
    close = difflib.get_close_matches(key, keys, n=1)
    return f" (did you mean {close[0]!r}?)" if close else ""


# --------------------------------------------------------------------------------------------------
# Reading


def _money(amounts: dict[str, int] | None) -> dict[str, Money]:
    return {currency: Money(currency, amount) for currency, amount in (amounts or {}).items()}


def _variant(schema: VariantSchema) -> Variant:
    return Variant(
        key=schema.key,
        title=schema.title,
        description=schema.description,
        prices=_money(schema.price),
        bundle=tuple(Component(**c.model_dump()) for c in schema.bundle),
    )


def _offer(schema: Any, line: int) -> Offer:
    fields = schema.model_dump(exclude={"components", "prices", "kind", "variants"})
    for name in ("persona_fit", "tags", "order_bumps", "upsells", "includes", "exclusive_to"):
        if name in fields:
            fields[name] = tuple(dict.fromkeys(fields[name]))  # a name twice means nothing more
    return Offer(
        kind=schema.kind,
        prices=_money(schema.prices),
        components=tuple(Component(**c.model_dump()) for c in schema.components),
        variants=tuple(_variant(v) for v in schema.variants),
        line=line,
        **fields,
    )


def _coupon(schema: CouponSchema, line: int) -> Coupon:
    return Coupon(
        code=schema.code,
        percent_off=schema.percent_off,
        amount_off=_money(schema.amount_off),
        applies_to=None if schema.applies_to is None else tuple(dict.fromkeys(schema.applies_to)),
        max_redemptions=schema.max_redemptions,
        expires_at=schema.expires_at,
        once_per_buyer=schema.once_per_buyer,
        line=line,
    )


def parse_catalog(text: str, *, path: str = "<string>") -> Catalog:
    """Catalog YAML (JSON when ``path`` ends in ``.json``) -> a validated :class:`Catalog`.

    Raises :class:`CatalogError` (status 422, code ``invalid_catalog``) whose ``problems`` name every
    problem as ``file:line: path: message``, in file order.
    """
    doc = load_document(text, file=path)
    schema = validate(
        CatalogSchema,
        doc,
        error=CatalogError,
        check=_check,
        empty="the catalog is empty (expected a mapping with offers and coupons)",
    )
    return Catalog(
        offers=tuple(_offer(o, doc.line(("offers", i))) for i, o in enumerate(schema.offers)),
        coupons=tuple(_coupon(c, doc.line(("coupons", i))) for i, c in enumerate(schema.coupons)),
        version=content_version(doc.data),
        path=path,
    )


def load_catalog(file: str | FilePath) -> Catalog:
    """Read and parse a catalog file (UTF-8)."""
    return parse_catalog(FilePath(file).read_text(encoding="utf-8"), path=str(file))
