from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone

import pytest
from hypothesis import event, given
from hypothesis import strategies as st

from offerloop.core.money import CurrencyMismatch, Money
from offerloop.ledger.postings import (
    Account,
    Entry,
    EntryKind,
    LedgerError,
    Posting,
    RefundExceedsPayment,
    UnbalancedEntry,
    balance,
    fee_entry,
    fee_for,
    order_summary,
    payout_entry,
    refund_entry,
    sale_entry,
)

T0 = datetime(2026, 11, 22, 10, 0, tzinfo=UTC)
A = Account


def usd(amount: int) -> Money:
    return Money("USD", amount)


def lines(entry: Entry) -> list[tuple[str, int]]:
    return [(p.account.value, p.amount.amount) for p in entry.postings]


def assert_balanced(entry: Entry) -> None:
    sums: dict[str, int] = {}
    for p in entry.postings:
        sums[p.amount.currency] = sums.get(p.amount.currency, 0) + p.amount.amount
    assert set(sums.values()) <= {0}


def worked_sale() -> Entry:
    """gross 49.00, 20% coupon, 8% tax on the discounted price, 2.9% + 30c processor fee on the charge,
    5% platform fee on the discounted price (tax is not the platform's to take a cut of)."""
    gross = usd(4900)
    discount = gross.percent(20)  # 980
    price = gross - discount  # 3920
    tax = price.percent(8)  # 313.6 -> 314
    charged = price + tax  # 4234
    return sale_entry(
        "ord-1",
        gross=gross,
        discount=discount,
        tax=tax,
        processor_fee=fee_for(charged, percent="2.9", fixed=30),  # 122.786 -> 123, + 30
        platform_fee=price.percent(5),  # 196
        occurred_at=T0,
    )


# --- postings and entries ---------------------------------------------------------------------------


def test_posting_sides_follow_the_sign() -> None:
    debit = Posting(A.REVENUE, usd(5))
    credit = Posting(A.REVENUE, usd(-5))
    assert (debit.debit, debit.credit) == (usd(5), usd(0))
    assert (credit.debit, credit.credit) == (usd(0), usd(5))


def test_posting_accounts_are_stable_names() -> None:
    assert Posting("revenue", usd(1)).account is A.REVENUE  # type: ignore[arg-type]
    assert [a.value for a in Account] == [
        "buyer_payments",
        "revenue",
        "discounts",
        "tax_payable",
        "platform_fees",
        "processor_fees",
        "refunds",
        "payouts_pending",
        "payouts_paid",
    ]
    with pytest.raises(LedgerError, match="unknown account"):
        Posting("cash", usd(1))  # type: ignore[arg-type]


def test_unbalanced_entry_is_refused() -> None:
    with pytest.raises(UnbalancedEntry) as info:
        Entry(
            EntryKind.ADJUSTMENT, None, T0, (Posting(A.REVENUE, usd(-5)), Posting(A.PAYOUTS_PENDING, usd(4)))
        )
    assert info.value.details == {"USD": -1}
    assert isinstance(info.value, ValueError)


def test_entries_balance_per_currency() -> None:
    # 5.00 USD and 700 JPY both balanced within the one entry.
    Entry(
        "adjustment",  # type: ignore[arg-type]
        None,
        T0,
        (
            Posting(A.PAYOUTS_PENDING, usd(500)),
            Posting(A.REVENUE, usd(-500)),
            Posting(A.PAYOUTS_PENDING, Money("JPY", 700)),
            Posting(A.REVENUE, Money("JPY", -700)),
        ),
    )
    with pytest.raises(UnbalancedEntry):  # sums to zero only if currencies were mixed
        Entry(
            EntryKind.ADJUSTMENT,
            None,
            T0,
            (Posting(A.REVENUE, usd(-500)), Posting(A.PAYOUTS_PENDING, Money("EUR", 500))),
        )


