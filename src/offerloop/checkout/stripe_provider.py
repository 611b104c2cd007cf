"""Stripe as a payment provider: Checkout Sessions and Refunds out, signed webhooks in.

Every call to Stripe goes through the official SDK (``stripe.StripeClient``) pointed at
``StripeConfig.api_base``, so the same code runs against api.stripe.com and against a loopback
stand-in in tests. Webhooks are verified by the SDK on the raw request body before any byte of it
is parsed, then reduced by :func:`normalize` to a provider-independent :class:`PaymentEvent`
(decoding and normalisation: ``checkout.stripe_events``, re-exported here).

This module holds no state and touches no database: storing orders and acting on events belong
to the caller.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal, NotRequired, TypedDict, cast

import stripe

from offerloop.checkout.exceptions import ProviderError, ProviderRefused, RefundRefused, WebhookRefused
from offerloop.checkout.stripe_events import (
    ORDER_ID_KEY,
    PROVIDER,
    WORKSPACE_ID_KEY,
    _dict,
    _int,
    _signature_timestamp,
    _str,
)
from offerloop.checkout.stripe_events import PaymentEvent as PaymentEvent
from offerloop.checkout.stripe_events import PaymentEventKind as PaymentEventKind
from offerloop.checkout.stripe_events import WebhookEvent as WebhookEvent
from offerloop.checkout.stripe_events import normalize as normalize
from offerloop.checkout.stripe_events import parse_event as parse_event
from offerloop.core import currencies
from offerloop.core.errors import ValidationFailed
from offerloop.core.money import Money

if TYPE_CHECKING:
    from stripe.params import RefundCreateParams, SubscriptionCancelParams, SubscriptionUpdateParams
    from stripe.params.checkout import SessionCreateParams

__all__ = [
    "CheckoutLine",
    "CheckoutSession",
    "PaymentEvent",
    "PaymentEventKind",
    "ProviderRefund",
    "StripeConfig",
    "StripeProvider",
    "WebhookEvent",
    "normalize",
    "sign_payload",
]

CheckoutMode = Literal["payment", "subscription"]
Interval = Literal["month", "year"]


_MAX_REFERENCE_LEN = 200  # Stripe's limit on client_reference_id.


class CheckoutLine(TypedDict):
    """One line of a Checkout Session; ``unit_amount`` in minor units, ``interval`` makes it recurring."""

    name: str
    unit_amount: int
    quantity: int
    interval: NotRequired[Interval]


@dataclass(frozen=True, slots=True)
class StripeConfig:
    """Credentials and transport settings for one Stripe account.

    ``max_network_retries`` is the SDK's retry count for connection errors, 409s and 5xx; retries are
    safe because every create carries an idempotency key.
    """

    api_key: str
    webhook_secret: str
    api_base: str = stripe.DEFAULT_API_BASE
    tolerance_s: int = stripe.Webhook.DEFAULT_TOLERANCE
    timeout_s: float = 10
    max_network_retries: int = 2

    def __post_init__(self) -> None:
        if not self.api_key:
            raise ValueError("StripeConfig.api_key is empty")
        if not self.webhook_secret:
            raise ValueError("StripeConfig.webhook_secret is empty")
        # The SDK reads a tolerance of 0 as "no age check at all"; refuse it rather than disable replay protection.
        if self.tolerance_s <= 0:
            raise ValueError("StripeConfig.tolerance_s must be positive")
        if self.timeout_s <= 0:
            raise ValueError("StripeConfig.timeout_s must be positive")
        if self.max_network_retries < 0:
            raise ValueError("StripeConfig.max_network_retries must not be negative")

    def __repr__(self) -> str:  # never print the secrets
        return f"StripeConfig(api_base={self.api_base!r}, tolerance_s={self.tolerance_s}, timeout_s={self.timeout_s})"


@dataclass(frozen=True, slots=True)
class CheckoutSession:
    """A created Checkout Session: where to send the buyer, and Stripe's full answer in ``raw``."""

    id: str
    url: str
    payment_status: str
    raw: dict[str, Any] = field(repr=False)


@dataclass(frozen=True, slots=True)
class ProviderRefund:
    """A Refund Stripe created: its id, ``status`` (succeeded, pending, requires_action, failed, canceled) and
    ``amount`` back in ISO minor units; Stripe's full answer in ``raw``."""

    id: str
    status: str
    amount: int | None
    failure_reason: str | None
    raw: dict[str, Any] = field(repr=False)


