"""Stripe webhooks in: the verified body decoded to a :class:`WebhookEvent`, then reduced by
:func:`normalize` to a provider-independent :class:`PaymentEvent` (no state, no database)."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Literal

from offerloop.checkout.exceptions import WebhookRefused
from offerloop.core import currencies

#: Reserved metadata keys: every object we create in Stripe carries them back to us.
ORDER_ID_KEY = "order_id"
WORKSPACE_ID_KEY = "workspace_id"
PROVIDER = "stripe"  # the provider name stored with orders and payment events

PaymentEventKind = Literal[
    "checkout_completed",
    "payment_succeeded",
    "payment_failed",
    "subscription_updated",
    "subscription_canceled",
    "refunded",
    "refund_failed",
    "refund_updated",
]


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
    #: A Refund's id (``re_...``) for the refund events; their ``payment_status`` is the refund's ``status``.
    refund_id: str | None = None
    #: A failed Refund's ``failure_reason`` (``lost_or_stolen_card``, ``expired_or_canceled_card``…).
    failure_reason: str | None = None
    #: An invoice's lines flagged as prorations, summed (signed: a credit is negative); ``None`` when the invoice
    #: does not list all its lines (no ``lines``, or ``lines.has_more``).
    proration: int | None = None
    #: Whether an invoice lists proration lines (a plan change), even ones that sum to 0.
    prorated: bool = False
    #: A subscription's ``pause_collection`` (its ``behavior``), ``""`` when it is unset, ``None`` when absent.
    pause_collection: str | None = None


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
    # A Refund (data.object is the Refund) that Stripe accepted as ``pending`` can end ``failed`` (or, for some
    # payment methods, ``canceled``): ``refund.failed``, and ``refund.updated`` / ``charge.refund.updated``
    # with that status, all say the money did not go back. Any other status is ``refund_updated``.
    "refund.failed": "refund_failed",
    "refund.updated": "refund_updated",
    "charge.refund.updated": "refund_updated",
}

#: The statuses of a Refund that gave nothing back after all.
REFUND_UNDONE = ("failed", "canceled")


def normalize(event: WebhookEvent) -> PaymentEvent | None:
    """The provider-independent view of the events offerloop acts on; any other type is ``None``."""
    kind = _KINDS.get(event.type)
    if kind is None:
        return None
    obj = event.object
    base: dict[str, Any] = {
        "kind": kind,
        "provider": PROVIDER,
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
    elif event.type.startswith(("refund.", "charge.refund.")):
        fields = _from_refund(obj)
        if event.type == "refund.failed" or fields["payment_status"] in REFUND_UNDONE:
            base["kind"] = "refund_failed"
    else:
        fields = _from_charge(obj)
    metadata = fields.pop("metadata")
    # Stripe counts some currencies in another unit than ISO 4217 (MGA, ISK): back to ISO minor units
    if base["currency"] and currencies.is_active(base["currency"].upper()):
        for key in ("amount", "amount_refunded", "fee", "proration"):
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
        "proration": _prorations(obj),
        "prorated": _prorations(obj, listed=True) is not None,
    }


def _prorations(invoice: dict[str, Any], *, listed: bool = False) -> int | None:
    """The sum of an invoice's proration lines: ``proration`` on the line (API versions before 2025-03-31), else
    ``parent.subscription_item_details.proration`` / ``parent.invoice_item_details.proration``. ``None`` when
    the invoice does not list all its lines (with ``listed``: also when it lists no proration line)."""
    lines = _dict(invoice.get("lines"))
    rows = lines.get("data")
    if not isinstance(rows, list) or not rows or lines.get("has_more") is True:
        return None
    total, found = 0, False
    for row in rows:
        if not isinstance(row, dict):
            return None
        parent = _dict(row.get("parent"))
        flags = (row.get("proration"), _dict(parent.get("subscription_item_details")).get("proration"),
                 _dict(parent.get("invoice_item_details")).get("proration"))  # fmt: skip
        if True in flags:
            amount = _int(row.get("amount"))
            if amount is None:
                return None
            total, found = total + amount, True
    return None if listed and not found else total


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
        "pause_collection": _pause_collection(obj),
    }


def _pause_collection(obj: dict[str, Any]) -> str | None:
    """``pause_collection.behavior`` of a subscription (``void``, ``keep_as_draft``, ``mark_uncollectible``),
    ``""`` when Stripe says it is unset (``null``), ``None`` when the object does not say."""
    if "pause_collection" not in obj:
        return None
    value = obj.get("pause_collection")
    if value is None or value == "":
        return ""
    return _str(_dict(value).get("behavior")) or "void"


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


def _from_refund(obj: dict[str, Any]) -> dict[str, Any]:
    return {
        "metadata": _metadata(obj.get("metadata")),
        "refund_id": _str(obj.get("id")),
        "charge_id": _id(obj.get("charge")),
        "payment_intent_id": _id(obj.get("payment_intent")),
        "amount": _int(obj.get("amount")),
        "payment_status": _str(obj.get("status")),
        "failure_reason": _str(obj.get("failure_reason")),
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
