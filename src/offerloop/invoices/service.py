"""Invoices and credit notes: one numbered document per paid order, and one per refund, referring to it.

Numbers are sequential and gapless per workspace and kind (``INV-000001``, ``CN-000001``): the next number
is taken from a counter row locked for the rest of the transaction that stores the document, so a rollback
returns the number and concurrent issuers queue (PostgreSQL row lock; SQLite has one writer). A document is
issued once per source (the order; the refund event), checked again under that lock, so an event seen twice
or two workers racing on one order make one document.

What a document says is read from the order through checkout's service, never from the event that
triggered it: a client can send an ``Order Completed`` of its own through the tracking API, and that must
not invoice anything. A credit note credits what the order really refunded and was not credited yet.

Issuing happens in the event pipeline (``invoices.consumers``); rendering the PDF and announcing it on the
buyer's record (``Invoice Issued`` / ``Credit Note Issued``, with a signed link) is a job
(``invoices.tasks``), because the link needs the server's settings (public URL, secret) that consumers do
not have, and a PDF compile does not belong in the log's hot path.
"""

from __future__ import annotations

import hashlib
import hmac
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

from sqlalchemy.orm import Session

from offerloop.checkout import service as checkout_service
from offerloop.checkout.schemas import OrderRead
from offerloop.core.clock import utcnow
from offerloop.core.errors import OfferloopError
from offerloop.core.ids import new_id
from offerloop.core.money import Money
from offerloop.core.pages import InvalidCursor, Page, decode_cursor, page_of
from offerloop.events import service as event_service
from offerloop.identity import service as identity_service
from offerloop.invoices import repository
from offerloop.invoices.exceptions import BadInvoiceLink, InvoiceNotFound
from offerloop.invoices.render import Printable, render_pdf
from offerloop.invoices.schemas import InvoiceLine, InvoiceRead, Kind
from offerloop.jobs import queue
from offerloop.models import Invoice
from offerloop.subscriptions.exceptions import SubscriptionNotFound
from offerloop.workspaces import service as workspace_service

ANNOUNCE_KIND: Final = "invoices.announce"
PREFIXES: Final[dict[str, str]] = {"invoice": "INV", "credit_note": "CN"}
DIGITS: Final = 6
EVENTS: Final[dict[str, str]] = {"invoice": "Invoice Issued", "credit_note": "Credit Note Issued"}
LINK_PATH: Final = "/v1/invoices/download/"
# Statuses of an order that was paid (a refunded order was paid too: it keeps its invoice).
PAID: Final = frozenset({"paid", "partially_refunded", "refunded"})
# Subscription events after which a paid charge order may be waiting for its invoice.
SUBSCRIPTION_CHARGES: Final = frozenset({"Subscription Renewed", "Subscription Changed", "Payment Succeeded"})


def number_of(kind: str, seq: int) -> str:
    return f"{PREFIXES[kind]}-{seq:0{DIGITS}d}"


@dataclass(frozen=True, slots=True)
class _Draft:
    """A document's content, computed under the counter lock (a credit note's amount depends on the ones
    issued before it)."""

    order: OrderRead
    lines: list[dict[str, Any]]
    subtotal: int
    discount: int
    tax: int
    total: int
    refers_to: str | None = None


def _issue(
    session: Session, workspace_id: str, kind: str, source_key: str, draft: Callable[[], _Draft | None],
    now: datetime,
) -> Invoice | None:  # fmt: skip
    """The document of ``kind`` for ``source_key``: the one already issued, or a new one with the next
    number (None when ``draft`` finds nothing to issue)."""
    found = repository.by_source(session, workspace_id, kind, source_key)
    if found is not None:
        return found
    counter = repository.lock_counter(session, workspace_id, kind)
    # Again under the lock: a concurrent issuer of the same source has committed by now if it got there first.
    found = repository.by_source(session, workspace_id, kind, source_key)
    if found is not None:
        return found
    content = draft()
    if content is None:
        return None
    order = content.order
    seller, buyer_name, buyer_email = _parties(session, workspace_id, order.buyer_id)
    counter.last += 1
    row = Invoice(
        id=new_id("inv"), workspace_id=workspace_id, kind=kind, seq=counter.last,
        number=number_of(kind, counter.last), source_key=source_key, order_id=order.id, buyer_id=order.buyer_id,
        refers_to=content.refers_to, currency=order.currency, lines=content.lines, subtotal=content.subtotal,
        discount=content.discount, tax=content.tax, total=content.total, tax_percent=checkout_service.order_tax_percent(session=session, workspace_id=workspace_id, order_id=order.id),
        seller_name=seller, buyer_name=buyer_name, buyer_email=buyer_email, issued_at=now,
    )  # fmt: skip
    repository.add(session, row)
    queue.enqueue(session, kind=ANNOUNCE_KIND, key=row.id, workspace_id=workspace_id, now=now)
    return row


