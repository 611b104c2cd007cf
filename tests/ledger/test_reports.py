from __future__ import annotations

import csv
import io
from datetime import UTC, datetime, timedelta, timezone

import pytest

from offerloop.core.money import CurrencyMismatch, Money
from offerloop.ledger.postings import (
    Account,
    Entry,
    EntryKind,
    LedgerError,
    Posting,
    fee_entry,
    fee_for,
    order_summary,
    payout_entry,
    refund_entry,
    sale_entry,
)
from offerloop.ledger.reports import (
    CSV_HEADER,
    PayoutReport,
    decimal_string,
    payout_report,
    revenue_by,
    to_csv,
)

NOV = datetime(2026, 11, 1, tzinfo=UTC)
DEC = datetime(2026, 12, 1, tzinfo=UTC)


def usd(amount: int) -> Money:
    return Money("USD", amount)


def ledger() -> list[Entry]:
    """A creator's books around November 2026, in USD plus one EUR sale."""
    oct_sale = sale_entry("o-0", gross=usd(1000), occurred_at=NOV - timedelta(seconds=1))
    first = sale_entry("o-1", gross=usd(4900), processor_fee=usd(172), occurred_at=NOV)  # start is inclusive
    # 00:30 in UTC+1 on 1 December is 23:30 UTC on 30 November: inside the period.
    late = sale_entry(
        "o-2",
        gross=usd(2000),
        discount=usd(200),
        tax=usd(144),
        processor_fee=fee_for(usd(1944), percent="2.9", fixed=30),  # 56.376 -> 56, + 30
        platform_fee=usd(90),
        occurred_at=datetime(2026, 12, 1, 0, 30, tzinfo=timezone(timedelta(hours=1))),
    )
    books = [oct_sale, first, late]
    books.append(refund_entry("o-1", prior=books, amount=usd(1000), occurred_at=NOV + timedelta(days=14)))
    books.append(refund_entry("o-0", prior=books, amount=usd(500), occurred_at=NOV + timedelta(days=1)))
    books.append(sale_entry("o-3", gross=Money("EUR", 3900), occurred_at=NOV + timedelta(days=9)))
    books.append(payout_entry("po_1", amount=usd(2000), occurred_at=NOV + timedelta(days=19), prior=books))
    books.append(refund_entry("o-2", prior=books, occurred_at=DEC))  # end is exclusive
    return books


# --- payout report ---------------------------------------------------------------------------------------


def test_payout_report_across_a_period_boundary() -> None:
    report = payout_report(ledger(), start=NOV, end=DEC, currency="usd")
    assert report == PayoutReport(
        start=NOV,
        end=DEC,
        currency="USD",
        gross=usd(6900),  # o-1 + o-2; o-0 sold in October
        discounts=usd(200),
        refunds=usd(1500),  # o-1 partial + o-0 partial; o-2's refund lands in December
        tax=usd(144),
        platform_fee=usd(90),
        processor_fee=usd(258),  # 172 + 86
        fees=usd(348),
        net=usd(4852),  # 6900 - 200 - 1500 - 348
        paid_out=usd(2000),
        orders=2,
    )


def test_payout_reports_of_adjacent_periods_add_up() -> None:
    books = ledger()
    october = payout_report(books, start=NOV - timedelta(days=31), end=NOV, currency="USD")
    november = payout_report(books, start=NOV, end=DEC, currency="USD")
    december = payout_report(books, start=DEC, end=DEC + timedelta(days=31), currency="USD")
    assert (october.gross, october.orders) == (usd(1000), 1)
    assert (december.refunds, december.tax, december.net, december.orders) == (
        usd(1800),
        usd(-144),
        usd(-1800),
        0,
    )
    whole = sum((order_summary(books, o)["net"] for o in ("o-0", "o-1", "o-2")), usd(0))
    assert october.net + november.net + december.net == whole


def test_payout_report_in_another_currency_and_empty_periods() -> None:
    eur = payout_report(ledger(), start=NOV, end=DEC, currency="EUR")
    assert (eur.gross, eur.net, eur.orders, eur.fees) == (
        Money("EUR", 3900),
        Money("EUR", 3900),
        1,
        Money("EUR", 0),
    )
    empty = payout_report([], start=NOV, end=NOV, currency="JPY")
    assert (empty.gross, empty.net, empty.orders) == (Money("JPY", 0), Money("JPY", 0), 0)


def test_payout_report_validation() -> None:
    with pytest.raises(LedgerError, match="timezone-aware"):
        payout_report([], start=datetime(2026, 11, 1), end=DEC, currency="USD")
    with pytest.raises(LedgerError, match="ends before"):
        payout_report([], start=DEC, end=NOV, currency="USD")
    with pytest.raises(ValueError, match="ISO 4217"):
        payout_report([], start=NOV, end=DEC, currency="dollars")


# --- revenue by key ---------------------------------------------------------------------------------------


