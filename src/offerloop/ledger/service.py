"""The books of a workspace: record balanced entries with their attribution tags, read them back, report.

Entries are stored as one ``ledger_entries`` row (kind, order, time, tags) and its ``ledger_postings`` rows
(account, signed minor units, currency, memo); reading reconstructs ``postings.Entry`` objects, so every
report runs the same pure code (``postings``, ``reports``) as the unit tests.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import Any, Literal, cast, get_args

import orjson
from sqlalchemy.orm import Session

from offerloop.core.clock import utcnow
from offerloop.core.errors import Conflict, NotFound, OfferloopError, ValidationFailed
from offerloop.core.money import CurrencyMismatch, Money, currency_code
from offerloop.core.pages import InvalidCursor, Page, decode_cursor, page_of
from offerloop.ledger import repository
from offerloop.ledger.postings import (
    Account,
    Entry,
    EntryKind,
    LedgerError,
    Posting,
    balance,
    order_summary,
    payout_entry,
)
from offerloop.ledger.reports import payout_totals, revenue_by, to_csv
from offerloop.ledger.schemas import (
    BalanceRead,
    EntryRead,
    LedgerCheck,
    MoneyRead,
    OrderLedger,
    OrderTotals,
    PayoutRecorded,
    PayoutTotals,
    PostingRead,
    RevenueRow,
)
from offerloop.models import LedgerEntry, LedgerPosting

RevenueBy = Literal["offer", "persona", "first_touch", "last_touch"]
EntryKindName = Literal["sale", "refund", "fee", "payout", "adjustment"]
REVENUE_DIMENSIONS: tuple[str, ...] = get_args(RevenueBy)
_TOUCH_TAGS = ("persona", "first_touch", "last_touch")


class LedgerOrderNotFound(NotFound):
    code = "ledger_order_not_found"


class LedgerCorrupt(OfferloopError):
    """Stored rows that do not form a valid entry (run ``unbalanced_orders``): a fault, not bad input."""

    status_code = 500
    code = "ledger_corrupt"


# -- helpers ---------------------------------------------------------------------------------------


def _currency(value: str) -> str:
    try:
        return currency_code(value)
    except ValueError as exc:
        raise ValidationFailed(str(exc), details={"currency": value}) from None


def _aware(**stamps: datetime | None) -> None:
    for name, stamp in stamps.items():
        if stamp is not None and (stamp.tzinfo is None or stamp.utcoffset() is None):
            raise ValidationFailed(f"{name} must be timezone-aware (UTC)")


def _period(start: datetime | None, end: datetime | None) -> None:
    _aware(start=start, end=end)
    if start is not None and end is not None and end < start:
        raise ValidationFailed(f"the period ends ({end.isoformat()}) before it starts ({start.isoformat()})")


def _tags(tags: Mapping[str, Any], entry: Entry) -> dict[str, Any]:
    """The attribution snapshot, checked and normalised (offers a list, currency the entry's)."""
    if not isinstance(tags, Mapping):
        raise LedgerError("tags must be a mapping")
    out = dict(tags)
    offers = out.get("offers") or []
    if (
        isinstance(offers, str)
        or not isinstance(offers, Sequence)
        or not all(isinstance(k, str) and k for k in offers)
    ):
        raise LedgerError("tags.offers must be a list of offer keys", details={"offers": repr(offers)})
    out["offers"] = list(offers)
    for name in _TOUCH_TAGS:
        value = out.get(name)
        if value is not None and not (isinstance(value, str) and value):
            raise LedgerError(f"tags.{name} must be a non-empty string or null", details={name: repr(value)})
        out[name] = value
    currencies = sorted(entry.currencies)
    if out.get("currency") is None:
        out["currency"] = currencies[0] if len(currencies) == 1 else None
    else:
        try:
            code = currency_code(out["currency"])
        except ValueError as exc:
            raise LedgerError(f"tags.currency: {exc}") from None
        if code not in entry.currencies:
            raise LedgerError(
                f"tags.currency {code} is not a currency of the entry ({', '.join(currencies)})"
            )
        out["currency"] = code
    try:
        orjson.dumps(out)
    except TypeError as exc:
        raise LedgerError(f"tags must be JSON-serialisable: {exc}") from None
    return out


def _entry(row: LedgerEntry, postings: Sequence[LedgerPosting]) -> Entry:
    try:
        return Entry(
            EntryKind(row.kind),
            row.order_id,
            row.occurred_at,
            tuple(Posting(Account(p.account), Money(p.currency, int(p.amount)), p.memo) for p in postings),
        )
    except (LedgerError, ValueError, TypeError) as exc:
        raise LedgerCorrupt(
            f"ledger entry {row.id} cannot be read back: {exc}", details={"entry_id": row.id}
        ) from None


def _load(
    session: Session,
    workspace_id: str,
    *,
    order_id: str | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
    currency: str | None = None,
) -> list[tuple[int, Entry, dict[str, Any]]]:
    rows = repository.entries_with_postings(
        session, workspace_id, order_id=order_id, start=start, end=end, currency=currency
    )
    return [(row.id, _entry(row, postings), dict(row.tags or {})) for row, postings in rows]


def _order_entries(
    session: Session, workspace_id: str, order_id: str
) -> list[tuple[int, Entry, dict[str, Any]]]:
    loaded = _load(session, workspace_id, order_id=order_id)
    if not loaded:
        raise LedgerOrderNotFound(f"no ledger entries for order {order_id!r} in this workspace")
    return loaded


# -- writing ---------------------------------------------------------------------------------------


class PayoutConflict(Conflict):
    code = "payout_reference_conflict"


def record(
    *,
    session: Session,
    workspace_id: str,
    entry: Entry,
    tags: Mapping[str, Any],
    reference: str | None = None,
) -> int:
    """Store a balanced entry, its postings and its attribution tags; returns the entry's id. ``reference``
    (unique in the workspace) makes the entry idempotent: see ``record_payout``."""
    if not isinstance(entry, Entry):
        raise LedgerError(f"record needs a ledger Entry, got {type(entry).__name__}")
    row = repository.add_entry(
        session,
        workspace_id,
        order_id=entry.order_id,
        kind=entry.kind.value,
        occurred_at=entry.occurred_at,
        tags=_tags(tags, entry),
        reference=reference,
    )
    for p in entry.postings:
        repository.add_posting(
            session,
            workspace_id,
            entry_id=row.id,
            account=p.account.value,
            amount=p.amount.amount,
            currency=p.amount.currency,
            memo=p.memo,
            balance=False,
        )
    repository.add_to_balances(
        session, workspace_id, [(p.account.value, p.amount.currency, p.amount.amount) for p in entry.postings]
    )
    return row.id


def _payout_read(row: LedgerEntry, amount: Money, pending: Money, created: bool) -> PayoutRecorded:
    return PayoutRecorded(
        reference=row.reference or "", entry_id=row.id, currency=amount.currency, amount=amount.amount,
        formatted=amount.format(), paid_at=row.occurred_at, created=created, pending_balance=MoneyRead.of(pending),
    )  # fmt: skip


def record_payout(
    *, session: Session, workspace_id: str, reference: str, amount: int, currency: str,
    paid_at: datetime | None = None, actor: str = "api",
) -> PayoutRecorded:  # fmt: skip
    """Record money paid out to the creator's bank: ``payouts_pending`` -> ``payouts_paid``, never more than
    the pending balance. Idempotent by ``reference`` (the transfer's id): the same payout again changes
    nothing (``created`` False); the same reference with another amount or currency is a conflict."""
    reference = (reference or "").strip()
    if not reference or len(reference) > 200:
        raise ValidationFailed("reference must be 1 to 200 characters", details={"reference": reference})
    cur = _currency(currency)
    if isinstance(amount, bool) or not isinstance(amount, int) or amount <= 0:
        raise ValidationFailed("amount must be a positive integer of minor units", details={"amount": amount})
    at = paid_at or utcnow()
    _aware(paid_at=at)
    repository.lock_payouts(session, workspace_id)
    existing = repository.entry_by_reference(session, workspace_id, reference)
    prior = [e for _, e, _ in _load(session, workspace_id, currency=cur)]
    pending = balance(prior, currency=cur)[Account.PAYOUTS_PENDING] if prior else Money.zero(cur)
    if existing is not None:
        paid = [
            p
            for p in repository.postings_of(session, workspace_id, existing.id)
            if p.account == Account.PAYOUTS_PAID.value
        ]
        if (
            existing.kind != EntryKind.PAYOUT.value
            or len(paid) != 1
            or (paid[0].currency, paid[0].amount) != (cur, amount)
        ):
            raise PayoutConflict(
                f"reference {reference!r} is already recorded with another amount or currency",
                details={"reference": reference},
            )
        return _payout_read(existing, Money(cur, amount), pending, created=False)
    entry = payout_entry(reference, amount=Money(cur, amount), occurred_at=at, prior=prior)
    entry_id = record(session=session, workspace_id=workspace_id, entry=entry, reference=reference,
                      tags={"offers": [], "currency": cur, "actor": actor})  # fmt: skip
    row = repository.entry_by_reference(session, workspace_id, reference)
    assert row is not None and row.id == entry_id
    return _payout_read(row, Money(cur, amount), pending - Money(cur, amount), created=True)


# -- reading ---------------------------------------------------------------------------------------


def entries(
    *,
    session: Session,
    workspace_id: str,
    order_id: str | None = None,
    start: datetime | None = None,
    end: datetime | None = None,
) -> list[tuple[Entry, dict[str, Any]]]:
    """The workspace's entries (of one order; ``start <= occurred_at < end``) with their tags, oldest first."""
    _period(start, end)
    return [(e, tags) for _, e, tags in _load(session, workspace_id, order_id=order_id, start=start, end=end)]


def _refundable(entries_: Sequence[Entry], order_id: str) -> Money:
    s = order_summary(entries_, order_id)
    left = s["gross"] - s["discounts"] - s["refunds"] + s["tax"]
    return left if left.amount > 0 else Money.zero(left.currency)


def refundable(*, session: Session, workspace_id: str, order_id: str) -> Money:
    """What can still be refunded on the order: net revenue left plus tax left (as ``refund_entry`` allows)."""
    loaded = [e for _, e, _ in _order_entries(session, workspace_id, order_id)]
    try:
        return _refundable(loaded, order_id)
    except (LedgerError, CurrencyMismatch) as exc:
        raise LedgerCorrupt(f"order {order_id!r} cannot be summarised: {exc}") from None


def _entry_read(entry_id: int, e: Entry, tags: Mapping[str, Any]) -> EntryRead:
    return EntryRead(
        id=entry_id, kind=e.kind.value, order_id=e.order_id, occurred_at=e.occurred_at, tags=dict(tags),
        postings=[PostingRead(account=p.account.value, currency=p.amount.currency, memo=p.memo,
                              amount=p.amount.amount, formatted=p.amount.format()) for p in e.postings],
    )  # fmt: skip


def order_ledger(*, session: Session, workspace_id: str, order_id: str) -> OrderLedger:
    """The order's entries with their postings, its summary and what is still refundable (minor units and
    formatted strings)."""
    loaded = _order_entries(session, workspace_id, order_id)
    plain = [e for _, e, _ in loaded]
    try:
        summary = order_summary(plain, order_id)
        left = _refundable(plain, order_id)
    except (LedgerError, CurrencyMismatch) as exc:
        raise LedgerCorrupt(f"order {order_id!r} cannot be summarised: {exc}") from None
    return OrderLedger(
        order_id=order_id, currency=summary["gross"].currency,
        entries=[_entry_read(entry_id, e, tags) for entry_id, e, tags in loaded],
        summary=OrderTotals(**{name: MoneyRead.of(cast(Money, m)) for name, m in summary.items()}),
        refundable=MoneyRead.of(left),
    )  # fmt: skip


def list_entries(
    *, session: Session, workspace_id: str, limit: int, cursor: str | None = None, kind: EntryKindName | None = None,
    order_id: str | None = None, start: datetime | None = None, end: datetime | None = None,
    newest_first: bool = False,
) -> Page[EntryRead]:  # fmt: skip
    """The workspace's entries in the order they were booked (by id; the latest first with ``newest_first``),
    of one kind or order, with ``start <= occurred_at < end``: e.g. the payouts of a period."""
    _period(start, end)
    # the cursor names its direction, so a cursor of the other order is refused rather than misread
    after = decode_cursor(cursor, types=(str, int) if newest_first else (int,))
    if after is not None and newest_first and after[0] != "desc":
        raise InvalidCursor("cursor does not belong to this list: pass the next_cursor of its previous page")
    rows = repository.entries_page(session, workspace_id, limit=limit + 1, after_id=after[-1] if after else None,
                                   kind=kind, order_id=order_id, start=start, end=end,
                                   newest_first=newest_first)  # fmt: skip
    return page_of(
        rows,
        limit,
        key=lambda r: ("desc", r[0].id) if newest_first else (r[0].id,),
        item=lambda r: _entry_read(r[0].id, _entry(*r), r[0].tags or {}),
    )


def balances(*, session: Session, workspace_id: str) -> list[BalanceRead]:
    """Every account's balance per currency (the sum of its postings: debits positive, credits negative)."""
    return [
        BalanceRead(account=account, currency=cur, amount=amount, formatted=Money(cur, amount).format())
        for account, cur, amount in repository.account_balances(session, workspace_id)
    ]


def rebuild_balances(*, session: Session, workspace_id: str) -> int:
    """Recompute the running balances from every posting of the workspace (after postings were written
    around this domain, e.g. a bulk load); how many account/currency balances there are."""
    return repository.rebuild_balances(session, workspace_id)


def payouts(
    *, session: Session, workspace_id: str, start: datetime, end: datetime, currency: str
) -> PayoutTotals:
    """Totals of ``[start, end)`` in one currency (``reports.payout_report``)."""
    cur = _currency(currency)
    _period(start, end)
    # the report's arithmetic (reports.payout_report) over balances summed in SQL: a period of 100k orders is two
    # aggregates, not every entry loaded (tests/ledger compares the two)
    sums, orders = repository.period_sums(session, workspace_id, start=start, end=end, currency=cur)
    report = payout_totals(sums, orders, start=start, end=end, currency=cur)
    money = (
        "gross",
        "discounts",
        "refunds",
        "tax",
        "platform_fee",
        "processor_fee",
        "fees",
        "net",
        "paid_out",
    )
    return PayoutTotals(
        start=report.start, end=report.end, currency=cur, orders=report.orders,
        **{name: MoneyRead.of(getattr(report, name)) for name in money},
    )  # fmt: skip


def export_csv(
    *, session: Session, workspace_id: str, start: datetime | None = None, end: datetime | None = None
) -> str:
    """Every posting of ``[start, end)`` as CSV (``reports.to_csv``), oldest entry first."""
    _period(start, end)
    return to_csv(e for _, e, _ in _load(session, workspace_id, start=start, end=end))


def _revenue_keys(tags: Mapping[str, Any], by: str) -> list[str]:
    """The keys an entry's revenue is split over; "" stands for unattributed."""
    if by == "offer":
        return [str(k) for k in tags.get("offers") or []] or [""]
    value = tags.get(by)
    return [str(value) if value else ""]


def revenue(*, session: Session, workspace_id: str, by: str, currency: str) -> list[RevenueRow]:
    """Net revenue (gross - discounts - refunds) in ``currency`` by offer, persona, first or last touch as
    tagged at posting time, largest first; an entry of several offers is split evenly over them
    (``Money.allocate``, so the parts add up). ``key`` is None for unattributed revenue."""
    if by not in REVENUE_DIMENSIONS:
        raise ValidationFailed(
            f"by must be one of {', '.join(REVENUE_DIMENSIONS)}, got {by!r}", details={"by": by}
        )
    cur = _currency(currency)
    totals: dict[str, Money] = {}
    for _, entry, tags in _load(session, workspace_id, currency=cur):
        net = revenue_by([entry], lambda _: "", currency=cur).get("")
        if net is None:
            continue
        keys = _revenue_keys(tags, by)
        for key, part in zip(keys, net.allocate([1] * len(keys)), strict=True):
            totals[key] = totals.get(key, Money.zero(cur)) + part
    ranked = sorted(totals.items(), key=lambda kv: (-kv[1].amount, kv[0]))
    return [
        RevenueRow(key=key or None, amount=amount.amount, formatted=amount.format()) for key, amount in ranked
    ]


def revenue_page(
    *, session: Session, workspace_id: str, by: str, currency: str, limit: int, cursor: str | None = None
) -> Page[RevenueRow]:
    """``revenue`` a page at a time: largest first, then by key ("" for unattributed sorts first)."""
    after = decode_cursor(cursor, types=(str, str, int, str))
    if after is not None and after[:2] != (by, currency.upper()):  # a page of another ranking
        raise InvalidCursor("cursor does not belong to this list: pass the next_cursor of its previous page")
    rows = revenue(session=session, workspace_id=workspace_id, by=by, currency=currency)
    if after is not None:
        rows = [r for r in rows if (-r.amount, r.key or "") > (-after[2], after[3])]
    return page_of(
        rows[: limit + 1],
        limit,
        key=lambda r: (by, currency.upper(), r.amount, r.key or ""),
        item=lambda r: r,
    )


def check(*, session: Session, workspace_id: str) -> LedgerCheck:
    """Whether every entry balances, and the orders of those that do not."""
    found = unbalanced_orders(session=session, workspace_id=workspace_id)
    return LedgerCheck(balanced=not found, unbalanced_orders=found)


def unbalanced_orders(*, session: Session, workspace_id: str) -> list[str]:
    """Orders with an entry whose postings do not sum to zero in some currency (``entry:<id>`` for entries
    without an order). Must be empty: a check for tests and operations."""
    found: dict[str, None] = {}
    for entry_id, order_id, _, _ in repository.unbalanced(session, workspace_id):
        found.setdefault(order_id if order_id is not None else f"entry:{entry_id}")
    return sorted(found)
