"""Double-entry bookkeeping for creator sales: accounts, postings, balanced entries and their builders.

Sign convention: a posting's ``amount`` is signed Money, **debits positive and credits negative**, so the
postings of every entry sum to zero per currency. Asset and expense accounts grow with debits
(``buyer_payments``, ``payouts_pending``, ``payouts_paid``, ``platform_fees``, ``processor_fees``,
``discounts`` and ``refunds`` as contra-revenue); revenue and liabilities grow with credits (``revenue``,
``tax_payable``), so their balances are negative.

``buyer_payments`` is the processor clearing account: it is debited with what the buyer pays and credited as
the processor splits that money into its fee, the platform's fee and the creator's balance
(``payouts_pending``); refunds run the other way. Every sale or refund clears it within the entry, so its
debits over sales are the cash received from buyers and its credits over refunds the cash returned.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from enum import StrEnum
from typing import TypedDict

from offerloop.core.errors import OfferloopError
from offerloop.core.money import CurrencyMismatch, Money


class Account(StrEnum):
    """The ledger's accounts; each value is its stable name."""

    BUYER_PAYMENTS = "buyer_payments"
    REVENUE = "revenue"
    DISCOUNTS = "discounts"
    TAX_PAYABLE = "tax_payable"
    PLATFORM_FEES = "platform_fees"
    PROCESSOR_FEES = "processor_fees"
    REFUNDS = "refunds"
    PAYOUTS_PENDING = "payouts_pending"
    PAYOUTS_PAID = "payouts_paid"


class EntryKind(StrEnum):
    SALE = "sale"
    REFUND = "refund"
    FEE = "fee"
    PAYOUT = "payout"
    ADJUSTMENT = "adjustment"


class LedgerError(OfferloopError, ValueError):
    """An entry or an operation the books cannot accept."""

    status_code = 422
    code = "ledger_invalid"


class UnbalancedEntry(LedgerError):
    code = "ledger_unbalanced"


class RefundExceedsPayment(LedgerError):
    code = "refund_exceeds_payment"


@dataclass(frozen=True, slots=True)
class Posting:
    """One line of an entry: ``amount`` is signed, debit positive and credit negative."""

    account: Account
    amount: Money
    memo: str = ""

    def __post_init__(self) -> None:
        try:
            object.__setattr__(self, "account", Account(self.account))
        except ValueError:
            raise LedgerError(f"unknown account {self.account!r}") from None
        if not isinstance(self.amount, Money):
            raise TypeError(f"posting amounts are Money, got {self.amount!r}")

    @property
    def debit(self) -> Money:
        """The debit side (zero for a credit)."""
        return self.amount if self.amount.amount > 0 else Money.zero(self.amount.currency)

    @property
    def credit(self) -> Money:
        """The credit side as a non-negative amount (zero for a debit)."""
        return -self.amount if self.amount.amount < 0 else Money.zero(self.amount.currency)


@dataclass(frozen=True, slots=True)
class Entry:
    """A balanced journal entry: its postings sum to zero in every currency; ``occurred_at`` is UTC."""

    kind: EntryKind
    order_id: str | None
    occurred_at: datetime
    postings: tuple[Posting, ...]

    def __post_init__(self) -> None:
        try:
            object.__setattr__(self, "kind", EntryKind(self.kind))
        except ValueError:
            raise LedgerError(f"unknown entry kind {self.kind!r}") from None
        if self.occurred_at.tzinfo is None or self.occurred_at.utcoffset() is None:
            raise LedgerError("occurred_at must be timezone-aware")
        object.__setattr__(self, "occurred_at", self.occurred_at.astimezone(UTC))
        object.__setattr__(self, "postings", tuple(self.postings))
        if not self.postings:
            raise LedgerError("an entry needs at least one posting")
        sums: dict[str, int] = {}
        for p in self.postings:
            sums[p.amount.currency] = sums.get(p.amount.currency, 0) + p.amount.amount
        off = {cur: amount for cur, amount in sums.items() if amount}
        if off:
            raise UnbalancedEntry(f"postings do not sum to zero: {off}", details=off)

    @property
    def currencies(self) -> frozenset[str]:
        return frozenset(p.amount.currency for p in self.postings)


