"""The ledger service on a real database: record, read back, order ledgers, payouts, CSV, revenue, checks."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import pytest

from offerloop.core.errors import ValidationFailed
from offerloop.core.money import Money
from offerloop.db.uow import Database
from offerloop.ledger import repository, service
from offerloop.ledger.postings import (
    Account,
    Entry,
    LedgerError,
    fee_for,
    payout_entry,
    refund_entry,
    sale_entry,
)
from offerloop.ledger.service import LedgerCorrupt, LedgerOrderNotFound
from offerloop.workspaces.schemas import WorkspaceCreated

NOV = datetime(2026, 11, 1, tzinfo=UTC)
DEC = datetime(2026, 12, 1, tzinfo=UTC)
JAN = datetime(2027, 1, 1, tzinfo=UTC)


def usd(amount: int) -> Money:
    return Money("USD", amount)


def eur(amount: int) -> Money:
    return Money("EUR", amount)


def tags(
    *offers: str, persona: str | None = None, first: str | None = None, last: str | None = None
) -> dict[str, Any]:
    return {"offers": list(offers), "persona": persona, "first_touch": first, "last_touch": last}


@dataclass
class Books:
    """What was recorded: entry ids by name, and the entries in recording order."""

    ids: dict[str, int] = field(default_factory=dict)
    entries: list[Entry] = field(default_factory=list)
    tags: dict[str, dict[str, Any]] = field(default_factory=dict)


def record_books(db: Database, workspace_id: str) -> Books:
    """A creator's USD and EUR books around November 2026.

    o-0  USD 15.00 on 31 Oct 23:59:59 (before the period), unattributed
    o-1  USD 49.00 (processor fee 1.72) on 5 Nov, refunded 10.00 on 15 Nov
    o-2  USD 100.01 of three offers, 10.00 off, 7.20 tax, 2.9% + 30c and 4.50 platform fee, on 20 Nov
    o-3  USD 20.00 on 30 Nov 23:30 UTC (00:30 on 1 Dec in UTC+1: still November), fully refunded 2 Dec
    o-4  EUR 39.00 + 7.41 tax on 10 Nov, EUR 10.00 refunded on 3 Dec (split 8.40 revenue, 1.60 tax)
    po_1 USD 30.00 paid out on 25 Nov
    """
    books = Books()
    charged_2 = usd(10001 - 1000 + 720)
    plan: list[tuple[str, Any, dict[str, Any]]] = [
        ("o-0 sale", lambda: sale_entry("o-0", gross=usd(1500), occurred_at=datetime(2026, 10, 31, 23, 59, 59, tzinfo=UTC)), tags("coaching")),
        ("o-1 sale", lambda: sale_entry("o-1", gross=usd(4900), processor_fee=usd(172), occurred_at=datetime(2026, 11, 5, 10, tzinfo=UTC)),
         tags("course", persona="builder", first="youtube", last="email")),
        ("o-4 sale", lambda: sale_entry("o-4", gross=eur(3900), tax=eur(741), occurred_at=datetime(2026, 11, 10, 9, tzinfo=UTC)),
         tags("course", persona="builder", first="youtube") | {"currency": "eur"}),
        ("o-1 refund", lambda: refund_entry("o-1", prior=books.entries, amount=usd(1000), occurred_at=datetime(2026, 11, 15, tzinfo=UTC)),
         tags("course", persona="builder", first="youtube", last="email")),
        ("o-2 sale", lambda: sale_entry("o-2", gross=usd(10001), discount=usd(1000), tax=usd(720),
                                        processor_fee=fee_for(charged_2, percent="2.9", fixed=30), platform_fee=usd(450),
                                        occurred_at=datetime(2026, 11, 20, 12, tzinfo=UTC)),
         tags("course", "coaching", "templates", persona="builder", first="podcast", last="email")),
        ("po_1", lambda: payout_entry("po_1", amount=usd(3000), occurred_at=datetime(2026, 11, 25, tzinfo=UTC), prior=books.entries), {}),
        ("o-3 sale", lambda: sale_entry("o-3", gross=usd(2000), occurred_at=datetime(2026, 11, 30, 23, 30, tzinfo=UTC)),
         tags("templates", persona="dabbler", first="youtube", last="instagram")),
        ("o-3 refund", lambda: refund_entry("o-3", prior=books.entries, occurred_at=datetime(2026, 12, 2, tzinfo=UTC)),
         tags("templates", persona="dabbler", first="youtube", last="instagram")),
        ("o-4 refund", lambda: refund_entry("o-4", prior=books.entries, amount=eur(1000), occurred_at=datetime(2026, 12, 3, tzinfo=UTC)),
         tags("course", persona="builder", first="youtube")),
    ]  # fmt: skip
    with db.write() as session:
        for name, build, entry_tags in plan:
            entry = build()
            books.ids[name] = service.record(
                session=session, workspace_id=workspace_id, entry=entry, tags=entry_tags
            )
            books.entries.append(entry)
            books.tags[name] = entry_tags
    return books


@pytest.fixture
def books(db: Database, workspace: WorkspaceCreated) -> Books:
    return record_books(db, workspace.id)


def normalised(entry_tags: dict[str, Any], currency: str) -> dict[str, Any]:
    return {
        "offers": [],
        "persona": None,
        "first_touch": None,
        "last_touch": None,
        **entry_tags,
        "currency": currency,
    }


# -- record and read back ----------------------------------------------------------------------------


def test_entries_read_back_as_recorded_with_normalised_tags(
    db: Database, workspace: WorkspaceCreated, books: Books
) -> None:
    with db.read() as session:
        everything = service.entries(session=session, workspace_id=workspace.id)
        o1 = service.entries(session=session, workspace_id=workspace.id, order_id="o-1")
        november = service.entries(session=session, workspace_id=workspace.id, start=NOV, end=DEC)
    by_time = sorted(books.entries, key=lambda e: e.occurred_at)
    assert [e for e, _ in everything] == by_time
    assert o1 == [
        (books.entries[1], normalised(books.tags["o-1 sale"], "USD")),
        (books.entries[3], normalised(books.tags["o-1 refund"], "USD")),
    ]
    assert [(e.kind.value, e.order_id) for e, _ in november] == [
        ("sale", "o-1"), ("sale", "o-4"), ("refund", "o-1"), ("sale", "o-2"), ("payout", None), ("sale", "o-3"),
    ]  # fmt: skip
    assert everything[2][1] == {
        "offers": ["course"], "persona": "builder", "first_touch": "youtube", "last_touch": None, "currency": "EUR",
    }  # fmt: skip
    assert dict(everything[5][1]) == normalised({}, "USD")  # the payout


def test_record_refuses_bad_tags(db: Database, workspace: WorkspaceCreated) -> None:
    sale = sale_entry("o-9", gross=usd(100), occurred_at=NOV)
    bad: list[dict[str, Any]] = [
        {"offers": "course"},
        {"offers": ["course", ""]},
        {"offers": [1]},
        {"persona": 3},
        {"first_touch": ""},
        {"currency": "EUR"},
        {"currency": "dollars"},
        {"offers": [], "extra": object()},
    ]
    with db.write() as session:
        for entry_tags in bad:
            with pytest.raises(LedgerError):
                service.record(session=session, workspace_id=workspace.id, entry=sale, tags=entry_tags)
        with pytest.raises(LedgerError):
            service.record(session=session, workspace_id=workspace.id, entry="sale", tags={})  # type: ignore[arg-type]
        assert service.entries(session=session, workspace_id=workspace.id) == []


def test_entries_refuse_naive_or_reversed_periods(db: Database, workspace: WorkspaceCreated) -> None:
    with db.read() as session, pytest.raises(ValidationFailed, match="timezone-aware"):
        service.entries(session=session, workspace_id=workspace.id, start=datetime(2026, 11, 1))
    with db.read() as session, pytest.raises(ValidationFailed, match="before it starts"):
        service.entries(session=session, workspace_id=workspace.id, start=DEC, end=NOV)


def test_workspaces_do_not_see_each_others_books(
    db: Database, workspace: WorkspaceCreated, other_workspace: WorkspaceCreated, books: Books
) -> None:
    with db.read() as session:
        assert service.entries(session=session, workspace_id=other_workspace.id) == []
        assert [
            r.model_dump()
            for r in service.revenue(
                session=session, workspace_id=other_workspace.id, by="offer", currency="USD"
            )
        ] == []
        with pytest.raises(LedgerOrderNotFound):
            service.order_ledger(session=session, workspace_id=other_workspace.id, order_id="o-1").model_dump(
                mode="json"
            )
        with pytest.raises(LedgerOrderNotFound):
            service.refundable(session=session, workspace_id=other_workspace.id, order_id="o-1")


# -- order ledger and refundable -------------------------------------------------------------------


def test_order_ledger_is_exact(db: Database, workspace: WorkspaceCreated, books: Books) -> None:
    with db.read() as session:
        ledger = service.order_ledger(session=session, workspace_id=workspace.id, order_id="o-2").model_dump(
            mode="json"
        )

    def line(account: str, amount: int, formatted: str, memo: str) -> dict[str, Any]:
        return {"account": account, "currency": "USD", "memo": memo, "amount": amount, "formatted": formatted}

    assert ledger == {
        "order_id": "o-2",
        "currency": "USD",
        "entries": [
            {
                "id": books.ids["o-2 sale"],
                "kind": "sale",
                "order_id": "o-2",
                "occurred_at": "2026-11-20T12:00:00Z",
                "tags": {"offers": ["course", "coaching", "templates"], "persona": "builder",
                         "first_touch": "podcast", "last_touch": "email", "currency": "USD"},
                "postings": [
                    line("buyer_payments", 9721, "USD 97.21", "charged to buyer"),
                    line("discounts", 1000, "USD 10.00", "discount"),
                    line("revenue", -10001, "USD -100.01", "gross sale"),
                    line("tax_payable", -720, "USD -7.20", "tax collected"),
                    line("processor_fees", 312, "USD 3.12", "processor fee"),  # 281.9 -> 282, + 30
                    line("platform_fees", 450, "USD 4.50", "platform fee"),
                    line("payouts_pending", 8959, "USD 89.59", "to creator balance"),
                    line("buyer_payments", -9721, "USD -97.21", "settled by processor"),
                ],
            }
        ],
        "summary": {
            "gross": {"amount": 10001, "formatted": "USD 100.01"},
            "discounts": {"amount": 1000, "formatted": "USD 10.00"},
            "tax": {"amount": 720, "formatted": "USD 7.20"},
            "platform_fee": {"amount": 450, "formatted": "USD 4.50"},
            "processor_fee": {"amount": 312, "formatted": "USD 3.12"},
            "refunds": {"amount": 0, "formatted": "USD 0.00"},
            "net": {"amount": 8239, "formatted": "USD 82.39"},
        },
        "refundable": {"amount": 9721, "formatted": "USD 97.21"},
    }  # fmt: skip


def test_order_ledger_after_a_partial_refund_with_tax(
    db: Database, workspace: WorkspaceCreated, books: Books
) -> None:
    with db.read() as session:
        ledger = service.order_ledger(session=session, workspace_id=workspace.id, order_id="o-4").model_dump(
            mode="json"
        )
    assert ledger["currency"] == "EUR"
    assert [(e["id"], e["kind"]) for e in ledger["entries"]] == [
        (books.ids["o-4 sale"], "sale"), (books.ids["o-4 refund"], "refund"),
    ]  # fmt: skip
    assert [(p["account"], p["amount"]) for p in ledger["entries"][1]["postings"]] == [
        ("refunds", 840), ("tax_payable", 160), ("payouts_pending", -1000),
        ("buyer_payments", 1000), ("buyer_payments", -1000),
    ]  # fmt: skip
    assert {k: v["amount"] for k, v in ledger["summary"].items()} == {
        "gross": 3900, "discounts": 0, "tax": 581, "platform_fee": 0, "processor_fee": 0, "refunds": 840, "net": 3060,
    }  # fmt: skip
    assert ledger["refundable"] == {"amount": 3641, "formatted": "EUR 36.41"}


def test_refundable_matches_what_refund_entry_accepts(
    db: Database, workspace: WorkspaceCreated, books: Books
) -> None:
    with db.read() as session:
        left = {
            order: service.refundable(session=session, workspace_id=workspace.id, order_id=order)
            for order in ("o-0", "o-1", "o-2", "o-3", "o-4")
        }
        with pytest.raises(LedgerOrderNotFound):
            service.refundable(session=session, workspace_id=workspace.id, order_id="o-missing")
    assert left == {"o-0": usd(1500), "o-1": usd(3900), "o-2": usd(9721), "o-3": usd(0), "o-4": eur(3641)}
    for order in ("o-0", "o-1", "o-2", "o-4"):
        full = refund_entry(order, prior=books.entries, occurred_at=JAN)
        assert (
            sum(
                p.amount.amount
                for p in full.postings
                if p.account is Account.BUYER_PAYMENTS and p.amount.amount > 0
            )
            == left[order].amount
        )


# -- payouts and CSV -------------------------------------------------------------------------------


def test_payouts_across_the_period_boundary(db: Database, workspace: WorkspaceCreated, books: Books) -> None:
    with db.read() as session:
        november = service.payouts(
            session=session, workspace_id=workspace.id, start=NOV, end=DEC, currency="usd"
        ).model_dump(mode="json")
        december = service.payouts(
            session=session, workspace_id=workspace.id, start=DEC, end=JAN, currency="USD"
        ).model_dump(mode="json")
        eur_dec = service.payouts(
            session=session, workspace_id=workspace.id, start=DEC, end=JAN, currency="EUR"
        ).model_dump(mode="json")
        before_o3 = service.payouts(
            session=session, workspace_id=workspace.id, start=NOV,
            end=datetime(2026, 11, 30, 23, 30, tzinfo=UTC), currency="USD",
        ).model_dump(mode="json")  # fmt: skip

    def m(amount: int, cur: str = "USD") -> dict[str, Any]:
        return {"amount": amount, "formatted": Money(cur, amount).format()}

    assert november == {
        "start": "2026-11-01T00:00:00Z", "end": "2026-12-01T00:00:00Z", "currency": "USD",
        "gross": m(16901), "discounts": m(1000), "refunds": m(1000), "tax": m(720),
        "platform_fee": m(450), "processor_fee": m(484), "fees": m(934), "net": m(13967),
        "paid_out": m(3000), "orders": 3,
    }  # fmt: skip
    assert december == {
        "start": "2026-12-01T00:00:00Z", "end": "2027-01-01T00:00:00Z", "currency": "USD",
        "gross": m(0), "discounts": m(0), "refunds": m(2000), "tax": m(0), "platform_fee": m(0),
        "processor_fee": m(0), "fees": m(0), "net": m(-2000), "paid_out": m(0), "orders": 0,
    }  # fmt: skip
    assert {k: v["amount"] for k, v in eur_dec.items() if isinstance(v, dict)} == {
        "gross": 0, "discounts": 0, "refunds": 840, "tax": -160, "platform_fee": 0, "processor_fee": 0,
        "fees": 0, "net": -840, "paid_out": 0,
    }  # fmt: skip
    assert (before_o3["gross"]["amount"], before_o3["orders"]) == (14901, 2)  # the end is exclusive


def test_payouts_summed_in_sql_equal_the_report_over_every_entry(
    db: Database, workspace: WorkspaceCreated, other_workspace: WorkspaceCreated, books: Books
) -> None:
    """service.payouts sums balances in SQL; reports.payout_report folds the loaded entries: the same figures
    for every period and currency of the books (another workspace's entries count in neither)."""
    from offerloop.ledger import reports
    from offerloop.ledger.service import _load

    with db.read() as session:
        loaded = [e for _, e, _ in _load(session, workspace.id)]
        cuts = [NOV, datetime(2026, 11, 30, 23, 30, tzinfo=UTC), DEC, JAN]
        for start in cuts:
            for end in cuts:
                if end < start:
                    continue
                for cur in ("USD", "EUR", "GBP"):
                    sql = service.payouts(session=session, workspace_id=workspace.id, start=start, end=end,
                                          currency=cur).model_dump(mode="json")  # fmt: skip
                    folded = reports.payout_report(loaded, start=start, end=end, currency=cur)
                    assert {k: (v["amount"] if isinstance(v, dict) else v) for k, v in sql.items()
                            if k not in {"start", "end", "currency"}} == {
                        **{k: getattr(folded, k).amount for k in ("gross", "discounts", "refunds", "tax",
                           "platform_fee", "processor_fee", "fees", "net", "paid_out")},
                        "orders": folded.orders,
                    }, (start, end, cur)  # fmt: skip
        theirs = service.payouts(session=session, workspace_id=other_workspace.id, start=NOV, end=JAN,
                                 currency="USD")  # fmt: skip
    assert (theirs.gross.amount, theirs.orders) == (0, 0)


def test_payouts_refuse_bad_input(db: Database, workspace: WorkspaceCreated) -> None:
    with db.read() as session:
        with pytest.raises(ValidationFailed, match="ISO 4217"):
            service.payouts(
                session=session, workspace_id=workspace.id, start=NOV, end=DEC, currency="US"
            ).model_dump(mode="json")
        with pytest.raises(ValidationFailed, match="before it starts"):
            service.payouts(
                session=session, workspace_id=workspace.id, start=DEC, end=NOV, currency="USD"
            ).model_dump(mode="json")
        with pytest.raises(ValidationFailed, match="timezone-aware"):
            service.payouts(
                session=session,
                workspace_id=workspace.id,
                start=datetime(2026, 11, 1),
                end=DEC,
                currency="USD",
            ).model_dump(mode="json")


CSV_O1_SALE = (
    "occurred_at,kind,order_id,account,debit,credit,currency,memo\r\n"
    "2026-11-05T10:00:00+00:00,sale,o-1,buyer_payments,49.00,,USD,charged to buyer\r\n"
    "2026-11-05T10:00:00+00:00,sale,o-1,revenue,,49.00,USD,gross sale\r\n"
    "2026-11-05T10:00:00+00:00,sale,o-1,processor_fees,1.72,,USD,processor fee\r\n"
    "2026-11-05T10:00:00+00:00,sale,o-1,payouts_pending,47.28,,USD,to creator balance\r\n"
    "2026-11-05T10:00:00+00:00,sale,o-1,buyer_payments,,49.00,USD,settled by processor\r\n"
)


def test_export_csv(db: Database, workspace: WorkspaceCreated, books: Books) -> None:
    with db.read() as session:
        first_week = service.export_csv(
            session=session, workspace_id=workspace.id, start=NOV, end=datetime(2026, 11, 8, tzinfo=UTC)
        )
        everything = service.export_csv(session=session, workspace_id=workspace.id)
        december = service.export_csv(session=session, workspace_id=workspace.id, start=DEC)
    assert first_week == CSV_O1_SALE
    rows = everything.split("\r\n")
    assert len(rows) == 1 + sum(len(e.postings) for e in books.entries) + 1  # header, postings, final ""
    assert rows[1] == "2026-10-31T23:59:59+00:00,sale,o-0,buyer_payments,15.00,,USD,charged to buyer"
    assert rows[-2] == "2026-12-03T00:00:00+00:00,refund,o-4,buyer_payments,,10.00,EUR,refunded to buyer"
    assert december.split("\r\n")[1:3] == [
        "2026-12-02T00:00:00+00:00,refund,o-3,refunds,20.00,,USD,refund",
        "2026-12-02T00:00:00+00:00,refund,o-3,payouts_pending,,20.00,USD,from creator balance",
    ]


# -- revenue ---------------------------------------------------------------------------------------


def rows(*items: tuple[str | None, int]) -> list[dict[str, Any]]:
    return [
        {"key": key, "amount": amount, "formatted": Money("USD", amount).format()} for key, amount in items
    ]


@pytest.mark.parametrize(
    ("by", "expected"),
    [
        # o-2's 90.01 net split 30.01 / 30.00 / 30.00 in tag order; o-3 sold and refunded nets 0
        ("offer", rows(("course", 6901), ("coaching", 4500), ("templates", 3000))),
        ("persona", rows(("builder", 12901), (None, 1500), ("dabbler", 0))),
        ("first_touch", rows(("podcast", 9001), ("youtube", 3900), (None, 1500))),
        ("last_touch", rows(("email", 12901), (None, 1500), ("instagram", 0))),
    ],
)
def test_revenue_by_each_dimension(
    db: Database, workspace: WorkspaceCreated, books: Books, by: str, expected: list[dict[str, Any]]
) -> None:
    with db.read() as session:
        assert [
            r.model_dump()
            for r in service.revenue(session=session, workspace_id=workspace.id, by=by, currency="USD")
        ] == expected


def test_revenue_in_euros_and_bad_dimensions(db: Database, workspace: WorkspaceCreated, books: Books) -> None:
    with db.read() as session:
        assert [
            r.model_dump()
            for r in service.revenue(session=session, workspace_id=workspace.id, by="offer", currency="eur")
        ] == [{"key": "course", "amount": 3060, "formatted": "EUR 30.60"}]
        assert [
            r.model_dump()
            for r in service.revenue(
                session=session, workspace_id=workspace.id, by="last_touch", currency="EUR"
            )
        ] == [{"key": None, "amount": 3060, "formatted": "EUR 30.60"}]
        assert [
            r.model_dump()
            for r in service.revenue(session=session, workspace_id=workspace.id, by="offer", currency="JPY")
        ] == []
        with pytest.raises(ValidationFailed, match="by must be one of"):
            [
                r.model_dump()
                for r in service.revenue(
                    session=session, workspace_id=workspace.id, by="channel", currency="USD"
                )
            ]
        with pytest.raises(ValidationFailed, match="ISO 4217"):
            [
                r.model_dump()
                for r in service.revenue(session=session, workspace_id=workspace.id, by="offer", currency="")
            ]


def test_revenue_split_of_an_odd_amount_adds_up(db: Database, workspace: WorkspaceCreated) -> None:
    with db.write() as session:
        sale = sale_entry("o-odd", gross=usd(101), occurred_at=NOV)
        service.record(session=session, workspace_id=workspace.id, entry=sale, tags=tags("a", "b", "c"))
        assert [
            r.model_dump()
            for r in service.revenue(session=session, workspace_id=workspace.id, by="offer", currency="USD")
        ] == rows(("a", 34), ("b", 34), ("c", 33))


# -- the balance check -----------------------------------------------------------------------------


def test_unbalanced_orders_is_empty_and_catches_a_broken_posting(
    db: Database, workspace: WorkspaceCreated, other_workspace: WorkspaceCreated, books: Books
) -> None:
    with db.read() as session:
        assert service.unbalanced_orders(session=session, workspace_id=workspace.id) == []
    with db.write() as session:
        repository.add_posting(
            session, workspace.id, entry_id=books.ids["o-2 sale"], account="revenue", amount=-1, currency="USD",
            memo="deliberately broken",
        )  # fmt: skip
        repository.add_posting(
            session,
            workspace.id,
            entry_id=books.ids["po_1"],
            account="payouts_paid",
            amount=5,
            currency="USD",
        )
        # balanced in USD, but a stray EUR cent on the same entry
        repository.add_posting(
            session, workspace.id, entry_id=books.ids["o-0 sale"], account="revenue", amount=1, currency="EUR"
        )
    with db.read() as session:
        assert service.unbalanced_orders(session=session, workspace_id=workspace.id) == [
            f"entry:{books.ids['po_1']}", "o-0", "o-2",
        ]  # fmt: skip
        assert service.unbalanced_orders(session=session, workspace_id=other_workspace.id) == []
        with pytest.raises(LedgerCorrupt, match=f"ledger entry {books.ids['o-2 sale']}"):
            service.order_ledger(session=session, workspace_id=workspace.id, order_id="o-2").model_dump(
                mode="json"
            )
        assert (
            service.order_ledger(session=session, workspace_id=workspace.id, order_id="o-1").model_dump(
                mode="json"
            )["order_id"]
            == "o-1"
        )
