"""HTTP shapes of the offers domain: the catalog as loaded and listed, a sign-off, the offers a buyer sees."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from offerloop.core.pages import Page


class CatalogText(BaseModel):
    text: str = Field(description="The offers catalog in YAML (or JSON)")


class CatalogLoaded(BaseModel):
    version: int = Field(description="The workspace's catalog version after this load")
    offers: list[str] = Field(description="Offer keys in the catalog, sorted")
    coupons: list[str] = Field(description="Coupon codes in the catalog, sorted")


class ComponentRead(BaseModel):
    component: str
    ref: str
    quantity: int | None = None
    access_days: int | None = None


class DropStockRead(BaseModel):
    total: int
    sold: int
    held: int


class VariantRead(BaseModel):
    """One variant as the catalog defines it (unset copy and prices are the offer's)."""

    key: str
    title: str | None
    description: str | None
    prices: dict[str, int] = Field(description="Minor units per currency; empty: the offer's prices")
    bundle: list[ComponentRead] = Field(description="Components granted on top of the offer's")


class OfferRead(BaseModel):
    """One offer as the catalog defines it, with its state (drops: live, sold_out, …) and stock."""

    key: str
    kind: str
    title: str
    description: str | None
    prices: dict[str, int] = Field(description="Minor units per ISO 4217 currency")
    components: list[ComponentRead]
    persona_fit: list[str]
    tags: list[str]
    order_bumps: list[str]
    upsells: list[str]
    active: bool
    deliverable_policy: str | None
    turnaround_hours: int | None
    daily_capacity: int | None
    interval: str | None
    trial_days: int
    quotas: dict[str, int]
    includes: list[str]
    inventory: int | None
    opens_at: str | None = Field(description="ISO 8601, UTC")
    closes_at: str | None = Field(description="ISO 8601, UTC")
    per_buyer_limit: int | None
    requires_signoff: bool
    exclusive_to: list[str]
    state: str = Field(description="active | inactive; drops: draft | scheduled | live | sold_out | closed")
    stock: DropStockRead | None
    variants: list[VariantRead] = Field(
        default_factory=list, description="Ways to present it, chosen per buyer"
    )


class SignOffRead(BaseModel):
    key: str
    state: str


class PresentedVariant(BaseModel):
    """The variant the decision engine chose for this buyer: pass its ``key`` to checkout as ``variant``."""

    key: str
    title: str
    description: str | None
    price: int = Field(description="Minor units of the presentation's currency")
    formatted: str
    bundle: list[ComponentRead] = Field(description="Components it grants on top of the offer's")


class PresentedOffer(BaseModel):
    """An offer as this buyer is shown it: title, description and price are its variant's, if it has one."""

    key: str
    kind: str
    title: str
    description: str | None
    price: int = Field(description="Minor units of ``currency``")
    currency: str
    formatted: str
    interval: str | None
    trial_days: int | None
    order_bumps: list[str]
    score: float
    propensity: float
    reasons: list[str]
    variant: PresentedVariant | None = Field(default=None, description="null: the offer has no variants")
    experiment: dict[str, str] | None = Field(
        default=None,
        description="The experiment on this offer that pinned its variant, and the buyer's arm ({key, arm}); "
        "null: the decision engine chose the variant",
    )


class OffersPresented(BaseModel):
    """The offers this buyer may buy, ordered by the decision engine (empty: nothing to offer)."""

    decision_id: str | None
    offers: list[PresentedOffer]
    currency: str
    persona: dict[str, Any] | None
    holdout: bool
    model_version: int | None = Field(
        default=None, description="The model snapshot that decided; null when no offer"
    )


class OfferPage(Page[OfferRead]):
    """A page of the catalog's offers, by key."""