def _parties(session: Session, workspace_id: str, buyer_id: str) -> tuple[str, str | None, str | None]:
    """The seller's name and the buyer's name and e-mail as known now (frozen into the document)."""
    seller = workspace_service.get_workspace(session=session, workspace_id=workspace_id).name
    try:
        buyer = identity_service.get_buyer(session=session, workspace_id=workspace_id, buyer_id=buyer_id)
    except OfferloopError:
        return seller, None, None
    if buyer.deleted:
        return seller, None, None
    traits = buyer.traits or {}
    name = traits.get("name")
    if not isinstance(name, str) or not name.strip():
        parts = [traits.get("first_name"), traits.get("last_name")]
        name = " ".join(p.strip() for p in parts if isinstance(p, str) and p.strip()) or None
    email = next((i.value for i in buyer.identities if i.kind == "email"), None)
    if email is None and isinstance(traits.get("email"), str):
        email = traits["email"]
    return seller, (name.strip()[:200] if name else None), (email[:320] if email else None)


# -- issuing --------------------------------------------------------------------------------------------


def _invoice_draft(order: OrderRead) -> _Draft:
    lines = [
        InvoiceLine(title=line.title, offer_key=line.offer_key, quantity=line.quantity, unit_amount=line.unit_amount,
                    subtotal=line.subtotal, discount=line.discount, total=line.total).model_dump()
        for line in order.lines
    ]  # fmt: skip
    return _Draft(order=order, lines=lines, subtotal=order.subtotal, discount=order.discount, tax=order.tax,
                  total=order.total)  # fmt: skip


def issue_invoice(
    *, session: Session, workspace_id: str, order_id: str, now: datetime | None = None
) -> Invoice | None:
    """The order's invoice, issued now if it has none. None for an order that does not exist, was never
    paid, or charged nothing (a trial's checkout)."""
    order = checkout_service.order_named_by(session=session, workspace_id=workspace_id, order_id=order_id)
    if order is None or order.status not in PAID or order.total <= 0:
        return None
    return _issue(session, workspace_id, "invoice", order.id, lambda: _invoice_draft(order), now or utcnow())


def issue_credit_note(
    *, session: Session, workspace_id: str, order_id: str, source_key: str, amount: int | None = None,
    now: datetime | None = None,
) -> Invoice | None:  # fmt: skip
    """The credit note for one refund of the order (``source_key`` names the refund), referring to the
    order's invoice (issued first if missing). It credits ``amount`` (all of what is refunded and not yet
    credited when None), never more than that: the credit notes of an order add up to what it refunded."""
    order = checkout_service.order_named_by(session=session, workspace_id=workspace_id, order_id=order_id)
    if order is None or order.status not in PAID or order.refunded <= 0:
        return None
    at = now or utcnow()
    invoice = issue_invoice(session=session, workspace_id=workspace_id, order_id=order.id, now=at)
    if invoice is None:
        return None

    def draft() -> _Draft | None:
        credited = sum(c.total for c in repository.of_order(session, workspace_id, order.id, "credit_note"))
        left = order.refunded - credited
        value = left if amount is None else min(amount, left)
        if value <= 0:
            return None
        # Tax is credited in proportion to the refund, by cumulative shares: once the whole order is refunded
        # its credit notes' tax adds up to the invoice's exactly.
        tax = (credited + value) * order.tax // order.total - credited * order.tax // order.total
        net = value - tax
        line = InvoiceLine(title=f"Refund of invoice {invoice.number}", quantity=1, unit_amount=net, subtotal=net,
                           discount=0, total=net)  # fmt: skip
        return _Draft(order=order, lines=[line.model_dump()], subtotal=net, discount=0, tax=tax, total=value,
                      refers_to=invoice.number)  # fmt: skip

    return _issue(session, workspace_id, "credit_note", source_key, draft, at)


