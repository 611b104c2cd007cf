"""What counts as a purchase — the one definition analytics, LTV and attribution share (docs/analytics.md).

* **A paid checkout order**: an ``orders`` row with status ``paid`` or ``partially_refunded``, at its
  ``paid_at``, worth ``total - refunded`` (tax included, net of refunds). A fully ``refunded`` order is no
  purchase (the money went back), nor is a ``pending``, ``canceled``, ``expired`` or ``unpaid`` one.
  Renewals and plan-change charges are orders too. Zero-value orders (a free trial) count (CDNOW convention).
  Checkout's own ``Order Completed`` events (one per line) name the order: they are that order, counted once.
* **An ``Order Completed`` event of any other order** that a creator or offerloop's server sent
  (``context.offerloop.origin`` = ``creator``/``server``; ingestion sets it and a write-key client cannot
  forge it): ``offerloop import orders``, a creator's server-side tracking. One purchase per
  ``properties.order_id``, else one per event: at the order's earliest event (a resend is no new purchase),
  worth what its latest event says (a ``--revision`` re-import corrects the row). Worth ``total_minor`` (else ``revenue``/``total``/``value`` in major units) in
  ``properties.currency``, which must be an ISO 4217 code. An ``Order Refunded`` of the same order from a
  creator/server takes it out (``full`` absent or true: an imported refunded row) or nets the
  ``amount_minor`` it names (``full: false``).
* **Not a purchase**: an ``Order Completed`` a write-key client sent (anyone holding the public key could
  mint revenue), a suppressed event, an event of no buyer, anything of an erased buyer.

A purchase is a (buyer, instant, amount, currency) row. This module is pure: it turns one buyer's orders,
events, touchpoints and persona history into their rows; ``analytics.state`` loads and stores them.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any, Final

from offerloop.core import currencies, money

COMPLETED: Final = "Order Completed"
REFUNDED: Final = "Order Refunded"
NAMES: Final = (COMPLETED, REFUNDED)
PAID: Final = ("paid", "partially_refunded")
TRUSTED: Final = frozenset({"creator", "server"})
KEY_LENGTH: Final = 120
SEGMENT_LENGTH: Final = 64
DAY_US: Final = 86_400_000_000
_EPOCH: Final = datetime(1970, 1, 1, tzinfo=UTC)


def epoch_us(value: datetime) -> int:
    """Microseconds since 1970-01-01 UTC (a naive value is UTC)."""
    aware = value if value.tzinfo is not None else value.replace(tzinfo=UTC)
    delta = aware - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def day_of(us: int) -> int:
    return us // DAY_US


def month_of(us: int) -> int:
    d = datetime.fromtimestamp(us // 1_000_000, UTC)
    return d.year * 12 + d.month - 1


def order_key(order_id: Any) -> str | None:
    """The stored identity of an order id: itself, or a SHA-256 digest when longer than the column (so two
    long ids sharing a prefix stay distinct)."""
    if isinstance(order_id, bool) or not isinstance(order_id, str | int):
        return None
    text = str(order_id)
    if not text:
        return None
    return text if len(text) <= KEY_LENGTH else "sha256:" + hashlib.sha256(text.encode()).hexdigest()


def event_value(props: dict[str, Any]) -> tuple[int, str | None]:
    """An order event's value in minor units: ``total_minor`` (an integer, an integral float or a numeric
    string), else ``revenue``, ``total`` or ``value`` (major units, in the currency's minor unit). A field that
    is not a finite number within ±10^15 minor units is skipped; without any, or when negative, the value is
    0 (never an error). The currency as given, upper-cased (None without one)."""
    currency = props.get("currency")
    code = currency.strip().upper() if isinstance(currency, str) and currency.strip() else None
    for name in ("total_minor", "revenue", "total", "value"):
        amount = money.reported_number(props.get(name))
        if amount is None:
            continue
        if name != "total_minor":
            try:
                digits = currencies.exponent(code) if code else 2
            except (KeyError, ValueError):
                continue
            amount = amount * (Decimal(10) ** digits)
        return money.reported_minor(amount), code
    return 0, code


def origin(context: dict[str, Any] | None) -> str:
    """Who sent a stored event (``context.offerloop.origin``; ``client`` unless the server marked it)."""
    marked = (context or {}).get("offerloop")
    found = marked.get("origin") if isinstance(marked, dict) else None
    return found if found in TRUSTED else "client"


@dataclass(frozen=True, slots=True)
class OrderRow:
    id: str
    status: str
    paid_at: datetime | None
    total: int
    refunded: int
    currency: str


@dataclass(frozen=True, slots=True)
class EventRow:
    seq: int
    name: str
    at: datetime
    properties: dict[str, Any] | None
    context: dict[str, Any] | None
    suppressed: bool


@dataclass(frozen=True, slots=True)
class Purchase:
    key: str
    at_us: int
    amount_minor: int
    refunded_minor: int
    currency: str
    source: str  # checkout | event


def purchases(
    orders: Iterable[OrderRow], events: Iterable[EventRow], checkout_orders: frozenset[str] | set[str]
) -> list[Purchase]:
    """One buyer's purchases (see the module docstring), oldest first. ``checkout_orders``: which of the order
    ids the events name are checkout orders of the workspace (their events are not purchases of their own)."""
    out: dict[str, Purchase] = {}
    for o in orders:
        if o.status in PAID and o.paid_at is not None:
            out[o.id] = Purchase(o.id, epoch_us(o.paid_at), max(o.total - o.refunded, 0), o.refunded,
                                 o.currency, "checkout")  # fmt: skip
    completed: dict[str, tuple[int, EventRow]] = {}
    first_at: dict[str, datetime] = {}
    refunds: dict[str, list[EventRow]] = {}
    for e in events:
        if e.suppressed or origin(e.context) not in TRUSTED:
            continue
        props = e.properties if isinstance(e.properties, dict) else {}
        raw_order = props.get("order_id")
        if raw_order is not None and str(raw_order) in checkout_orders:
            continue  # checkout's own event: the order counts above
        key = order_key(raw_order)
        if e.name == COMPLETED:
            slot = key or f"event:{e.seq}"
            if slot not in completed or completed[slot][0] < e.seq:
                completed[slot] = (e.seq, e)
            if slot not in first_at or e.at < first_at[slot]:
                first_at[slot] = e.at
        elif e.name == REFUNDED and key is not None:
            refunds.setdefault(key, []).append(e)
    for slot, (_, e) in completed.items():
        if slot in out:
            continue
        props = e.properties if isinstance(e.properties, dict) else {}
        amount, code = event_value(props)
        try:
            currency = currencies.normalize(code, withdrawn=True) if code else None
        except currencies.InvalidCurrency:
            currency = None
        if currency is None:
            continue
        refunded = 0
        full = False
        for r in refunds.get(slot, ()):
            rprops = r.properties if isinstance(r.properties, dict) else {}
            part = rprops.get("amount_minor")
            if (
                rprops.get("full") is False
                and isinstance(part, int)
                and not isinstance(part, bool)
                and part > 0
            ):
                refunded += part
            else:
                full = True
        if full or (amount > 0 and refunded >= amount):
            continue
        out[slot] = Purchase(
            slot, epoch_us(first_at[slot]), amount - refunded, min(refunded, amount), currency, "event"
        )
    return sorted(out.values(), key=lambda p: (p.at_us, p.key))


@dataclass(frozen=True, slots=True)
class Summary:
    first_at_us: int
    first_day: int
    second_day: int | None
    first_month: int
    purchases: int


def summarize(rows: Sequence[Purchase]) -> Summary | None:
    """First purchase, the next distinct purchase day and the count (None without purchases)."""
    if not rows:
        return None
    first = min(p.at_us for p in rows)
    days = sorted({day_of(p.at_us) for p in rows})
    return Summary(first, days[0], days[1] if len(days) > 1 else None, month_of(first), len(rows))


def bought_day(rows: Sequence[Purchase], since_us: int) -> int | None:
    """The UTC day of the first purchase at or after ``since_us`` (``rows`` oldest first)."""
    return next((day_of(p.at_us) for p in rows if p.at_us >= since_us), None)


def first_touch(touches: Iterable[tuple[datetime, int, str]]) -> tuple[str, int] | None:
    """The channel and instant of the earliest touchpoint (then the lowest id): (occurred_at, id, channel)."""
    best = min(touches, key=lambda t: (epoch_us(t[0]), t[1]), default=None)
    return None if best is None else (best[2][:SEGMENT_LENGTH], epoch_us(best[0]))


def first_assignments(changes: Iterable[tuple[str, datetime]]) -> dict[str, int]:
    """Per persona, the instant (epoch µs) of the first assignment to it: (to_persona, at) rows."""
    out: dict[str, int] = {}
    for persona, at in changes:
        us = epoch_us(at)
        key = persona[:SEGMENT_LENGTH]
        if key not in out or us < out[key]:
            out[key] = us
    return out