def test_entry_validation() -> None:
    ok = (Posting(A.REVENUE, usd(-1)), Posting(A.PAYOUTS_PENDING, usd(1)))
    with pytest.raises(LedgerError, match="timezone-aware"):
        Entry(EntryKind.ADJUSTMENT, None, datetime(2026, 1, 1), ok)
    with pytest.raises(LedgerError, match="entry kind"):
        Entry("gift", None, T0, ok)  # type: ignore[arg-type]
    with pytest.raises(LedgerError, match="at least one posting"):
        Entry(EntryKind.ADJUSTMENT, None, T0, ())
    paris = timezone(timedelta(hours=1))
    entry = Entry(EntryKind.ADJUSTMENT, None, datetime(2026, 1, 1, 1, 0, tzinfo=paris), ok)
    assert entry.occurred_at == datetime(2026, 1, 1, 0, 0, tzinfo=UTC)
    assert entry.occurred_at.utcoffset() == timedelta(0)


# --- fees ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("gross", "expected"),
    [(4900, 172), (4234, 153), (500, 44), (1500, 74), (0, 30)],  # 142.1; 122.786; 14.5 -> 14; 43.5 -> 44
)
def test_fee_for_stripe_like(gross: int, expected: int) -> None:
    assert fee_for(usd(gross), percent="2.9", fixed=30) == usd(expected)
    assert fee_for(usd(gross), percent="2.9", fixed=usd(30)) == usd(expected)


def test_fee_for_without_fixed_part_and_currency_checks() -> None:
    assert fee_for(usd(3920), percent=5) == usd(196)
    assert fee_for(Money("JPY", 4900), percent="3.6", fixed=40) == Money("JPY", 216)  # 176.4 + 40
    with pytest.raises(CurrencyMismatch):
        fee_for(usd(100), percent=1, fixed=Money("EUR", 30))


# --- sale -----------------------------------------------------------------------------------------------


def test_worked_example_exact_postings() -> None:
    entry = worked_sale()
    assert entry.kind is EntryKind.SALE
    assert entry.order_id == "ord-1"
    assert lines(entry) == [
        ("buyer_payments", 4234),  # 3920 + 314 charged to the buyer
        ("discounts", 980),
        ("revenue", -4900),
        ("tax_payable", -314),
        ("processor_fees", 153),
        ("platform_fees", 196),
        ("payouts_pending", 3885),  # 4234 - 153 - 196
        ("buyer_payments", -4234),
    ]
    assert [p.memo for p in entry.postings] == [
        "charged to buyer",
        "discount",
        "gross sale",
        "tax collected",
        "processor fee",
        "platform fee",
        "to creator balance",
        "settled by processor",
    ]
    assert_balanced(entry)


def test_worked_example_summary_and_balance() -> None:
    entry = worked_sale()
    assert order_summary([entry]) == {
        "gross": usd(4900),
        "discounts": usd(980),
        "tax": usd(314),
        "platform_fee": usd(196),
        "processor_fee": usd(153),
        "refunds": usd(0),
        "net": usd(3571),  # 4900 - 980 - 196 - 153
    }
    bal = balance([entry])
    assert bal[A.BUYER_PAYMENTS] == usd(0)  # the clearing account settles within the sale
    assert bal[A.PAYOUTS_PENDING] == usd(3885)  # net 3571 + tax 314 to be remitted
    assert bal["revenue"] == usd(-4900)  # type: ignore[index]
    assert bal[A.REFUNDS] == usd(0)
    assert list(bal) == list(Account)
    assert balance([]) == {}
    assert balance([entry], currency="EUR")[A.REVENUE] == Money("EUR", 0)


def test_sale_leaves_out_zero_postings() -> None:
    entry = sale_entry("o", gross=Money("JPY", 4900), occurred_at=T0)
    assert lines(entry) == [
        ("buyer_payments", 4900),
        ("revenue", -4900),
        ("payouts_pending", 4900),
        ("buyer_payments", -4900),
    ]


