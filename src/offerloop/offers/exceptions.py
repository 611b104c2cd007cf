"""Errors of the offers domain: an invalid catalog, a price that cannot be quoted, an offer not found or
not for sale (a subscription's errors are the subscriptions domain's)."""

from __future__ import annotations

from typing import Final

from offerloop.core.errors import OfferloopError
from offerloop.declarative import ConfigError

# Stable machine-readable codes (``error.code``).
INVALID_CATALOG: Final = "invalid_catalog"


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


class OfferNotFound(OfferloopError):
    status_code = 404
    code = "offer_not_found"


class NotForSale(OfferloopError):
    status_code = 409
    code = "not_for_sale"