class OrderSummary(TypedDict):
    """Totals of one order; ``net`` is what the creator keeps: gross - discounts - refunds - fees."""

    gross: Money
    discounts: Money
    tax: Money
    platform_fee: Money
    processor_fee: Money
    refunds: Money
    net: Money


def fee_for(gross: Money, *, percent: Decimal | str | int, fixed: Money | int = 0) -> Money:
    """A percentage-plus-fixed fee (e.g. ``percent="2.9", fixed=30``), the percentage rounded half to even."""
    fixed_money = fixed if isinstance(fixed, Money) else Money(gross.currency, fixed)
    return gross.percent(percent) + fixed_money


def _same_currency(currency: str, **amounts: Money | None) -> None:
    for name, m in amounts.items():
        if m is not None and m.currency != currency:
            raise CurrencyMismatch(f"{name} is in {m.currency}, the order in {currency}")


def _non_negative(**amounts: Money) -> None:
    for name, m in amounts.items():
        if m.amount < 0:
            raise LedgerError(f"{name} must not be negative, got {m.format()}")


def _postings(*lines: tuple[Account, Money, str]) -> tuple[Posting, ...]:
    """Postings from (account, signed amount, memo) lines, zero amounts left out."""
    return tuple(Posting(account, amount, memo) for account, amount, memo in lines if amount.amount)


def sale_entry(
    order_id: str,
    *,
    gross: Money,
    discount: Money | None = None,
    tax: Money | None = None,
    platform_fee: Money | None = None,
    processor_fee: Money | None = None,
    occurred_at: datetime,
) -> Entry:
    """A sale: the buyer pays ``gross - discount + tax``; the processor keeps its fee, the platform its fee,
    and the rest lands in the creator's balance (``payouts_pending``)."""
    if not order_id:
        raise LedgerError("a sale needs an order id")
    cur = gross.currency
    _same_currency(cur, discount=discount, tax=tax, platform_fee=platform_fee, processor_fee=processor_fee)
    zero = Money.zero(cur)
    discount, tax = discount or zero, tax or zero
    platform_fee, processor_fee = platform_fee or zero, processor_fee or zero
    if gross.amount <= 0:
        raise LedgerError(f"a sale needs a positive gross, got {gross.format()}")
    _non_negative(discount=discount, tax=tax, platform_fee=platform_fee, processor_fee=processor_fee)
    if discount.amount > gross.amount:
        raise LedgerError(f"discount {discount.format()} exceeds gross {gross.format()}")
    charged = gross - discount + tax
    to_creator = charged - processor_fee - platform_fee
    return Entry(
        EntryKind.SALE,
        order_id,
        occurred_at,
        _postings(
            (Account.BUYER_PAYMENTS, charged, "charged to buyer"),
            (Account.DISCOUNTS, discount, "discount"),
            (Account.REVENUE, -gross, "gross sale"),
            (Account.TAX_PAYABLE, -tax, "tax collected"),
            (Account.PROCESSOR_FEES, processor_fee, "processor fee"),
            (Account.PLATFORM_FEES, platform_fee, "platform fee"),
            (Account.PAYOUTS_PENDING, to_creator, "to creator balance"),
            (Account.BUYER_PAYMENTS, -charged, "settled by processor"),
        ),
    )


def _order_entries(entries: Iterable[Entry], order_id: str) -> list[Entry]:
    return [e for e in entries if e.order_id == order_id and e.kind is not EntryKind.PAYOUT]


def _entries_currency(entries: Sequence[Entry]) -> str:
    currencies = {p.amount.currency for e in entries for p in e.postings}
    if len(currencies) != 1:
        raise CurrencyMismatch(f"expected one currency, got {sorted(currencies)}")
    return next(iter(currencies))