def test_full_coupon_sale() -> None:
    entry = sale_entry("o", gross=usd(4900), discount=usd(4900), occurred_at=T0)
    assert lines(entry) == [("discounts", 4900), ("revenue", -4900)]
    assert order_summary([entry])["net"] == usd(0)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"gross": usd(0)},
        {"gross": usd(-100)},
        {"gross": usd(100), "discount": usd(101)},
        {"gross": usd(100), "discount": usd(-1)},
        {"gross": usd(100), "tax": usd(-1)},
        {"gross": usd(100), "processor_fee": usd(-1)},
        {"gross": usd(100), "platform_fee": usd(-1)},
    ],
)
def test_sale_validation(kwargs: dict[str, Money]) -> None:
    with pytest.raises(LedgerError):
        sale_entry("o", occurred_at=T0, **kwargs)


def test_sale_refuses_mixed_currencies_and_missing_order() -> None:
    with pytest.raises(CurrencyMismatch):
        sale_entry("o", gross=usd(100), tax=Money("EUR", 8), occurred_at=T0)
    with pytest.raises(LedgerError):
        sale_entry("", gross=usd(100), occurred_at=T0)


# --- refunds -------------------------------------------------------------------------------------------


def test_partial_then_full_refund() -> None:
    sale = worked_sale()
    partial = refund_entry("ord-1", prior=[sale], amount=usd(1000), occurred_at=T0 + timedelta(days=1))
    # 1000 split over 3920 revenue : 314 tax left = 925.84 : 74.16 -> 926 / 74.
    assert lines(partial) == [
        ("refunds", 926),
        ("tax_payable", 74),
        ("payouts_pending", -1000),
        ("buyer_payments", 1000),
        ("buyer_payments", -1000),
    ]
    full = refund_entry("ord-1", prior=[sale, partial], occurred_at=T0 + timedelta(days=2))
    # What is left: 3234 = 2994 revenue + 240 tax.
    assert lines(full) == [
        ("refunds", 2994),
        ("tax_payable", 240),
        ("payouts_pending", -3234),
        ("buyer_payments", 3234),
        ("buyer_payments", -3234),
    ]
    for entry in (sale, partial, full):
        assert_balanced(entry)
    summary = order_summary([sale, partial, full])
    assert summary["refunds"] == usd(3920)
    assert summary["tax"] == usd(0)
    assert summary["net"] == usd(-349)  # the creator keeps nothing and carries both fees
    assert balance([sale, partial, full])[A.PAYOUTS_PENDING] == usd(-349)
    with pytest.raises(RefundExceedsPayment, match="nothing left"):
        refund_entry("ord-1", prior=[sale, partial, full], occurred_at=T0)
    with pytest.raises(RefundExceedsPayment):
        refund_entry("ord-1", prior=[sale, partial, full], amount=usd(1), occurred_at=T0)


def test_full_refund_in_one_go_returns_everything() -> None:
    sale = worked_sale()
    full = refund_entry("ord-1", prior=[sale], occurred_at=T0)
    assert lines(full)[:3] == [("refunds", 3920), ("tax_payable", 314), ("payouts_pending", -4234)]
    assert refund_entry("ord-1", prior=[sale], amount=usd(4234), occurred_at=T0) == full


def test_refund_never_exceeds_what_was_paid() -> None:
    sale = worked_sale()
    with pytest.raises(RefundExceedsPayment, match=r"USD 42\.35 exceeds the USD 42\.34"):
        refund_entry("ord-1", prior=[sale], amount=usd(4235), occurred_at=T0)
    first = refund_entry("ord-1", prior=[sale], amount=usd(4000), occurred_at=T0)
    with pytest.raises(RefundExceedsPayment):
        refund_entry("ord-1", prior=[sale, first], amount=usd(235), occurred_at=T0)
    refund_entry("ord-1", prior=[sale, first], amount=usd(234), occurred_at=T0)


