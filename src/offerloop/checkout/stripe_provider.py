"""Stripe as a payment provider: Checkout Sessions out, signed webhooks in.

Every call to Stripe goes through the official SDK (``stripe.StripeClient``) pointed at
``StripeConfig.api_base``, so the same code runs against api.stripe.com and against a loopback
stand-in in tests. Webhooks are verified by the SDK on the raw request body before any byte of it
is parsed, then reduced by :func:`normalize` to a provider-independent :class:`PaymentEvent`.

This module holds no state and touches no database: storing orders and acting on events belong
to the caller.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, Literal, NotRequired, TypedDict, cast

import stripe

from offerloop.checkout.exceptions import ProviderError, WebhookRefused
from offerloop.core import currencies
from offerloop.core.errors import ValidationFailed
from offerloop.core.money import Money

if TYPE_CHECKING:
    from stripe.params.checkout import SessionCreateParams

__all__ = [
    "CheckoutLine",
    "CheckoutSession",
    "PaymentEvent",
    "PaymentEventKind",
    "StripeConfig",
    "StripeProvider",
    "WebhookEvent",
    "normalize",
    "sign_payload",
]

CheckoutMode = Literal["payment", "subscription"]
Interval = Literal["month", "year"]
PaymentEventKind = Literal[
    "checkout_completed",
    "payment_succeeded",
    "payment_failed",
    "subscription_updated",
    "subscription_canceled",
    "refunded",
]

#: Reserved metadata keys: every object we create in Stripe carries them back to us.
ORDER_ID_KEY = "order_id"
WORKSPACE_ID_KEY = "workspace_id"
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
class WebhookEvent:
    """A verified Stripe event: ``object`` is ``data.object``, ``raw`` the whole decoded body."""

    id: str
    type: str
    created: int
    object: dict[str, Any] = field(repr=False)
    raw: dict[str, Any] = field(repr=False)


@dataclass(frozen=True, slots=True)
class PaymentEvent:
    """A provider-independent fact about money. Amounts are integers in minor units.

    ``order_id`` is ``None`` when the provider object carries no reference to one of our orders
    (for instance a refund of a charge created outside offerloop); the caller may still match it
    through the provider ids.
    """

    kind: PaymentEventKind
    provider: str
    provider_event_id: str
    occurred_at: datetime
    order_id: str | None = None
    workspace_id: str | None = None
    amount: int | None = None
    currency: str | None = None
    amount_refunded: int | None = None
    fee: int | None = None
    session_id: str | None = None
    payment_intent_id: str | None = None
    subscription_id: str | None = None
    customer_id: str | None = None
    invoice_id: str | None = None
    charge_id: str | None = None
    payment_status: str | None = None
    subscription_status: str | None = None
    metadata: Mapping[str, str] = field(default_factory=dict)
    #: An invoice's ``billing_reason`` (``subscription_create``, ``subscription_cycle``, ``subscription_update``…).
    billing_reason: str | None = None
    #: An invoice's ``attempt_count``: how many times Stripe tried to collect it.
    attempt_count: int | None = None
    #: A subscription's ``cancel_at_period_end``.
    cancel_at_period_end: bool | None = None
    #: A subscription's billing interval (``month``/``year``) read from its items' recurring prices.
    interval: str | None = None
    #: The top-level fields an ``*.updated`` event says changed (``data.previous_attributes``).
    changed: tuple[str, ...] = ()


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

    name = "stripe"

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

        # A StripeObject is not a dict (v15+): keep the JSON exactly as Stripe sent it.
        response = session.last_response
        raw = _dict(response.data) if response is not None else {}
        raw = raw or session.to_dict(for_json=True)
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
    problems: list[str] = []
    if not order_id or len(order_id) > _MAX_REFERENCE_LEN:
        problems.append(f"order_id must be 1..{_MAX_REFERENCE_LEN} characters")
    if not workspace_id:
        problems.append("workspace_id is empty")
    if mode not in ("payment", "subscription"):
        problems.append(f"mode must be 'payment' or 'subscription', not {mode!r}")
    cur = currency.lower()
    if not currencies.is_active(currency.upper()):
        problems.append(f"currency must be an active ISO 4217 code, not {currency!r}")
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


def _provider_error(exc: stripe.StripeError) -> ProviderError:
    """Stripe's error (its type, code and message) as our 502."""
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
    return ProviderError(f"Stripe refused the request: {message}", details=details)


def _error_type(exc: stripe.StripeError) -> str:
    if isinstance(exc, stripe.APIConnectionError):
        return "api_connection_error"
    return "api_error"


# -- webhook decoding ---------------------------------------------------------------------------


