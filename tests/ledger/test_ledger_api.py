"""The ledger over HTTP: order ledgers, payouts, CSV export, revenue and the balance check, per workspace."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from tests.conftest import bearer
from tests.ledger.test_ledger_service import CSV_O1_SALE, Books, record_books

from offerloop.core.money import Money
from offerloop.db.uow import Database
from offerloop.ledger import repository, service
from offerloop.workspaces.schemas import WorkspaceCreated


@pytest.fixture
def books(db: Database, workspace: WorkspaceCreated) -> Books:
    return record_books(db, workspace.id)


def ok(client: TestClient, url: str, headers: dict[str, str], **params: str) -> Any:
    r = client.get(url, headers=headers, params=params)
    assert r.status_code == 200, r.text
    return r.json()


def test_order_ledger(
    client: TestClient, db: Database, workspace: WorkspaceCreated, secret_headers, books: Books
) -> None:
    body = ok(client, "/v1/ledger/orders/o-2", secret_headers)
    with db.read() as session:
        assert body == service.order_ledger(
            session=session, workspace_id=workspace.id, order_id="o-2"
        ).model_dump(mode="json")
    assert body["summary"]["net"] == {"amount": 8239, "formatted": "USD 82.39"}
    assert body["entries"][0]["id"] == books.ids["o-2 sale"]
    assert len(body["entries"][0]["postings"]) == 8

    r = client.get("/v1/ledger/orders/o-missing", headers=secret_headers)
    assert r.status_code == 404
    assert r.json()["error"]["code"] == "ledger_order_not_found"


def test_payouts_take_dates_and_datetimes_in_utc(client: TestClient, secret_headers, books: Books) -> None:
    by_date = ok(
        client, "/v1/ledger/payouts", secret_headers, start="2026-11-01", end="2026-12-01", currency="usd"
    )
    assert by_date["start"] == "2026-11-01T00:00:00Z" and by_date["end"] == "2026-12-01T00:00:00Z"
    assert {k: v["amount"] for k, v in by_date.items() if isinstance(v, dict)} == {
        "gross": 16901, "discounts": 1000, "refunds": 1000, "tax": 720, "platform_fee": 450,
        "processor_fee": 484, "fees": 934, "net": 13967, "paid_out": 3000,
    }  # fmt: skip
    assert by_date["orders"] == 3
    # The same instants written as Z, with an offset, and naive (UTC): the same report.
    assert ok(client, "/v1/ledger/payouts", secret_headers, start="2026-11-01T00:00:00Z",
              end="2026-12-01T01:00:00+01:00", currency="USD") == by_date  # fmt: skip
    assert ok(client, "/v1/ledger/payouts", secret_headers, start="2026-11-01T00:00:00",
              end="2026-12-01T00:00", currency="USD") == by_date  # fmt: skip
    # o-3 was sold at 23:30 UTC on 30 November: an end at 23:30 leaves it out.
    cut = ok(client, "/v1/ledger/payouts", secret_headers, start="2026-11-01",
             end="2026-11-30T23:30:00Z", currency="USD")  # fmt: skip
    assert (cut["gross"]["amount"], cut["orders"]) == (14901, 2)
    december = ok(
        client, "/v1/ledger/payouts", secret_headers, start="2026-12-01", end="2027-01-01", currency="EUR"
    )
    assert (december["refunds"], december["net"]) == (
        {"amount": 840, "formatted": "EUR 8.40"}, {"amount": -840, "formatted": "EUR -8.40"},
    )  # fmt: skip


def test_export_csv(client: TestClient, secret_headers, books: Books) -> None:
    r = client.get(
        "/v1/ledger/export.csv", headers=secret_headers, params={"start": "2026-11-01", "end": "2026-11-08"}
    )
    assert r.status_code == 200, r.text
    assert r.headers["content-type"] == "text/csv; charset=utf-8"
    assert r.headers["content-disposition"] == (
        'attachment; filename="ledger-from-20261101T000000Z-to-20261108T000000Z.csv"'
    )
    assert r.text == CSV_O1_SALE

    everything = client.get("/v1/ledger/export.csv", headers=secret_headers)
    assert everything.status_code == 200
    assert everything.headers["content-disposition"] == 'attachment; filename="ledger.csv"'
    assert len(everything.text.split("\r\n")) == 2 + sum(len(e.postings) for e in books.entries)


@pytest.mark.parametrize(
    ("by", "currency", "expected"),
    [
        ("offer", "USD", [("course", 6901), ("coaching", 4500), ("templates", 3000)]),
        ("persona", "USD", [("builder", 12901), (None, 1500), ("dabbler", 0)]),
        ("first_touch", "USD", [("podcast", 9001), ("youtube", 3900), (None, 1500)]),
        ("last_touch", "USD", [("email", 12901), (None, 1500), ("instagram", 0)]),
        ("offer", "eur", [("course", 3060)]),
    ],
)
def test_revenue(
    client: TestClient, secret_headers, books: Books, by: str, currency: str, expected: list[Any]
) -> None:
    body = ok(client, "/v1/revenue", secret_headers, by=by, currency=currency)["items"]
    assert [(row["key"], row["amount"]) for row in body] == expected
    assert [row["formatted"] for row in body] == [
        Money(currency.upper(), amount).format() for _, amount in expected
    ]


def test_check_reports_unbalanced_orders(
    client: TestClient, db: Database, workspace: WorkspaceCreated, secret_headers, books: Books
) -> None:
    assert ok(client, "/v1/ledger/check", secret_headers) == {"balanced": True, "unbalanced_orders": []}
    with db.write() as session:
        repository.add_posting(
            session,
            workspace.id,
            entry_id=books.ids["o-1 refund"],
            account="refunds",
            amount=7,
            currency="USD",
        )
    assert ok(client, "/v1/ledger/check", secret_headers) == {"balanced": False, "unbalanced_orders": ["o-1"]}
    r = client.get("/v1/ledger/orders/o-1", headers=secret_headers)
    assert r.status_code == 500 and r.json()["error"]["code"] == "ledger_corrupt"


@pytest.mark.parametrize(
    ("url", "params", "message"),
    [
        ("/v1/ledger/payouts", {"start": "yesterday", "end": "2026-12-01", "currency": "USD"}, "start must be an ISO 8601"),
        ("/v1/ledger/payouts", {"start": "2026-11-01", "end": "2026-13-01", "currency": "USD"}, "end must be an ISO 8601"),
        ("/v1/ledger/payouts", {"start": "2026-11-01", "end": "0000-01-01", "currency": "USD"}, "end must be an ISO 8601"),
        ("/v1/ledger/payouts", {"start": "0001-01-01T00:00:00+01:00", "end": "2026-12-01", "currency": "USD"}, "start must be an ISO 8601"),
        ("/v1/ledger/payouts", {"start": "9999-12-31T23:59:59-01:00", "end": "2026-12-01", "currency": "USD"}, "start must be an ISO 8601"),
        ("/v1/ledger/payouts", {"start": "", "end": "2026-12-01", "currency": "USD"}, "start is required"),
        ("/v1/ledger/payouts", {"start": "2026-12-01", "end": "2026-11-01", "currency": "USD"}, "before it starts"),
        ("/v1/ledger/payouts", {"start": "2026-11-01", "end": "2026-12-01", "currency": "US"}, "ISO 4217"),
        ("/v1/ledger/payouts", {"start": "2026-11-01", "end": "2026-12-01", "currency": "12€"}, "ISO 4217"),
        ("/v1/ledger/payouts", {"start": "2026-11-01", "end": "2026-12-01"}, "not valid"),
        ("/v1/ledger/payouts", {}, "not valid"),
        ("/v1/ledger/export.csv", {"start": "2026-11-01T25:00"}, "start must be an ISO 8601"),
        ("/v1/ledger/export.csv", {"end": "1 Dec 2026"}, "end must be an ISO 8601"),
        ("/v1/ledger/export.csv", {"start": "2026-12-01", "end": "2026-11-30"}, "before it starts"),
        ("/v1/revenue", {"by": "channel", "currency": "USD"}, "not valid"),
        ("/v1/revenue", {"by": "offer", "currency": "dollars"}, "ISO 4217"),
        ("/v1/revenue", {"by": "offer"}, "not valid"),
        ("/v1/revenue", {"currency": "USD"}, "not valid"),
    ],
)  # fmt: skip
def test_bad_query_parameters_are_422(
    client: TestClient, secret_headers, books: Books, url: str, params: dict[str, str], message: str
) -> None:
    r = client.get(url, headers=secret_headers, params=params)
    assert r.status_code == 422, r.text
    error = r.json()["error"]
    assert error["code"] == "validation_failed"
    assert message in error["message"]


def test_another_workspace_sees_nothing(
    client: TestClient, other_workspace: WorkspaceCreated, books: Books
) -> None:
    other = bearer(other_workspace.secret_key)
    r = client.get("/v1/ledger/orders/o-1", headers=other)
    assert r.status_code == 404 and r.json()["error"]["code"] == "ledger_order_not_found"
    assert ok(client, "/v1/revenue", other, by="offer", currency="USD") == {"items": [], "next_cursor": None}
    assert ok(client, "/v1/ledger/check", other) == {"balanced": True, "unbalanced_orders": []}
    payouts = ok(client, "/v1/ledger/payouts", other, start="2026-01-01", end="2027-01-01", currency="USD")
    assert payouts["gross"]["amount"] == 0 and payouts["orders"] == 0
    export = client.get("/v1/ledger/export.csv", headers=other)
    assert export.text == "occurred_at,kind,order_id,account,debit,credit,currency,memo\r\n"


def test_ledger_needs_a_secret_key(client: TestClient, write_headers, books: Books) -> None:
    for url in (
        "/v1/ledger/orders/o-1",
        "/v1/ledger/check",
        "/v1/revenue?by=offer&currency=USD",
        "/v1/ledger/export.csv",
    ):
        assert client.get(url, headers=write_headers).status_code == 403
        assert client.get(url).status_code == 401