def sign_payload(payload: bytes, secret: str, timestamp: int) -> str:
    """A ``Stripe-Signature`` header for ``payload``: ``t=<ts>,v1=<hex HMAC-SHA256 of "<ts>.<body>">``.

    For tests and the local webhook sender; real deliveries are signed by Stripe.
    """
    signed = str(int(timestamp)).encode("ascii") + b"." + payload
    digest = hmac.new(secret.encode("utf-8"), signed, hashlib.sha256).hexdigest()
    return f"t={int(timestamp)},v1={digest}"


class StripeProvider:
    """Creates Checkout Sessions and verifies webhooks for one Stripe account.

    ``http_client`` replaces the SDK transport (default: ``stripe.RequestsClient`` with
    ``config.timeout_s``); the API base always comes from ``config.api_base``.
    """

    name = PROVIDER

    def __init__(self, config: StripeConfig, *, http_client: stripe.HTTPClient | None = None) -> None:
        self.config = config
        self._client = stripe.StripeClient(
            config.api_key,
            base_addresses={"api": config.api_base.rstrip("/")},
            http_client=http_client or stripe.RequestsClient(timeout=config.timeout_s),
            max_network_retries=config.max_network_retries,
        )

    # -- outgoing -------------------------------------------------------------------------------

    def create_checkout_session(
        self,
        *,
        order_id: str,
        workspace_id: str,
        mode: CheckoutMode,
        currency: str,
        lines: Sequence[CheckoutLine],
        success_url: str,
        cancel_url: str,
        customer_email: str | None = None,
        trial_days: int | None = None,
        metadata: Mapping[str, str] | None = None,
    ) -> CheckoutSession:
        """Create a hosted Checkout Session for one order.

        The order id becomes ``client_reference_id``, sits in the session's metadata (with the
        workspace id and ``metadata``) and is copied onto the PaymentIntent or Subscription Stripe
        creates, so later invoice, subscription and charge events still name the order. The
        idempotency key is derived from the order id alone: retrying returns the same session, and
        a second, different session for the same order is refused by Stripe (ProviderError).
        """
        params = build_session_params(
            order_id=order_id,
            workspace_id=workspace_id,
            mode=mode,
            currency=currency,
            lines=lines,
            success_url=success_url,
            cancel_url=cancel_url,
            customer_email=customer_email,
            trial_days=trial_days,
            metadata=metadata,
        )
        try:
            session = self._client.v1.checkout.sessions.create(
                cast("SessionCreateParams", params),
                {"idempotency_key": idempotency_key(order_id)},
            )
        except stripe.StripeError as exc:
            raise _provider_error(exc) from exc

        raw = _answer(session)
        session_id, url = _str(raw.get("id")), _str(raw.get("url"))
        if session_id is None or url is None:
            raise ProviderError(
                "Stripe returned a Checkout Session without an id or url",
                details={"provider": self.name, "session": raw},
            )
        return CheckoutSession(
            id=session_id,
            url=url,
            payment_status=_str(raw.get("payment_status")) or "unpaid",
            raw=dict(raw),
        )

    def create_refund(
        self,
        *,
        order_id: str,
        workspace_id: str,
        currency: str,
        amount: int,
        sequence: int,
        payment_intent: str | None = None,
        charge: str | None = None,
    ) -> ProviderRefund:
        """Refund ``amount`` (ISO minor units) of the order's payment (a PaymentIntent, else a Charge).

        The idempotency key is the order id and ``sequence`` (the caller's count of the order's refunds and
        of the attempts Stripe definitively refused): a retry of the same refund whose outcome is unknown, by
        the SDK or by a caller whose transaction failed after Stripe answered, gets Stripe's first answer back
        instead of refunding twice. Stripe refusing the refund is :class:`RefundRefused` (409, its details name
        the ``idempotency_key``: Stripe keeps that answer for 24 hours, so the next attempt must use another
        sequence); Stripe unreachable or failing is :class:`ProviderError` (502: the outcome is unknown, the
        next attempt reuses the key).
        """
        params = build_refund_params(
            order_id=order_id, workspace_id=workspace_id, currency=currency, amount=amount,
            payment_intent=payment_intent, charge=charge,
        )  # fmt: skip
        key = refund_idempotency_key(order_id, sequence)
        try:
            refund = self._client.v1.refunds.create(
                cast("RefundCreateParams", params), {"idempotency_key": key}
            )
        except stripe.StripeError as exc:
            error = _provider_error(exc, refusal=True)
            if isinstance(error, RefundRefused):
                error.details = {**error.details, "idempotency_key": key}
            raise error from exc
        raw = _answer(refund)
        refund_id, status = _str(raw.get("id")), _str(raw.get("status"))
        if refund_id is None or status is None:
            raise ProviderError(
                "Stripe returned a Refund without an id or status",
                details={"provider": self.name, "refund": raw},
            )
        stripe_amount = _int(raw.get("amount"))
        returned = (
            None
            if stripe_amount is None
            else currencies.from_provider_units("stripe", currency, stripe_amount)
        )
        return ProviderRefund(id=refund_id, status=status, amount=returned,
                              failure_reason=_str(raw.get("failure_reason")), raw=dict(raw))  # fmt: skip

    def retrieve_subscription(self, subscription_id: str) -> dict[str, Any]:
        """``GET /v1/subscriptions/{id}``: the subscription as Stripe holds it now, its items' prices with their
        products expanded (``expand[]=items.data.price.product``: the products' names tell the tax item)."""
        try:
            found = self._client.v1.subscriptions.retrieve(
                subscription_id, {"expand": ["items.data.price.product"]}
            )
        except stripe.StripeError as exc:
            raise _provider_error(exc, refused=ProviderRefused) from exc
        return _answer(found)

    def update_subscription(
        self, subscription_id: str, params: Mapping[str, Any], *, idempotency_key: str
    ) -> dict[str, Any]:
        """``POST /v1/subscriptions/{id}`` with ``params`` (see ``build_subscription_change``). Stripe refusing
        it (a 4xx but authentication and rate limits) is :class:`ProviderRefused` (409, its details name the
        ``idempotency_key``, which Stripe keeps with its refusal for 24 hours); Stripe unreachable or failing is
        :class:`ProviderError` (502: the outcome is unknown, the next attempt reuses the key)."""
        return self._subscription_call(
            lambda options: self._client.v1.subscriptions.update(
                subscription_id, cast("SubscriptionUpdateParams", dict(params)), options
            ),
            idempotency_key,
        )

    def cancel_subscription(
        self, subscription_id: str, params: Mapping[str, Any], *, idempotency_key: str
    ) -> dict[str, Any]:
        """``DELETE /v1/subscriptions/{id}``: canceled now (errors as ``update_subscription``)."""
        return self._subscription_call(
            lambda options: self._client.v1.subscriptions.cancel(
                subscription_id, cast("SubscriptionCancelParams", dict(params)), options
            ),
            idempotency_key,
        )

    def _subscription_call(self, call: Any, idempotency_key: str) -> dict[str, Any]:
        try:
            answer = call({"idempotency_key": idempotency_key})
        except stripe.StripeError as exc:
            error = _provider_error(exc, refused=ProviderRefused)
            if isinstance(error, ProviderRefused):
                error.details = {**error.details, "idempotency_key": idempotency_key}
            raise error from exc
        raw = _answer(answer)
        if _str(raw.get("id")) is None:
            raise ProviderError("Stripe returned a Subscription without an id",
                                details={"provider": self.name, "subscription": raw})  # fmt: skip
        return raw

    # -- incoming -------------------------------------------------------------------------------

    def verify_webhook(
        self, raw_body: bytes, signature_header: str, *, now: int | None = None
    ) -> WebhookEvent:
        """Verify a delivery's signature on the raw body, then decode it.

        The SDK (``WebhookSignature.verify_header``) checks the HMAC. With ``now=None`` the SDK
        also applies the configured tolerance against the system clock; with an explicit ``now``
        the same rule (refuse a timestamp older than ``now - tolerance_s``) is applied to that
        clock instead, because the SDK reads ``time.time()`` directly.
        """
        secret = self.config.webhook_secret
        tolerance = self.config.tolerance_s
        try:
            stripe.WebhookSignature.verify_header(raw_body, signature_header, secret, None)
        except stripe.SignatureVerificationError as exc:
            raise WebhookRefused(
                "Webhook signature does not match", details={"reason": exc.user_message}
            ) from exc
        except UnicodeDecodeError as exc:  # the SDK decodes the body as UTF-8 before hashing
            raise WebhookRefused("Webhook body is not UTF-8", code="invalid_payload") from exc

        timestamp = _signature_timestamp(signature_header)
        stale = False
        if now is None:
            try:
                stripe.WebhookSignature.verify_header(raw_body, signature_header, secret, tolerance)
            except stripe.SignatureVerificationError:
                stale = True  # the signature itself passed above: only the age check is left
        else:
            stale = timestamp < now - tolerance
        if stale:
            raise WebhookRefused(
                f"Webhook signature is older than {tolerance} s",
                code="stale_signature",
                details={"timestamp": timestamp, "tolerance_s": tolerance},
            )
        return parse_event(raw_body)

    def normalize(self, event: WebhookEvent) -> PaymentEvent | None:
        """See :func:`normalize`."""
        return normalize(event)


