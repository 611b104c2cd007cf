"""Errors of the subscriptions domain: an unknown subscription, a step its state cannot take, a quota."""

from __future__ import annotations

from typing import Final

from offerloop.core.errors import OfferloopError

# Stable machine-readable codes (``error.code``).
INVALID_TRANSITION: Final = "invalid_transition"
QUOTA_EXHAUSTED: Final = "quota_exhausted"
QUOTA_UNKNOWN: Final = "quota_unknown"
QUOTA_UNAVAILABLE: Final = "quota_unavailable"


class SubscriptionError(OfferloopError):
    """An event the subscription cannot take in its state (code ``invalid_transition``), or a quota
    that cannot be used (``quota_exhausted``, ``quota_unknown``, ``quota_unavailable``)."""

    status_code = 409
    code = INVALID_TRANSITION


class SubscriptionNotFound(OfferloopError):
    status_code = 404
    code = "subscription_not_found"


class InvalidAction(OfferloopError):
    """An action the request cannot ask for: ``plan_required``, ``invalid_plan`` (the code says which)."""

    status_code = 409
    code = "invalid_plan"
