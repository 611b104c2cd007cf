"""The webhook channel's errors, each with its HTTP status and stable code."""

from __future__ import annotations

from offerloop.core.errors import Conflict, NotFound, ValidationFailed


class EndpointNotFound(NotFound):
    code = "webhook_endpoint_not_found"


class DeliveryNotFound(NotFound):
    code = "webhook_delivery_not_found"


class InvalidTargetUrl(ValidationFailed):
    """A URL offerloop will not send to: not http(s), credentials in it, or a private/loopback target (an SSRF
    guard; ``OFFERLOOP_WEBHOOK_ALLOW_PRIVATE`` lifts the last rule for local development and tests)."""

    code = "invalid_target_url"


class EndpointDisabled(Conflict):
    code = "webhook_endpoint_disabled"


class TooManyEndpoints(Conflict):
    code = "webhook_endpoint_limit"