def issue_for_subscription(
    *, session: Session, workspace_id: str, subscription_id: object, now: datetime | None = None
) -> list[Invoice]:
    """Invoices for the subscription's paid charges (renewals, plan changes) that have none yet."""
    if not isinstance(subscription_id, str) or not subscription_id or len(subscription_id) > 40:
        return []
    try:
        orders = checkout_service.subscription_orders(
            session=session, workspace_id=workspace_id, subscription_id=subscription_id
        )
    except SubscriptionNotFound:
        return []
    out = []
    for order in reversed(orders):  # oldest first: numbers follow the order of the charges
        row = issue_invoice(session=session, workspace_id=workspace_id, order_id=order.id, now=now)
        if row is not None:
            out.append(row)
    return out


@dataclass(frozen=True, slots=True)
class Trigger:
    """What the consumer passes on from one logged track event."""

    name: str
    message_id: str
    properties: dict[str, Any]


def on_logged_events(*, session: Session, workspace_id: str, events: Iterable[Trigger]) -> None:
    """Issue what the events call for (idempotent: an event seen again issues nothing new)."""
    for event in events:
        props = event.properties
        if event.name == "Order Completed":
            issue_invoice(session=session, workspace_id=workspace_id, order_id=props.get("order_id"))  # type: ignore[arg-type]
        elif event.name == "Order Refunded":
            amount = props.get("amount_minor")
            issue_credit_note(
                session=session, workspace_id=workspace_id, order_id=props.get("order_id"),  # type: ignore[arg-type]
                source_key=event.message_id[:255],
                amount=amount if isinstance(amount, int) and not isinstance(amount, bool) and amount > 0 else None,
            )  # fmt: skip
        elif event.name in SUBSCRIPTION_CHARGES:
            issue_for_subscription(
                session=session, workspace_id=workspace_id, subscription_id=props.get("subscription_id")
            )


# -- the PDF and the announcement ------------------------------------------------------------------------


def printable(row: Invoice) -> Printable:
    return Printable(
        kind=row.kind, number=row.number, issued_on=row.issued_at.date(), seller_name=row.seller_name,
        buyer_name=row.buyer_name, buyer_email=row.buyer_email, order_id=row.order_id, refers_to=row.refers_to,
        currency=row.currency, lines=row.lines, subtotal=row.subtotal, discount=row.discount, tax=row.tax,
        total=row.total, tax_percent=row.tax_percent,
    )  # fmt: skip


def _signature(secret: str, workspace_id: str, invoice_id: str) -> str:
    message = f"invoice:{workspace_id}:{invoice_id}".encode()
    return hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()


def download_path(*, session: Session, secret: str, row: Invoice) -> str:
    """The signed path of the document's PDF. It does not expire: it is the buyer's copy of a document
    they keep (the receipt e-mail links to it); changing the server secret revokes every link."""
    key = workspace_service.signing_secret(session=session, configured=secret)
    return f"{LINK_PATH}{row.workspace_id}.{row.id}.{_signature(key, row.workspace_id, row.id)}"


def announce(
    *, session: Session, workspace_id: str, invoice_id: str, secret: str, public_url: str,
    now: datetime | None = None,
) -> bool:  # fmt: skip
    """Render the document's PDF (once) and record it on the buyer's record (once, by ``messageId``);
    False when there is no such document."""
    row = repository.by_id(session, workspace_id, invoice_id)
    if row is None:
        return False
    if row.pdf is None:
        row.pdf = render_pdf(printable(row))
    if row.announced_at is not None:
        return True
    url = public_url.rstrip("/") + download_path(session=session, secret=secret, row=row)
    props: dict[str, Any] = {"number": row.number, "kind": row.kind, "order_id": row.order_id,
                             "total_minor": row.total, "currency": row.currency,
                             "total": Money(row.currency, row.total).format(), "url": url}  # fmt: skip
    if row.refers_to:
        props["refers_to"] = row.refers_to
    try:
        buyer = identity_service.get_buyer(session=session, workspace_id=workspace_id, buyer_id=row.buyer_id)
    except OfferloopError:
        buyer = None
    if buyer is not None and not buyer.deleted:  # an erased buyer gets no new personal data
        message = event_service.buyer_track(
            session, workspace_id, buyer.id, EVENTS[row.kind], props, f"{row.id}-issued"
        )
        refused = event_service.record_server_events(session, workspace_id, [message])
        if refused:
            raise RuntimeError(f"the {EVENTS[row.kind]} event was refused: {refused[0].message}")
    row.announced_at = now or utcnow()
    return True


