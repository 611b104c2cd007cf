"""Errors of the offers domain: an invalid catalog, a price that cannot be quoted, an illegal
subscription transition."""

from __future__ import annotations

from typing import Final

from offerloop.core.errors import OfferloopError
from offerloop.declarative import ConfigError

# Stable machine-readable codes (``error.code``).
INVALID_CATALOG: Final = "invalid_catalog"
INVALID_TRANSITION: Final = "invalid_transition"
QUOTA_EXHAUSTED: Final = "quota_exhausted"
QUOTA_UNKNOWN: Final = "quota_unknown"
QUOTA_UNAVAILABLE: Final = "quota_unavailable"


class CatalogError(ConfigError):
    """An offers catalog that does not parse or validate.

    ``problems`` holds one line per problem (``"file:line: path: message"``), in file order;
    ``str(error)`` is those lines joined by newlines. ``details`` is the machine-readable form
    (``[{"path", "line", "location", "message"}]``).
    """

    code = INVALID_CATALOG


class PricingError(OfferloopError):
    """A quote that cannot be made: unknown offer, currency not offered, unusable coupon, ...

    ``code`` says which (``unknown_offer``, ``offer_inactive``, ``invalid_currency``,
    ``currency_not_offered``, ``invalid_quantity``, ``per_buyer_limit``, ``bump_not_offered``,
    ``unknown_coupon``, ``coupon_expired``, ``coupon_not_applicable``, ``coupon_currency_not_offered``,
    ``coupon_exhausted``, ``coupon_already_used``).
    """

    status_code = 422
    code = "pricing_failed"


class SubscriptionError(OfferloopError):
    """An event the subscription cannot take in its state (code ``invalid_transition``), or a quota
    that cannot be used (``quota_exhausted``, ``quota_unknown``, ``quota_unavailable``)."""

    status_code = 409
    code = INVALID_TRANSITION


class OfferNotFound(OfferloopError):
    status_code = 404
    code = "offer_not_found"


class NotForSale(OfferloopError):
    status_code = 409
    code = "not_for_sale"