def refund_entry(
    order_id: str,
    *,
    prior: Sequence[Entry],
    amount: Money | None = None,
    tax_part: Money | None = None,
    fee_returned: Money | None = None,
    platform_fee_returned: Money | None = None,
    occurred_at: datetime,
) -> Entry:
    """A full (``amount=None``: everything still refundable) or partial refund of ``order_id``.

    ``prior`` holds the order's earlier entries (other orders' are ignored): its sale and any refunds, so
    refunds never exceed what the buyer paid. Unless ``tax_part`` is given, a partial refund is split
    between revenue and tax in proportion to what remains of each (``Money.allocate``); a refund of all
    that remains returns all remaining tax. ``fee_returned`` / ``platform_fee_returned`` are the processor
    and platform fees given back (none by default); the rest is taken from the creator's balance.
    """
    history = _order_entries(prior, order_id)
    if not any(e.kind is EntryKind.SALE for e in history):
        raise LedgerError(f"no sale recorded for order {order_id!r}")
    cur = _entries_currency(history)
    _same_currency(
        cur,
        amount=amount,
        tax_part=tax_part,
        fee_returned=fee_returned,
        platform_fee_returned=platform_fee_returned,
    )
    zero = Money.zero(cur)
    bal = balance(history, currency=cur)
    tax_left = -bal[Account.TAX_PAYABLE]
    revenue_left = -(bal[Account.REVENUE] + bal[Account.DISCOUNTS] + bal[Account.REFUNDS])
    refundable = revenue_left + tax_left
    if amount is None:
        if refundable.amount <= 0:
            raise RefundExceedsPayment(f"nothing left to refund on {order_id!r}")
        amount = refundable
    if amount.amount <= 0:
        raise LedgerError(f"a refund needs a positive amount, got {amount.format()}")
    if amount.amount > refundable.amount:
        raise RefundExceedsPayment(
            f"refund {amount.format()} exceeds the {refundable.format()} still refundable on {order_id!r}"
        )
    if tax_part is None:
        if amount == refundable:
            tax_part = tax_left
        else:
            weights = [max(revenue_left.amount, 0), max(tax_left.amount, 0)]
            tax_part = amount.allocate(weights)[1]
    fee_returned, platform_fee_returned = fee_returned or zero, platform_fee_returned or zero
    _non_negative(tax_part=tax_part, fee_returned=fee_returned, platform_fee_returned=platform_fee_returned)
    revenue_part = amount - tax_part
    if tax_part.amount > tax_left.amount or not 0 <= revenue_part.amount <= revenue_left.amount:
        raise RefundExceedsPayment(
            f"tax part {tax_part.format()} of {amount.format()} does not fit the {tax_left.format()} tax "
            f"and {revenue_left.format()} revenue left on {order_id!r}"
        )
    if (
        fee_returned.amount > bal[Account.PROCESSOR_FEES].amount
        or platform_fee_returned.amount > bal[Account.PLATFORM_FEES].amount
    ):
        raise RefundExceedsPayment(f"fees returned exceed the fees charged on {order_id!r}")
    from_creator = amount - fee_returned - platform_fee_returned
    return Entry(
        EntryKind.REFUND,
        order_id,
        occurred_at,
        _postings(
            (Account.REFUNDS, revenue_part, "refund"),
            (Account.TAX_PAYABLE, tax_part, "tax refunded"),
            (Account.PROCESSOR_FEES, -fee_returned, "processor fee returned"),
            (Account.PLATFORM_FEES, -platform_fee_returned, "platform fee returned"),
            (Account.PAYOUTS_PENDING, -from_creator, "from creator balance"),
            (Account.BUYER_PAYMENTS, amount, "funded by processor"),
            (Account.BUYER_PAYMENTS, -amount, "refunded to buyer"),
        ),
    )