def forget(*, session: Session, workspace_id: str, buyer_ids: Iterable[str]) -> int:
    """GDPR erasure: the buyer's documents keep their numbers and amounts (bookkeeping, like orders) but lose
    the name and e-mail printed on them; the stored PDF is dropped and renders again without them.
    Returns how many documents changed."""
    rows = repository.of_buyers(session, workspace_id, list(buyer_ids))
    for row in rows:
        row.buyer_name = row.buyer_email = None
        row.pdf = None
    return len(rows)


# -- reads ------------------------------------------------------------------------------------------------


def invoice_read(row: Invoice, url: str) -> InvoiceRead:
    return InvoiceRead(
        id=row.id, number=row.number, kind=row.kind, order_id=row.order_id, buyer_id=row.buyer_id,
        refers_to=row.refers_to, currency=row.currency, lines=[InvoiceLine.model_validate(x) for x in row.lines],
        subtotal=row.subtotal, discount=row.discount, tax=row.tax, total=row.total, tax_percent=row.tax_percent,
        formatted_total=Money(row.currency, row.total).format(), seller_name=row.seller_name,
        buyer_name=row.buyer_name, buyer_email=row.buyer_email, issued_at=row.issued_at, download_url=url,
    )  # fmt: skip


def _reader(session: Session, secret: str, public_url: str) -> Callable[[Invoice], InvoiceRead]:
    base = public_url.rstrip("/")
    return lambda row: invoice_read(row, base + download_path(session=session, secret=secret, row=row))


def get_invoice(
    *, session: Session, workspace_id: str, number: str, secret: str, public_url: str
) -> InvoiceRead:
    row = repository.by_number(session, workspace_id, number)
    if row is None:
        raise InvoiceNotFound(f"no invoice or credit note {number} in this workspace")
    return _reader(session, secret, public_url)(row)


def list_invoices(
    *, session: Session, workspace_id: str, limit: int, secret: str, public_url: str, cursor: str | None = None,
    buyer_id: str | None = None, order_id: str | None = None, kind: Kind | None = None,
) -> Page[InvoiceRead]:  # fmt: skip
    """The workspace's invoices and credit notes, newest first (ids are time-ordered and unique). A buyer's
    are those of its lineage (a merge moves no document); a merged-away id answers with its survivor's."""
    after = decode_cursor(cursor, types=(str,))
    if after is not None and not after[0].startswith("inv_"):  # another list's cursor
        raise InvalidCursor("cursor does not belong to this list: pass the next_cursor of its previous page")
    buyer_ids = None
    if buyer_id is not None:
        buyer_ids = identity_service.survivor_lineage(
            session=session, workspace_id=workspace_id, buyer_id=buyer_id
        )
    rows = repository.page(session, workspace_id, limit=limit + 1, before_id=after[0] if after else None,
                           buyer_ids=buyer_ids, order_id=order_id, kind=kind)  # fmt: skip
    return page_of(rows, limit, key=lambda r: (r.id,), item=_reader(session, secret, public_url))


def _pdf(session: Session, row: Invoice) -> tuple[bytes, str]:
    """The stored PDF, or the same bytes rendered now (before the announce job has run)."""
    content = repository.pdf_of(session, row.workspace_id, row.id)
    return (content if content is not None else render_pdf(printable(row))), f"{row.number}.pdf"


def pdf_by_number(*, session: Session, workspace_id: str, number: str) -> tuple[bytes, str]:
    """The PDF and its file name."""
    row = repository.by_number(session, workspace_id, number)
    if row is None:
        raise InvoiceNotFound(f"no invoice or credit note {number} in this workspace")
    return _pdf(session, row)


def open_link(*, session: Session, token: str, secret: str) -> tuple[bytes, str]:
    """The PDF behind a signed download token (``<workspace>.<invoice>.<signature>``)."""
    parts = token.split(".")
    if len(parts) != 3 or not all(parts):
        raise BadInvoiceLink("this link is not valid")
    workspace_id, invoice_id, sig = parts
    key = workspace_service.signing_secret(session=session, configured=secret)
    expected = _signature(key, workspace_id, invoice_id)
    if not hmac.compare_digest(expected.encode(), sig.encode("utf-8", "replace")):
        raise BadInvoiceLink("this link is not valid")
    row = repository.by_id(session, workspace_id, invoice_id)
    if row is None:
        raise BadInvoiceLink("this link is not valid")
    return _pdf(session, row)