def test_refund_with_explicit_tax_part_and_fees_returned() -> None:
    sale = worked_sale()
    entry = refund_entry(
        "ord-1",
        prior=[sale],
        amount=usd(1000),
        tax_part=usd(0),
        fee_returned=usd(30),
        platform_fee_returned=usd(50),
        occurred_at=T0,
    )
    assert lines(entry) == [
        ("refunds", 1000),
        ("processor_fees", -30),
        ("platform_fees", -50),
        ("payouts_pending", -920),
        ("buyer_payments", 1000),
        ("buyer_payments", -1000),
    ]
    summary = order_summary([sale, entry])
    assert (summary["processor_fee"], summary["platform_fee"], summary["net"]) == (
        usd(123),
        usd(146),
        usd(2651),
    )


@pytest.mark.parametrize(
    "kwargs",
    [
        {"amount": usd(1000), "tax_part": usd(315)},  # more tax than was collected
        {"amount": usd(4000), "tax_part": usd(0)},  # more revenue back than was received
        {"amount": usd(100), "tax_part": usd(101)},
        {"amount": usd(100), "tax_part": usd(-1)},
        {"amount": usd(100), "fee_returned": usd(154)},
        {"amount": usd(100), "platform_fee_returned": usd(197)},
        {"amount": usd(0)},
        {"amount": usd(-100)},
    ],
)
def test_refund_validation(kwargs: dict[str, Money]) -> None:
    with pytest.raises(LedgerError):
        refund_entry("ord-1", prior=[worked_sale()], occurred_at=T0, **kwargs)


def test_refund_needs_the_orders_sale_and_ignores_other_orders() -> None:
    other = sale_entry("ord-2", gross=usd(10_000), occurred_at=T0)
    with pytest.raises(LedgerError, match="no sale"):
        refund_entry("ord-1", prior=[other], amount=usd(100), occurred_at=T0)
    with pytest.raises(RefundExceedsPayment):
        refund_entry("ord-1", prior=[other, worked_sale()], amount=usd(5000), occurred_at=T0)
    with pytest.raises(CurrencyMismatch):
        refund_entry("ord-1", prior=[worked_sale()], amount=Money("EUR", 100), occurred_at=T0)


# --- fees, payouts ---------------------------------------------------------------------------------------


def test_fee_entry() -> None:
    entry = fee_entry("ord-1", account=A.PROCESSOR_FEES, amount=usd(1500), occurred_at=T0, memo="dispute fee")
    assert lines(entry) == [("processor_fees", 1500), ("payouts_pending", -1500)]
    assert order_summary([worked_sale(), entry])["processor_fee"] == usd(1653)
    with pytest.raises(LedgerError):
        fee_entry(None, account=A.REVENUE, amount=usd(1), occurred_at=T0)
    with pytest.raises(LedgerError):
        fee_entry(None, account=A.PLATFORM_FEES, amount=usd(0), occurred_at=T0)


def test_payout_entry() -> None:
    sale = worked_sale()
    payout = payout_entry("po_1", amount=usd(3885), occurred_at=T0, prior=[sale])
    assert payout.kind is EntryKind.PAYOUT and payout.order_id is None
    assert lines(payout) == [("payouts_paid", 3885), ("payouts_pending", -3885)]
    assert payout.postings[0].memo == "payout po_1"
    bal = balance([sale, payout])
    assert (bal[A.PAYOUTS_PENDING], bal[A.PAYOUTS_PAID]) == (usd(0), usd(3885))
    assert order_summary([sale, payout]) == order_summary([sale])  # payouts are not part of an order
    with pytest.raises(LedgerError, match="exceeds the pending balance"):
        payout_entry("po_2", amount=usd(1), occurred_at=T0, prior=[sale, payout])
    with pytest.raises(LedgerError):
        payout_entry("po_3", amount=usd(0), occurred_at=T0)


# --- order summary, balance -------------------------------------------------------------------------------


def test_order_summary_selects_or_requires_one_order() -> None:
    one, two = worked_sale(), sale_entry("ord-2", gross=usd(100), occurred_at=T0)
    assert order_summary([one, two], "ord-2")["gross"] == usd(100)
    with pytest.raises(LedgerError, match="exactly one order"):
        order_summary([one, two])
    with pytest.raises(LedgerError):
        order_summary([])


