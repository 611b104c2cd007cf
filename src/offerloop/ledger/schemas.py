"""Pydantic I/O of the ledger domain: entries and postings, order books, payout totals, revenue."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from pydantic import BaseModel, Field

from offerloop.core.money import Money


class MoneyRead(BaseModel):
    """An amount in minor units of its currency, and as text."""

    amount: int
    formatted: str

    @classmethod
    def of(cls, money: Money) -> MoneyRead:
        return cls(amount=money.amount, formatted=money.format())


class PostingRead(BaseModel):
    """One line of an entry: a signed amount on an account (debits positive)."""

    account: str
    currency: str
    memo: str
    amount: int
    formatted: str


class BalanceRead(BaseModel):
    """An account's balance in one currency: the sum of its postings (debits positive, credits negative)."""

    account: str
    currency: str
    amount: int
    formatted: str


class EntryRead(BaseModel):
    """A balanced ledger entry, its postings and the attribution tags it was booked with."""

    id: int
    kind: str = Field(description="sale | refund | payout | …")
    order_id: str | None = None
    occurred_at: datetime
    tags: dict[str, Any]
    postings: list[PostingRead]


class OrderTotals(BaseModel):
    gross: MoneyRead
    discounts: MoneyRead
    tax: MoneyRead
    platform_fee: MoneyRead
    processor_fee: MoneyRead
    refunds: MoneyRead
    net: MoneyRead


class OrderLedger(BaseModel):
    """An order's entries, its summary and what can still be refunded."""

    order_id: str
    currency: str
    entries: list[EntryRead]
    summary: OrderTotals
    refundable: MoneyRead


class PayoutTotals(BaseModel):
    """Payout totals of one currency over ``[start, end)``."""

    start: datetime
    end: datetime
    currency: str
    gross: MoneyRead
    discounts: MoneyRead
    refunds: MoneyRead
    tax: MoneyRead
    platform_fee: MoneyRead
    processor_fee: MoneyRead
    fees: MoneyRead
    net: MoneyRead
    paid_out: MoneyRead
    orders: int = Field(description="Orders with a sale in the period")


class PayoutRecorded(BaseModel):
    """A payout to the creator's bank (``created`` False: the reference was recorded before)."""

    reference: str
    entry_id: int
    currency: str
    amount: int
    formatted: str
    paid_at: datetime
    created: bool
    pending_balance: MoneyRead


class RevenueRow(BaseModel):
    """Net revenue of one key (offer, persona or touch); ``key`` null is unattributed revenue."""

    key: str | None
    amount: int
    formatted: str


class LedgerCheck(BaseModel):
    """Orders whose postings do not balance (must be none)."""

    balanced: bool
    unbalanced_orders: list[str]