def _signature_timestamp(header: str) -> int:
    """The ``t=`` element of a header the SDK has already accepted."""
    for item in header.split(","):
        parts = item.split("=", 2)  # the same split the SDK makes
        if parts[0] == "t" and len(parts) > 1:
            return int(parts[1])
    raise WebhookRefused("Webhook signature has no timestamp")  # unreachable after verify_header


def parse_event(raw_body: bytes) -> WebhookEvent:
    """Decode an (already verified) event body; anything but a Stripe event is ``invalid_payload``."""
    try:
        data = json.loads(raw_body)
    except (UnicodeDecodeError, ValueError) as exc:
        raise WebhookRefused("Webhook body is not JSON", code="invalid_payload") from exc
    if not isinstance(data, dict):
        raise WebhookRefused("Webhook body is not a JSON object", code="invalid_payload")
    event_id, event_type, created = data.get("id"), data.get("type"), data.get("created")
    inner = data.get("data")
    obj = inner.get("object") if isinstance(inner, dict) else None
    if (
        not isinstance(event_id, str)
        or not event_id
        or not isinstance(event_type, str)
        or not event_type
        or not isinstance(created, int)
        or isinstance(created, bool)
        or not _MIN_CREATED <= created <= _MAX_CREATED
        or not isinstance(obj, dict)
    ):
        raise WebhookRefused(
            "Webhook body is not an event (id, type, created, data.object)", code="invalid_payload"
        )
    return WebhookEvent(id=event_id, type=event_type, created=created, object=obj, raw=data)


#: ``created`` is a Unix time in seconds; anything outside 1970..9999 is not a Stripe event (and would not
#: convert to a datetime: ``1e20`` used to be a 500).
_MIN_CREATED = 0
_MAX_CREATED = 253_402_300_799  # 9999-12-31T23:59:59Z


# -- normalisation ------------------------------------------------------------------------------

_KINDS: dict[str, PaymentEventKind] = {
    "checkout.session.completed": "checkout_completed",
    # Delayed payment methods (bank debits): completed with payment_status "unpaid", then one of these.
    "checkout.session.async_payment_succeeded": "payment_succeeded",
    "checkout.session.async_payment_failed": "payment_failed",
    "invoice.paid": "payment_succeeded",
    "invoice.payment_failed": "payment_failed",
    "customer.subscription.updated": "subscription_updated",
    "customer.subscription.deleted": "subscription_canceled",
    "charge.refunded": "refunded",
}


def normalize(event: WebhookEvent) -> PaymentEvent | None:
    """The provider-independent view of the events offerloop acts on; any other type is ``None``."""
    kind = _KINDS.get(event.type)
    if kind is None:
        return None
    obj = event.object
    base: dict[str, Any] = {
        "kind": kind,
        "provider": StripeProvider.name,
        "provider_event_id": event.id,
        "occurred_at": datetime.fromtimestamp(event.created, tz=UTC),
        "currency": _str(obj.get("currency")),
        "customer_id": _id(obj.get("customer")),
    }
    if event.type.startswith("checkout.session."):
        fields = _from_session(obj)
    elif event.type.startswith("invoice."):
        fields = _from_invoice(obj, paid=kind == "payment_succeeded")
    elif event.type.startswith("customer.subscription."):
        fields = _from_subscription(obj)
    else:
        fields = _from_charge(obj)
    metadata = fields.pop("metadata")
    # Stripe counts some currencies in another unit than ISO 4217 (MGA, ISK): back to ISO minor units
    if base["currency"] and currencies.is_active(base["currency"].upper()):
        for key in ("amount", "amount_refunded", "fee"):
            if fields.get(key) is not None:
                fields[key] = currencies.from_provider_units("stripe", base["currency"], fields[key])
    previous = _dict(event.raw.get("data")).get("previous_attributes")
    fields["changed"] = tuple(sorted(str(k) for k in previous)) if isinstance(previous, dict) else ()
    fields["order_id"] = fields.get("order_id") or metadata.get(ORDER_ID_KEY)
    fields["workspace_id"] = metadata.get(WORKSPACE_ID_KEY)
    return PaymentEvent(**base, **fields, metadata=metadata)


def _from_session(obj: dict[str, Any]) -> dict[str, Any]:
    return {
        "order_id": _str(obj.get("client_reference_id")),
        "metadata": _metadata(obj.get("metadata")),
        "session_id": _str(obj.get("id")),
        "amount": _int(obj.get("amount_total")),
        "payment_intent_id": _id(obj.get("payment_intent")),
        "subscription_id": _id(obj.get("subscription")),
        "invoice_id": _id(obj.get("invoice")),
        "payment_status": _str(obj.get("payment_status")),
    }