def test_revenue_by_offer_and_channel_is_net_of_discounts_and_refunds() -> None:
    t = NOV
    books = [
        sale_entry(
            "o-1", gross=usd(4900), discount=usd(980), tax=usd(314), processor_fee=usd(153), occurred_at=t
        ),
        sale_entry("o-2", gross=usd(4900), occurred_at=t),
        sale_entry("o-3", gross=usd(19900), platform_fee=usd(995), occurred_at=t),
    ]
    books.append(refund_entry("o-2", prior=books, amount=usd(2000), occurred_at=t))
    books.append(fee_entry("o-3", account=Account.PROCESSOR_FEES, amount=usd(1500), occurred_at=t))
    books.append(payout_entry("po_1", amount=usd(100), occurred_at=t))
    offer = {"o-1": "workbook", "o-2": "workbook", "o-3": "course"}
    first_touch = {"o-1": "newsletter", "o-2": "youtube", "o-3": "youtube"}
    # Payouts and fees never reach the key (offer[None] would raise).
    assert revenue_by(books, lambda e: offer[e.order_id or ""]) == {
        "workbook": usd(6820),  # 3920 + 4900 - 2000
        "course": usd(19900),  # tax and fees are not revenue
    }
    assert revenue_by(books, lambda e: first_touch[e.order_id or ""]) == {
        "newsletter": usd(3920),
        "youtube": usd(22800),
    }
    assert revenue_by([], lambda e: "x") == {}


def test_revenue_by_keeps_currencies_apart() -> None:
    books = [
        sale_entry("o-1", gross=usd(4900), occurred_at=NOV),
        sale_entry("o-2", gross=Money("JPY", 4900), occurred_at=NOV),
    ]
    with pytest.raises(CurrencyMismatch):
        revenue_by(books, lambda e: "workbook")
    assert revenue_by(books, lambda e: "workbook", currency="jpy") == {"workbook": Money("JPY", 4900)}
    assert revenue_by(books, lambda e: e.order_id or "", currency="USD") == {"o-1": usd(4900)}


# --- CSV ----------------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("money", "text"),
    [
        (usd(4900), "49.00"),
        (usd(5), "0.05"),
        (usd(0), "0.00"),
        (usd(-1234), "-12.34"),
        (Money("JPY", 4900), "4900"),
        (Money("KWD", 1005), "1.005"),
        (Money("KWD", -5), "-0.005"),
    ],
)
def test_decimal_string(money: Money, text: str) -> None:
    assert decimal_string(money) == text


def test_csv_exact_text() -> None:
    t = datetime(2026, 11, 22, 10, 0, tzinfo=UTC)
    entries = [
        sale_entry("o-1", gross=usd(4900), processor_fee=usd(172), occurred_at=t),
        sale_entry("o-2", gross=Money("JPY", 4900), occurred_at=t + timedelta(microseconds=5)),
        Entry(
            EntryKind.ADJUSTMENT,
            None,
            t,
            (
                Posting(Account.PAYOUTS_PENDING, usd(5), 'goodwill, "VIP"'),
                Posting(Account.REVENUE, usd(-5), "line\nbreak"),
            ),
        ),
    ]
    assert to_csv(entries) == (
        "occurred_at,kind,order_id,account,debit,credit,currency,memo\r\n"
        "2026-11-22T10:00:00+00:00,sale,o-1,buyer_payments,49.00,,USD,charged to buyer\r\n"
        "2026-11-22T10:00:00+00:00,sale,o-1,revenue,,49.00,USD,gross sale\r\n"
        "2026-11-22T10:00:00+00:00,sale,o-1,processor_fees,1.72,,USD,processor fee\r\n"
        "2026-11-22T10:00:00+00:00,sale,o-1,payouts_pending,47.28,,USD,to creator balance\r\n"
        "2026-11-22T10:00:00+00:00,sale,o-1,buyer_payments,,49.00,USD,settled by processor\r\n"
        "2026-11-22T10:00:00.000005+00:00,sale,o-2,buyer_payments,4900,,JPY,charged to buyer\r\n"
        "2026-11-22T10:00:00.000005+00:00,sale,o-2,revenue,,4900,JPY,gross sale\r\n"
        "2026-11-22T10:00:00.000005+00:00,sale,o-2,payouts_pending,4900,,JPY,to creator balance\r\n"
        "2026-11-22T10:00:00.000005+00:00,sale,o-2,buyer_payments,,4900,JPY,settled by processor\r\n"
        '2026-11-22T10:00:00+00:00,adjustment,,payouts_pending,0.05,,USD,"goodwill, ""VIP"""\r\n'
        '2026-11-22T10:00:00+00:00,adjustment,,revenue,,0.05,USD,"line\nbreak"\r\n'
    )


def test_csv_round_trips_through_the_csv_module() -> None:
    books = ledger()
    rows = list(csv.reader(io.StringIO(to_csv(books), newline="")))
    assert tuple(rows[0]) == CSV_HEADER
    assert len(rows) == 1 + sum(len(e.postings) for e in books)
    for row, (entry, posting) in zip(rows[1:], [(e, p) for e in books for p in e.postings], strict=True):
        assert datetime.fromisoformat(row[0]) == entry.occurred_at
        assert (row[1], row[2], row[3], row[6], row[7]) == (
            entry.kind.value,
            entry.order_id or "",
            posting.account.value,
            posting.amount.currency,
            posting.memo,
        )
        assert bool(row[4]) != bool(row[5])  # exactly one side filled
    assert to_csv([]) == "occurred_at,kind,order_id,account,debit,credit,currency,memo\r\n"
