"""The offers catalog, one import away: the model, the file schema, pricing and drops.

``offerloop.offers.catalog`` keeps the names it always had; each lives in its own module:
:mod:`.model` (offers, coupons, the catalog), :mod:`.schema` (reading a catalog file),
:mod:`.pricing` (quotes) and :mod:`.drops` (a drop's state).
"""

from __future__ import annotations

from offerloop.declarative import content_version
from offerloop.offers.drops import drop_state
from offerloop.offers.model import (
    BUNDLE_MEMBER_KINDS,
    COMPONENT_KINDS,
    DROP_STATES,
    INTERVALS,
    OFFER_KINDS,
    RECURRING_KINDS,
    Catalog,
    Component,
    ComponentKind,
    Coupon,
    DropState,
    Interval,
    Offer,
    OfferKind,
    Variant,
)
from offerloop.offers.pricing import Quote, QuoteLine, price_of
from offerloop.offers.schema import load_catalog, parse_catalog

__all__ = [
    "BUNDLE_MEMBER_KINDS",
    "COMPONENT_KINDS",
    "DROP_STATES",
    "INTERVALS",
    "OFFER_KINDS",
    "RECURRING_KINDS",
    "Catalog",
    "Component",
    "ComponentKind",
    "Coupon",
    "DropState",
    "Interval",
    "Offer",
    "OfferKind",
    "Quote",
    "QuoteLine",
    "Variant",
    "content_version",
    "drop_state",
    "load_catalog",
    "parse_catalog",
    "price_of",
]