def _from_invoice(obj: dict[str, Any], *, paid: bool) -> dict[str, Any]:
    # Since API version 2025-03-31 the subscription lives under parent.subscription_details and the
    # payment under payments.data[].payment; older versions carry subscription/payment_intent/charge
    # on the invoice itself (and, from 2023-06, subscription_details.metadata). Read both.
    details = _dict(_dict(obj.get("parent")).get("subscription_details")) or _dict(
        obj.get("subscription_details")
    )
    metadata = {**_line_metadata(obj), **_metadata(details.get("metadata")), **_metadata(obj.get("metadata"))}
    payment = _first_invoice_payment(obj)
    return {
        "metadata": metadata,
        "invoice_id": _str(obj.get("id")),
        "subscription_id": _id(details.get("subscription")) or _id(obj.get("subscription")),
        "payment_intent_id": _id(obj.get("payment_intent")) or _id(payment.get("payment_intent")),
        "charge_id": _id(obj.get("charge")) or _id(payment.get("charge")),
        "amount": _int(obj.get("amount_paid") if paid else obj.get("amount_due")),
        "payment_status": _str(obj.get("status")),
        "billing_reason": _str(obj.get("billing_reason")),
        "attempt_count": _int(obj.get("attempt_count")),
    }


def _from_subscription(obj: dict[str, Any]) -> dict[str, Any]:
    items = obj.get("items")
    total: int | None = None
    interval: str | None = None
    for item in items.get("data", []) if isinstance(items, dict) else []:
        price = item.get("price") if isinstance(item, dict) else None
        unit = _int(price.get("unit_amount")) if isinstance(price, dict) else None
        recurring = _dict(price.get("recurring")) if isinstance(price, dict) else {}
        interval = interval or _str(recurring.get("interval"))
        quantity = _int(item.get("quantity")) if isinstance(item, dict) else None
        if unit is None:
            total = None
            break
        total = (total or 0) + unit * (1 if quantity is None else quantity)
    return {
        "metadata": _metadata(obj.get("metadata")),
        "subscription_id": _str(obj.get("id")),
        "invoice_id": _id(obj.get("latest_invoice")),
        "amount": total,
        "interval": interval,
        "subscription_status": _str(obj.get("status")),
        "cancel_at_period_end": obj.get("cancel_at_period_end")
        if isinstance(obj.get("cancel_at_period_end"), bool)
        else None,
    }


def _from_charge(obj: dict[str, Any]) -> dict[str, Any]:
    balance = obj.get("balance_transaction")
    fee = _int(balance.get("fee")) if isinstance(balance, dict) else None  # only when expanded
    return {
        "metadata": _metadata(obj.get("metadata")),
        "charge_id": _str(obj.get("id")),
        "payment_intent_id": _id(obj.get("payment_intent")),
        "invoice_id": _id(obj.get("invoice")),
        "amount": _int(obj.get("amount")),
        "amount_refunded": _int(obj.get("amount_refunded")),
        "fee": fee,
        "payment_status": _str(obj.get("status")),
    }


def _first_invoice_payment(invoice: dict[str, Any]) -> dict[str, Any]:
    """``payments.data[].payment`` of the paid (else the first) InvoicePayment, when included."""
    payments = invoice.get("payments")
    rows = payments.get("data") if isinstance(payments, dict) else None
    if not isinstance(rows, list):
        return {}
    dicts = [r for r in rows if isinstance(r, dict)]
    chosen = next((r for r in dicts if r.get("status") == "paid"), dicts[0] if dicts else {})
    payment = chosen.get("payment")
    return payment if isinstance(payment, dict) else {}


def _line_metadata(invoice: dict[str, Any]) -> dict[str, str]:
    """Subscription line items carry a copy of the subscription's metadata."""
    lines = invoice.get("lines")
    rows = lines.get("data") if isinstance(lines, dict) else None
    for row in rows if isinstance(rows, list) else []:
        found = _metadata(row.get("metadata")) if isinstance(row, dict) else {}
        if ORDER_ID_KEY in found:
            return found
    return {}


def _dict(value: Any) -> dict[str, Any]:
    return value if isinstance(value, dict) else {}


def _metadata(value: Any) -> dict[str, str]:
    if not isinstance(value, dict):
        return {}
    return {str(k): str(v) for k, v in value.items() if v is not None}


def _id(value: Any) -> str | None:
    """An expandable field: an id string, or an expanded object's id."""
    if isinstance(value, dict):
        value = value.get("id")
    return value if isinstance(value, str) and value else None


def _str(value: Any) -> str | None:
    return value if isinstance(value, str) and value else None


def _int(value: Any) -> int | None:
    return value if isinstance(value, int) and not isinstance(value, bool) else None
