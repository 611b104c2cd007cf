"""Errors of the subscriptions domain: an unknown subscription, a step its state cannot take (or its provider
takes), a quota."""

from __future__ import annotations

from typing import Final

from offerloop.core.errors import OfferloopError

# Stable machine-readable codes (``error.code``).
INVALID_TRANSITION: Final = "invalid_transition"
QUOTA_EXHAUSTED: Final = "quota_exhausted"
QUOTA_UNKNOWN: Final = "quota_unknown"
QUOTA_UNAVAILABLE: Final = "quota_unavailable"
#: A buyer asking to resume a pause the creator made: the creator's decision stands.
PAUSED_BY_CREATOR: Final = "paused_by_creator"


class SubscriptionError(OfferloopError):
    """An event the subscription cannot take in its state (code ``invalid_transition``; ``paused_by_creator``
    for a buyer resuming the creator's pause), or a quota that cannot be used (``quota_exhausted``,
    ``quota_unknown``, ``quota_unavailable``)."""

    status_code = 409
    code = INVALID_TRANSITION


class SubscriptionNotFound(OfferloopError):
    status_code = 404
    code = "subscription_not_found"


class ProviderManaged(OfferloopError):
    """A payment step (renew, payment_failed, payment_succeeded) asked for here on a subscription its payment
    provider bills: the provider charges and retries it, and its webhooks record each payment."""

    status_code = 409
    code = "provider_managed"


class InvalidAction(OfferloopError):
    """An action the request cannot ask for: ``plan_required``, ``invalid_plan`` (the code says which)."""

    status_code = 409
    code = "invalid_plan"
