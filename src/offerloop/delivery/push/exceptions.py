"""The push channel's errors, each with its HTTP status and stable code."""

from __future__ import annotations

from offerloop.core.errors import PayloadTooLarge, ValidationFailed


class InvalidSubscription(ValidationFailed):
    code = "invalid_push_subscription"


class PushPayloadTooLarge(PayloadTooLarge):
    code = "push_payload_too_large"