def fee_entry(
    order_id: str | None,
    *,
    account: Account,
    amount: Money,
    occurred_at: datetime,
    memo: str = "",
) -> Entry:
    """A fee charged after the fact (dispute fee, monthly platform fee), taken from the creator's balance;
    a negative ``amount`` is a fee credit."""
    if account not in (Account.PLATFORM_FEES, Account.PROCESSOR_FEES):
        raise LedgerError(f"fees post to platform_fees or processor_fees, not {account!r}")
    if not amount.amount:
        raise LedgerError("a fee needs a non-zero amount")
    return Entry(
        EntryKind.FEE,
        order_id,
        occurred_at,
        (
            Posting(account, amount, memo or "fee"),
            Posting(Account.PAYOUTS_PENDING, -amount, "from creator balance"),
        ),
    )


def payout_entry(
    payout_id: str,
    *,
    amount: Money,
    occurred_at: datetime,
    prior: Sequence[Entry] | None = None,
) -> Entry:
    """Money moved from the creator's balance at the processor to their bank. With ``prior`` (the ledger so
    far) the payout must not exceed the pending balance."""
    if amount.amount <= 0:
        raise LedgerError(f"a payout needs a positive amount, got {amount.format()}")
    if prior is not None:
        pending = balance(prior, currency=amount.currency)[Account.PAYOUTS_PENDING]
        if amount.amount > pending.amount:
            raise LedgerError(f"payout {amount.format()} exceeds the pending balance {pending.format()}")
    memo = f"payout {payout_id}"
    return Entry(
        EntryKind.PAYOUT,
        None,
        occurred_at,
        (Posting(Account.PAYOUTS_PAID, amount, memo), Posting(Account.PAYOUTS_PENDING, -amount, memo)),
    )


def balance(entries: Iterable[Entry], *, currency: str | None = None) -> dict[Account, Money]:
    """Every account's balance (debits positive, zero when untouched) in ``currency``; other currencies'
    postings are ignored. Without ``currency`` the postings must share one (no entries: an empty dict)."""
    postings = [p for e in entries for p in e.postings]
    if currency is None:
        currencies = {p.amount.currency for p in postings}
        if len(currencies) > 1:
            raise CurrencyMismatch(f"balance over several currencies {sorted(currencies)}: pass currency=")
        if not currencies:
            return {}
        currency = currencies.pop()
    sums = dict.fromkeys(Account, 0)
    for p in postings:
        if p.amount.currency == currency:
            sums[p.account] += p.amount.amount
    return {account: Money(currency, amount) for account, amount in sums.items()}


def order_summary(entries: Iterable[Entry], order_id: str | None = None) -> OrderSummary:
    """Totals of one order: of ``order_id`` when given (other entries ignored), else of the entries, which
    must then all belong to one order. Payouts are not part of an order."""
    selected = [e for e in entries if e.kind is not EntryKind.PAYOUT]
    if order_id is not None:
        selected = [e for e in selected if e.order_id == order_id]
    orders = {e.order_id for e in selected}
    if len(orders) != 1:
        raise LedgerError(f"order_summary needs the entries of exactly one order, got {len(orders)}")
    return summarize(balance(selected, currency=_entries_currency(selected)))


def summarize(bal: dict[Account, Money]) -> OrderSummary:
    """Sales totals from account balances (as returned by ``balance(..., currency=...)``)."""
    gross = -bal[Account.REVENUE]
    discounts, refunds = bal[Account.DISCOUNTS], bal[Account.REFUNDS]
    platform_fee, processor_fee = bal[Account.PLATFORM_FEES], bal[Account.PROCESSOR_FEES]
    return OrderSummary(
        gross=gross,
        discounts=discounts,
        tax=-bal[Account.TAX_PAYABLE],
        platform_fee=platform_fee,
        processor_fee=processor_fee,
        refunds=refunds,
        net=gross - discounts - refunds - platform_fee - processor_fee,
    )