# -- request building ---------------------------------------------------------------------------


def idempotency_key(order_id: str) -> str:
    """The idempotency key for an order's Checkout Session."""
    return f"offerloop-checkout-{order_id}"


def _order_problems(order_id: str, workspace_id: str, currency: str) -> list[str]:
    """What is wrong with the order reference, workspace and currency every request to Stripe carries."""
    problems: list[str] = []
    if not order_id or len(order_id) > _MAX_REFERENCE_LEN:
        problems.append(f"order_id must be 1..{_MAX_REFERENCE_LEN} characters")
    if not workspace_id:
        problems.append("workspace_id is empty")
    if not currencies.is_active(currency.upper()):
        problems.append(f"currency must be an active ISO 4217 code, not {currency!r}")
    return problems


def refund_idempotency_key(order_id: str, sequence: int) -> str:
    """The idempotency key of an order's refund number ``sequence`` (0 for its first)."""
    return f"offerloop-refund-{order_id}-{sequence}"


def build_refund_params(
    *,
    order_id: str,
    workspace_id: str,
    currency: str,
    amount: int,
    payment_intent: str | None = None,
    charge: str | None = None,
) -> dict[str, Any]:
    """The ``POST /v1/refunds`` parameters (before form encoding); raises ValidationFailed."""
    problems = _order_problems(order_id, workspace_id, currency)
    if (payment_intent is None) == (charge is None):
        problems.append("name the payment to refund: a payment_intent or a charge, not both")
    converted: int | None = None
    if not isinstance(amount, int) or isinstance(amount, bool) or amount <= 0:
        problems.append("amount must be a positive integer in minor units")
    elif currencies.is_active(currency.upper()):
        converted = currencies.to_provider_units("stripe", currency, amount)
        if converted is None:
            shown = Money(currency.upper(), amount).format()
            problems.append(f"amount {shown} cannot be refunded: Stripe takes whole units of it")
    if problems:
        raise ValidationFailed("\n".join(problems), details=[{"message": p} for p in problems])
    params: dict[str, Any] = {
        "amount": converted,
        "metadata": {ORDER_ID_KEY: order_id, WORKSPACE_ID_KEY: workspace_id},
    }
    if payment_intent is not None:
        params["payment_intent"] = payment_intent
    else:
        params["charge"] = charge
    return params


