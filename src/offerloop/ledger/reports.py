"""Reports over ledger entries: period payout totals, net revenue by any key, and a CSV export."""

from __future__ import annotations

import csv
import io
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime

from offerloop.core.money import Money, currency_code, exponent
from offerloop.ledger.postings import Account, Entry, EntryKind, LedgerError, balance, summarize

# Net revenue = gross - discounts - refunds: the negated sum of these accounts' postings.
_REVENUE_ACCOUNTS = frozenset({Account.REVENUE, Account.DISCOUNTS, Account.REFUNDS})

CSV_HEADER = ("occurred_at", "kind", "order_id", "account", "debit", "credit", "currency", "memo")


@dataclass(frozen=True, slots=True)
class PayoutReport:
    """Totals of one currency over ``[start, end)``. ``net`` = gross - discounts - refunds - fees (tax is
    passed through, not earned); ``orders`` counts the distinct orders sold in the period; ``paid_out`` is
    what left the creator's balance for their bank."""

    start: datetime
    end: datetime
    currency: str
    gross: Money
    discounts: Money
    refunds: Money
    tax: Money
    platform_fee: Money
    processor_fee: Money
    fees: Money
    net: Money
    paid_out: Money
    orders: int


def _require_aware(**stamps: datetime) -> None:
    for name, stamp in stamps.items():
        if stamp.tzinfo is None or stamp.utcoffset() is None:
            raise LedgerError(f"{name} must be timezone-aware")


def payout_report(entries: Iterable[Entry], *, start: datetime, end: datetime, currency: str) -> PayoutReport:
    """Period totals of the entries with ``start <= occurred_at < end``, in ``currency`` only."""
    _require_aware(start=start, end=end)
    if end < start:
        raise LedgerError("the period ends before it starts")
    cur = currency_code(currency)
    selected = [e for e in entries if start <= e.occurred_at < end]
    bal = balance(selected, currency=cur)
    orders = {e.order_id for e in selected if e.kind is EntryKind.SALE and cur in e.currencies}
    return _report(bal, len(orders), start=start, end=end, currency=cur)


def payout_totals(
    sums: Mapping[str, int], orders: int, *, start: datetime, end: datetime, currency: str
) -> PayoutReport:
    """The same report from balances already summed (account name -> minor units in ``currency``) and the
    number of orders with a sale in the period."""
    _require_aware(start=start, end=end)
    if end < start:
        raise LedgerError("the period ends before it starts")
    cur = currency_code(currency)
    bal = {account: Money(cur, int(sums.get(account.value, 0))) for account in Account}
    return _report(bal, orders, start=start, end=end, currency=cur)


def _report(
    bal: dict[Account, Money], orders: int, *, start: datetime, end: datetime, currency: str
) -> PayoutReport:
    s = summarize(bal)
    return PayoutReport(
        start=start,
        end=end,
        currency=currency,
        gross=s["gross"],
        discounts=s["discounts"],
        refunds=s["refunds"],
        tax=s["tax"],
        platform_fee=s["platform_fee"],
        processor_fee=s["processor_fee"],
        fees=s["platform_fee"] + s["processor_fee"],
        net=s["net"],
        paid_out=bal[Account.PAYOUTS_PAID],
        orders=orders,
    )


def revenue_by(
    entries: Iterable[Entry], key: Callable[[Entry], str], *, currency: str | None = None
) -> dict[str, Money]:
    """Net revenue (gross - discounts - refunds; no tax, no fees) grouped by ``key(entry)``.

    ``key`` is called only for entries that touch revenue, discounts or refunds (never for payouts). With
    ``currency`` other currencies are ignored; without it, one key mixing currencies raises CurrencyMismatch.
    """
    cur = currency_code(currency) if currency is not None else None
    out: dict[str, Money] = {}
    for entry in entries:
        lines = [
            p.amount
            for p in entry.postings
            if p.account in _REVENUE_ACCOUNTS and (cur is None or p.amount.currency == cur)
        ]
        if not lines:
            continue
        k = key(entry)
        for amount in lines:
            prev = out.get(k)
            out[k] = -amount if prev is None else prev - amount
    return out


def decimal_string(amount: Money) -> str:
    """The amount in major units with the currency's exponent, no symbol: 4900 USD -> "49.00"."""
    e = exponent(amount.currency)
    sign = "-" if amount.amount < 0 else ""
    whole, frac = divmod(abs(amount.amount), 10**e)
    return f"{sign}{whole}.{frac:0{e}d}" if e else f"{sign}{whole}"


def to_csv(entries: Iterable[Entry]) -> str:
    """One CSV row per posting, in the given order, under a header row (RFC 4180: CRLF, minimal quoting).

    The side a posting is not on is left empty. Write the text to a file opened with ``newline=""``.
    """
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\r\n")
    writer.writerow(CSV_HEADER)
    for entry in entries:
        for p in entry.postings:
            is_credit = p.amount.amount < 0
            writer.writerow(
                (
                    entry.occurred_at.isoformat(),
                    entry.kind.value,
                    entry.order_id or "",
                    p.account.value,
                    "" if is_credit else decimal_string(p.debit),
                    decimal_string(p.credit) if is_credit else "",
                    p.amount.currency,
                    p.memo,
                )
            )
    return buf.getvalue()
