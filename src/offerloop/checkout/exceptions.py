"""The checkout domain's errors: the payment provider failed us, or a webhook was not to be trusted."""

from __future__ import annotations

from offerloop.core.errors import OfferloopError


class ProviderError(OfferloopError):
    """The payment provider refused a request or could not be reached.

    ``details`` carries the provider's own view of the problem (``type``, ``code``, ``message``,
    ``http_status``, ``request_id``), so an operator can look it up on the provider's side.
    """

    status_code = 502
    code = "payment_provider_error"


class RefundRefused(ProviderError):
    """The provider answered and did not refund: it refused the request (the charge is already refunded, the
    amount is more than is left, the idempotency key was used for another refund) or created a refund that
    did not complete (``failed``, ``canceled``, ``requires_action``). Nothing was booked; ``details`` carries
    the provider's code (or the refund's id and status)."""

    status_code = 409
    code = "refund_refused"


class ProviderRefused(ProviderError):
    """The provider answered and refused a change to one of its objects (a subscription already canceled, a
    price it does not take, an idempotency key used for another request): nothing was changed there, nor
    here; ``details`` carries the provider's ``type``, ``code`` and ``message`` and the ``idempotency_key``."""

    status_code = 409
    code = "provider_refused"


class WebhookRefused(OfferloopError):
    """A webhook delivery that must not be acted on.

    ``code`` is ``invalid_signature`` (no valid signature for this body and secret),
    ``stale_signature`` (validly signed, but older than the tolerance: a possible replay) or
    ``invalid_payload`` (validly signed, but not a JSON event).
    """

    status_code = 400
    code = "invalid_signature"


class CheckoutError(OfferloopError):
    """A checkout request or order operation that cannot be done as asked (the code says why)."""

    status_code = 409
    code = "checkout_error"


class OrderNotFound(OfferloopError):
    status_code = 404
    code = "order_not_found"


class SoldOut(OfferloopError):
    status_code = 409
    code = "sold_out"