def build_session_params(
    *,
    order_id: str,
    workspace_id: str,
    mode: CheckoutMode,
    currency: str,
    lines: Sequence[CheckoutLine],
    success_url: str,
    cancel_url: str,
    customer_email: str | None = None,
    trial_days: int | None = None,
    metadata: Mapping[str, str] | None = None,
) -> dict[str, Any]:
    """The ``POST /v1/checkout/sessions`` parameters (before form encoding); raises ValidationFailed."""
    problems = _order_problems(order_id, workspace_id, currency)
    if mode not in ("payment", "subscription"):
        problems.append(f"mode must be 'payment' or 'subscription', not {mode!r}")
    cur = currency.lower()
    if not lines:
        problems.append("at least one line is required")
    line_items: list[dict[str, Any]] = []
    recurring = 0
    for i, line in enumerate(lines):
        name, amount, quantity = line.get("name"), line.get("unit_amount"), line.get("quantity")
        interval = line.get("interval")
        if not isinstance(name, str) or not name.strip():
            problems.append(f"lines[{i}].name is empty")
        if not isinstance(amount, int) or isinstance(amount, bool) or amount < 0:
            problems.append(f"lines[{i}].unit_amount must be a non-negative integer in minor units")
        if not isinstance(quantity, int) or isinstance(quantity, bool) or quantity < 1:
            problems.append(f"lines[{i}].quantity must be a positive integer")
        if isinstance(amount, int) and currencies.is_active(currency.upper()):
            amount = _to_stripe(cur, amount, i, problems)
        price_data: dict[str, Any] = {"currency": cur, "unit_amount": amount, "product_data": {"name": name}}
        if interval is not None:
            if interval not in ("month", "year"):
                problems.append(f"lines[{i}].interval must be 'month' or 'year'")
            elif mode == "payment":
                problems.append(f"lines[{i}] is recurring, which needs mode 'subscription'")
            recurring += 1
            price_data["recurring"] = {"interval": interval}
        line_items.append({"price_data": price_data, "quantity": quantity})
    if mode == "subscription" and lines and not recurring:
        problems.append("mode 'subscription' needs at least one line with an interval")
    if trial_days is not None and (mode != "subscription" or isinstance(trial_days, bool) or trial_days < 1):
        problems.append("trial_days must be a positive integer, and only with mode 'subscription'")
    extra = dict(metadata or {})
    for key in (ORDER_ID_KEY, WORKSPACE_ID_KEY):
        if key in extra:
            problems.append(f"metadata key {key!r} is reserved")
    if any(not isinstance(v, str) for v in extra.values()):
        problems.append("metadata values must be strings")
    if problems:
        raise ValidationFailed("\n".join(problems), details=[{"message": p} for p in problems])

    tags = {**extra, ORDER_ID_KEY: order_id, WORKSPACE_ID_KEY: workspace_id}
    params: dict[str, Any] = {
        "mode": mode,
        "line_items": line_items,
        "success_url": success_url,
        "cancel_url": cancel_url,
        "client_reference_id": order_id,
        "metadata": tags,
    }
    if customer_email:
        params["customer_email"] = customer_email
    if mode == "subscription":
        subscription_data: dict[str, Any] = {"metadata": dict(tags)}
        if trial_days is not None:
            subscription_data["trial_period_days"] = trial_days
        params["subscription_data"] = subscription_data
    else:
        params["payment_intent_data"] = {"metadata": dict(tags)}
    return params