def test_balance_refuses_mixed_currencies_on_one_account() -> None:
    entries = [worked_sale(), sale_entry("ord-2", gross=Money("EUR", 100), occurred_at=T0)]
    with pytest.raises(CurrencyMismatch):
        balance(entries)
    assert balance(entries, currency="EUR")[A.REVENUE] == Money("EUR", -100)


# --- property: any sequence of sales and refunds keeps the books straight -------------------------------


@st.composite
def orders(draw: st.DrawFn) -> tuple[Entry, list[tuple[int, int | None, int]]]:
    gross = draw(st.integers(min_value=1, max_value=10**7))
    discount = draw(st.integers(min_value=0, max_value=gross))
    tax = draw(st.integers(min_value=0, max_value=gross))
    processor_fee = draw(st.integers(min_value=0, max_value=gross))
    platform_fee = draw(st.integers(min_value=0, max_value=gross))
    sale = sale_entry(
        "ord",
        gross=usd(gross),
        discount=usd(discount),
        tax=usd(tax),
        processor_fee=usd(processor_fee),
        platform_fee=usd(platform_fee),
        occurred_at=T0,
    )
    charged = gross - discount + tax
    refunds = draw(
        st.lists(
            st.tuples(
                st.integers(min_value=1, max_value=max(1, charged * 2 // 3)),
                st.none() | st.integers(min_value=0, max_value=tax + 1),
                st.integers(min_value=0, max_value=processor_fee),
            ),
            max_size=6,
        )
    )
    return sale, refunds


def still_refundable(entries: list[Entry]) -> tuple[Money, Money]:
    """(revenue, tax) the buyer could still get back."""
    s = order_summary(entries)
    return s["gross"] - s["discounts"] - s["refunds"], s["tax"]


@given(orders())
def test_books_stay_balanced_under_random_refunds(
    case: tuple[Entry, list[tuple[int, int | None, int]]],
) -> None:
    sale, refunds = case
    entries = [sale]
    revenue, tax = still_refundable(entries)
    charged = revenue + tax
    for amount, tax_part, fee_returned in refunds:
        revenue_left, tax_left = still_refundable(entries)
        fits = (
            amount <= (revenue_left + tax_left).amount
            and fee_returned <= order_summary(entries)["processor_fee"].amount
        )
        if tax_part is not None:
            fits = (
                fits and tax_part <= min(amount, tax_left.amount) and amount - tax_part <= revenue_left.amount
            )
        kwargs = {
            "amount": usd(amount),
            "tax_part": None if tax_part is None else usd(tax_part),
            "fee_returned": usd(fee_returned),
            "occurred_at": T0,
        }
        if not fits:
            with pytest.raises(RefundExceedsPayment):
                refund_entry("ord", prior=entries, **kwargs)  # type: ignore[arg-type]
            continue
        entries.append(refund_entry("ord", prior=entries, **kwargs))  # type: ignore[arg-type]
        summary = order_summary(entries)
        assert 0 <= summary["refunds"].amount <= (summary["gross"] - summary["discounts"]).amount
        assert 0 <= summary["tax"].amount <= tax.amount
        assert balance(entries)[A.PAYOUTS_PENDING] == summary["net"] + summary["tax"]
    event(f"{len(entries) - 1} of {len(refunds)} refunds accepted")
    if sum(x.amount for x in still_refundable(entries)):
        entries.append(refund_entry("ord", prior=entries, occurred_at=T0))

    for entry in entries:
        assert_balanced(entry)
    bal = balance(entries)
    assert bal[A.BUYER_PAYMENTS] == usd(0)
    final = order_summary(entries)
    # Fully refunded: revenue and tax come back to zero exactly, the creator is left with the fees.
    assert still_refundable(entries) == (usd(0), usd(0))
    assert final["net"] == -(final["platform_fee"] + final["processor_fee"])
    assert bal[A.PAYOUTS_PENDING] == final["net"]
    returned = [
        -p.amount.amount
        for e in entries[1:]
        for p in e.postings
        if p.account is A.BUYER_PAYMENTS and p.amount.amount < 0
    ]
    assert sum(returned) == charged.amount
