"""The push channel's errors, each with its HTTP status and stable code."""

from __future__ import annotations

from offerloop.core.errors import OfferloopError, PayloadTooLarge, ValidationFailed


class InvalidSubscription(ValidationFailed):
    code = "invalid_push_subscription"


class PushPayloadTooLarge(PayloadTooLarge):
    code = "push_payload_too_large"


class BuyerTokenRequired(OfferloopError):
    """A browser (the public write key) named a buyer by userId: anyone could, and would then receive that buyer's
    pushes. A userId needs the secret key, or a buyer token minted by the creator's backend."""

    status_code = 403
    code = "buyer_token_required"