def _to_stripe(currency: str, amount: int, line: int, problems: list[str]) -> int:
    """ISO minor units -> Stripe's unit for the currency (they differ for MGA and ISK)."""
    converted = currencies.to_provider_units("stripe", currency, amount)
    if converted is None:
        shown = Money(currency.upper(), amount).format()
        problems.append(
            f"lines[{line}].unit_amount {shown} cannot be charged: Stripe takes whole units of it"
        )
        return amount
    return converted


def _answer(obj: stripe.StripeObject) -> dict[str, Any]:
    """Stripe's answer as JSON: a StripeObject is not a dict (v15+), so keep the body exactly as Stripe sent it."""
    response = obj.last_response
    raw = _dict(response.data) if response is not None else {}
    return raw or obj.to_dict(for_json=True)


def _provider_error(
    exc: stripe.StripeError, *, refusal: bool = False, refused: type[ProviderError] | None = None
) -> ProviderError:
    """Stripe's error (its type, code and message) as our 502. With ``refusal``, an answer in which Stripe
    refused the request itself (a 4xx other than authentication and rate limits: the charge is already
    refunded, the amount is too large, the key was used with other parameters) is RefundRefused (409); with
    ``refused``, that class (a 409) instead."""
    error = _dict(_dict(exc.json_body).get("error"))
    message = error.get("message") or exc.user_message or type(exc).__name__
    details = {
        "provider": "stripe",
        "type": error.get("type") or _error_type(exc),
        "code": error.get("code") or exc.code,
        "message": message,
        "param": error.get("param"),
        "decline_code": error.get("decline_code"),
        "http_status": exc.http_status,
        "request_id": exc.request_id,
    }
    status = exc.http_status or 0
    if 400 <= status < 500 and status not in (401, 403, 429):
        if refused is not None:
            return refused(f"Stripe refused the request: {message}", details=details)
        if refusal:
            return RefundRefused(f"Stripe refused the refund: {message}", details=details)
    return ProviderError(f"Stripe refused the request: {message}", details=details)


def _error_type(exc: stripe.StripeError) -> str:
    if isinstance(exc, stripe.APIConnectionError):
        return "api_connection_error"
    return "api_error"
