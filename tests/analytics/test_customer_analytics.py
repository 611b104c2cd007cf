"""Summary, retention (and vs the holdout) and cohorts on hand-built purchases, in the service and over HTTP.

The data (all days UTC; USD unless said):
  b1  2026-01-05 1000 and 500 (one transaction: same day), 2026-02-04 2000   -> second purchase day 30
  b2  2026-01-10 3000, 2026-03-11 1000                                       -> day 60
  b3  2026-02-01 700
  b4  2026-02-15 400 refunded (no purchase), 900 partially refunded by 100 (800), 2026-02-16 100 -> day 1
  b5  imported by CSV: 2026-03-01 2500; and an order 2026-03-05 999 imported completed then refunded (none)
  b6  2026-01-20 pending (none), 2026-04-01 EUR 5000                          -> the data's end: 2026-04-01
  b7  2026-01-07 200 and 300 (same day only: never "again")
Days from each first purchase to 2026-04-01: b1 86, b2 81, b3 59, b4 45, b5 31, b6 0, b7 84.
"""

from __future__ import annotations

from datetime import date
from typing import Any

import pytest
from fastapi.testclient import TestClient
from tests.analytics.helpers import (
    add_buyers,
    add_order,
    buyer_of,
    import_orders,
    set_persona,
    touch,
)
from tests.conftest import bearer

from offerloop.analytics import service
from offerloop.analytics.exceptions import BadAnalyticsQuery, CurrencyRequired
from offerloop.db.uow import Database
from offerloop.decisions import service as decision_service
from offerloop.workspaces.schemas import WorkspaceCreated

IMPORT_CSV = """order_id,user_id,amount,currency,status,created_at
imp-1,b5,25.00,USD,completed,2026-03-01T09:00:00Z
imp-2,b5,9.99,USD,completed,2026-03-05T09:00:00Z
imp-2,b5,9.99,USD,refunded,2026-03-06T09:00:00Z
"""


def build(db: Database, ws: str) -> dict[str, str]:
    add_buyers(db, ws, "b1", "b2", "b3", "b4", "b6", "b7")
    add_order(db, ws, "b1", "2026-01-05T08:00", 1000)
    add_order(db, ws, "b1", "2026-01-05T20:00", 500)
    add_order(db, ws, "b1", "2026-02-04T12:00", 2000)
    add_order(db, ws, "b2", "2026-01-10T12:00", 3000)
    add_order(db, ws, "b2", "2026-03-11T23:59", 1000)
    add_order(db, ws, "b3", "2026-02-01T00:00", 700)
    add_order(db, ws, "b4", "2026-02-15T10:00", 400, status="refunded", refunded=400)
    add_order(db, ws, "b4", "2026-02-15T11:00", 900, status="partially_refunded", refunded=100)
    add_order(db, ws, "b4", "2026-02-16T11:00", 100)
    add_order(db, ws, "b6", "2026-01-20T11:00", 800, status="pending")
    add_order(db, ws, "b6", "2026-04-01T11:00", 5000, currency="EUR")
    add_order(db, ws, "b7", "2026-01-07T10:00", 200)
    add_order(db, ws, "b7", "2026-01-07T12:00", 300)
    import_orders(db, ws, IMPORT_CSV)
    return {"b5": buyer_of(db, ws, "b5")}


@pytest.fixture
def data(db: Database, workspace: WorkspaceCreated) -> dict[str, str]:
    return build(db, workspace.id)


def get(client: TestClient, url: str, key: str, **params: Any) -> Any:
    r = client.get(url, headers=bearer(key), params=params)
    assert r.status_code == 200, r.text
    return r.json()


def test_purchases_are_paid_orders_net_of_refunds_and_imported_orders(
    db: Database, workspace: WorkspaceCreated, data: dict[str, str]
) -> None:
    with db.read() as session:
        frame = service.purchases(session=session, workspace_id=workspace.id)
    rows = sorted(
        (r["buyer_id"], r["at"].isoformat(), r["amount_minor"], r["currency"])
        for r in frame.iter_rows(named=True)
    )
    assert rows == sorted([
        ("b1", "2026-01-05T08:00:00", 1000, "USD"), ("b1", "2026-01-05T20:00:00", 500, "USD"),
        ("b1", "2026-02-04T12:00:00", 2000, "USD"), ("b2", "2026-01-10T12:00:00", 3000, "USD"),
        ("b2", "2026-03-11T23:59:00", 1000, "USD"), ("b3", "2026-02-01T00:00:00", 700, "USD"),
        ("b4", "2026-02-15T11:00:00", 800, "USD"), ("b4", "2026-02-16T11:00:00", 100, "USD"),
        (data["b5"], "2026-03-01T09:00:00", 2500, "USD"), ("b6", "2026-04-01T11:00:00", 5000, "EUR"),
        ("b7", "2026-01-07T10:00:00", 200, "USD"), ("b7", "2026-01-07T12:00:00", 300, "USD"),
    ])  # fmt: skip


def test_a_reimport_with_a_new_revision_counts_the_order_once(
    db: Database, workspace: WorkspaceCreated
) -> None:
    csv = "order_id,user_id,amount,created_at\nr-1,u1,10.00,2026-05-01\n"
    import_orders(db, workspace.id, csv)
    import_orders(db, workspace.id, csv.replace("10.00", "12.00"), revision="fix")
    with db.read() as session:
        s = service.summary(session=session, workspace_id=workspace.id)
    assert (s.buyers, s.revenue_minor, s.currency) == (1, 1200, "USD")


def test_summary(client: TestClient, workspace: WorkspaceCreated, data: dict[str, str]) -> None:
    key = workspace.secret_key
    january = get(client, "/v1/analytics/summary", key, start="2026-01-01", end="2026-02-01", currency="usd")
    assert {k: january[k] for k in ("buyers", "revenue_minor", "arpu_minor", "currency")} == {
        "buyers": 3, "revenue_minor": 5000, "arpu_minor": 1666, "currency": "USD",
    }  # fmt: skip
    assert january["start"] == "2026-01-01T00:00:00Z" and january["end"] == "2026-02-01T00:00:00Z"
    # end is exclusive: b3's purchase at 2026-02-01T00:00 is February's
    feb = get(
        client,
        "/v1/analytics/summary",
        key,
        start="2026-02-01",
        end="2026-03-01T00:00:00+00:00",
        currency="USD",
    )
    assert (feb["buyers"], feb["revenue_minor"], feb["arpu_minor"]) == (3, 3600, 1200)
    everything = get(client, "/v1/analytics/summary", key, currency="USD")
    assert (everything["buyers"], everything["revenue_minor"], everything["arpu_minor"]) == (6, 12100, 2016)
    eur = get(client, "/v1/analytics/summary", key, currency="EUR")
    assert (eur["buyers"], eur["revenue_minor"], eur["arpu_minor"]) == (1, 5000, 5000)
    jpy = get(client, "/v1/analytics/summary", key, currency="JPY")
    assert (jpy["buyers"], jpy["revenue_minor"], jpy["arpu_minor"]) == (0, 0, 0)
    # two currencies sold: which one must be said
    r = client.get("/v1/analytics/summary", headers=bearer(key))
    assert r.status_code == 422 and r.json()["error"]["code"] == CurrencyRequired.code
    assert r.json()["error"]["details"] == {"currencies": ["EUR", "USD"]}


def test_summary_without_purchases_and_with_one_currency(
    db: Database, client: TestClient, workspace: WorkspaceCreated
) -> None:
    empty = get(client, "/v1/analytics/summary", workspace.secret_key)
    assert (empty["buyers"], empty["revenue_minor"], empty["arpu_minor"], empty["currency"]) == (
        0,
        0,
        0,
        None,
    )
    add_order(db, workspace.id, "x", "2026-01-01", 999, currency="EUR")
    one = get(client, "/v1/analytics/summary", workspace.secret_key)
    assert (one["buyers"], one["revenue_minor"], one["currency"]) == (1, 999, "EUR")


def test_retention_counts_day_n_and_not_the_same_day(
    client: TestClient, workspace: WorkspaceCreated, data: dict[str, str]
) -> None:
    body = get(client, "/v1/analytics/retention", workspace.secret_key, days="29,30,60,90")
    # eligible for 30: b1 b2 b3 b4 b5 b7 (first purchase >= 30 days before 2026-04-01); b1 (day 30) and b4
    # (day 1) came back; b7 bought twice on one day only. For 60: b1 b2 b7, of whom b1 and b2.
    assert body == {
        "repeat_within": {"29": 1 / 6, "30": 2 / 6, "60": 2 / 3, "90": None},
        "eligible": {"29": 6, "30": 6, "60": 3, "90": 0},
        "repeaters": {"29": 1, "30": 2, "60": 2, "90": 0},
        "buyers": 7,
        "as_of": "2026-04-01",
    }
    # the data's end moved back: b2's day-60 purchase (2026-03-11) is after it
    early = get(client, "/v1/analytics/retention", workspace.secret_key, days="30,60", as_of="2026-03-10")
    # firsts to 2026-03-10: b1 64, b2 59, b3 37, b4 23, b5 (2026-03-01) 9, b7 62; b6 is not a buyer yet
    # b2's second purchase and b4 (23 days) are out: only b1 came back within 30 (and 60) days
    assert early["eligible"] == {"30": 4, "60": 2} and early["repeaters"] == {"30": 1, "60": 1}
    assert early["buyers"] == 6 and early["as_of"] == "2026-03-10"


def test_retention_of_the_holdout_group(
    db: Database, workspace: WorkspaceCreated, data: dict[str, str]
) -> None:
    buyers = ["b1", "b2", "b3", "b4", data["b5"], "b6", "b7"]
    held = {b for b in buyers if decision_service.in_holdout(workspace.id, b, 0.5)}
    with db.read() as session:
        everyone = service.holdout_retention(
            session=session, workspace_id=workspace.id, windows=[30], holdout_share=0.0
        )
        nobody = service.holdout_retention(
            session=session, workspace_id=workspace.id, windows=[30], holdout_share=1.0
        )
        half = service.holdout_retention(
            session=session, workspace_id=workspace.id, windows=[30], holdout_share=0.5
        )
    assert everyone.personalized.model_dump() == {
        "buyers": 7, "repeat_within": {"30": 2 / 6}, "eligible": {"30": 6}, "repeaters": {"30": 2}
    }  # fmt: skip
    assert everyone.holdout.model_dump() == {
        "buyers": 0, "repeat_within": {"30": None}, "eligible": {"30": 0}, "repeaters": {"30": 0}
    }  # fmt: skip
    assert everyone.delta == {"30": None} and nobody.holdout.buyers == 7 and nobody.personalized.buyers == 0
    # at 0.5 the groups are the buyers' stable draws
    repeat = {"b1", "b4"}
    eligible = {"b1", "b2", "b3", "b4", data["b5"], "b7"}
    for group, members in ((half.holdout, held), (half.personalized, set(buyers) - held)):
        assert group.buyers == len(members)
        assert group.eligible == {"30": len(members & eligible)}
        assert group.repeaters == {"30": len(members & repeat)}
    assert half.holdout_share == 0.5


def test_holdout_endpoint_uses_the_servers_share(
    client: TestClient, workspace: WorkspaceCreated, data: dict[str, str]
) -> None:
    body = get(client, "/v1/analytics/retention/holdout", workspace.secret_key, days="30")
    assert body["holdout_share"] == 0.1
    assert body["holdout"]["buyers"] + body["personalized"]["buyers"] == 7


def test_cohorts_by_first_purchase_month(
    client: TestClient, workspace: WorkspaceCreated, data: dict[str, str]
) -> None:
    body = get(client, "/v1/analytics/cohorts", workspace.secret_key, by="first_purchase_month", periods=3)
    assert body == {
        "by": "first_purchase_month",
        "periods": 3,
        "as_of": "2026-04-01",
        "cohorts": [
            {"cohort": "2026-01", "segment": None, "size": 3, "active": [1 / 3, 1 / 3, 0.0],
             "revenue_minor": {"USD": 8000}},
            {"cohort": "2026-02", "segment": None, "size": 2, "active": [0.0, 0.0, None],
             "revenue_minor": {"USD": 1600}},
            {"cohort": "2026-03", "segment": None, "size": 1, "active": [0.0, None, None],
             "revenue_minor": {"USD": 2500}},
            {"cohort": "2026-04", "segment": None, "size": 1, "active": [None, None, None],
             "revenue_minor": {"EUR": 5000}},
        ],
    }  # fmt: skip


def test_cohorts_by_persona_and_by_first_touch(
    db: Database, client: TestClient, workspace: WorkspaceCreated, data: dict[str, str]
) -> None:
    ws = workspace.id
    set_persona(db, ws, "b1", "pro")
    set_persona(db, ws, "b2", "pro")
    set_persona(db, ws, "b3", "hobby")
    touch(db, ws, "b1", "email", "2025-12-01")
    touch(db, ws, "b1", "social", "2025-11-01")  # earlier: b1's first touch
    touch(db, ws, "b2", "search", "2025-12-24")
    touch(db, ws, "b7", "social", "2026-01-01")
    by_persona = get(client, "/v1/analytics/cohorts", workspace.secret_key, by="persona", periods=2)[
        "cohorts"
    ]
    assert [(c["cohort"], c["segment"], c["size"], c["active"], c["revenue_minor"]) for c in by_persona] == [
        ("2026-01", "pro", 2, [0.5, 0.5], {"USD": 7500}),
        ("2026-01", "unknown", 1, [0.0, 0.0], {"USD": 500}),
        ("2026-02", "hobby", 1, [0.0, 0.0], {"USD": 700}),
        ("2026-02", "unknown", 1, [0.0, 0.0], {"USD": 900}),
        ("2026-03", "unknown", 1, [0.0, None], {"USD": 2500}),
        ("2026-04", "unknown", 1, [None, None], {"EUR": 5000}),
    ]
    by_touch = get(client, "/v1/analytics/cohorts", workspace.secret_key, by="first_touch_channel", periods=1)
    assert [(c["cohort"], c["segment"], c["size"], c["active"]) for c in by_touch["cohorts"]] == [
        ("2026-01", "search", 1, [0.0]),
        ("2026-01", "social", 2, [0.5]),
        ("2026-02", "unknown", 2, [0.0]),
        ("2026-03", "unknown", 1, [0.0]),
        ("2026-04", "unknown", 1, [None]),
    ]


def test_another_workspace_sees_nothing(
    client: TestClient, workspace: WorkspaceCreated, other_workspace: WorkspaceCreated, data: dict[str, str]
) -> None:
    key = other_workspace.secret_key
    assert get(client, "/v1/analytics/summary", key, currency="USD")["buyers"] == 0
    assert get(client, "/v1/analytics/retention", key)["buyers"] == 0
    assert get(client, "/v1/analytics/cohorts", key)["cohorts"] == []
    assert get(client, "/v1/analytics/velocity", key)["personas"] == []
    assert client.get("/v1/analytics/summary", headers=bearer(workspace.write_key)).status_code in (401, 403)
    assert client.get("/v1/analytics/summary").status_code == 401


@pytest.mark.parametrize(
    ("path", "params"),
    [
        ("/v1/analytics/retention", {"days": "0"}),
        ("/v1/analytics/retention", {"days": "abc"}),
        ("/v1/analytics/retention", {"days": ""}),
        ("/v1/analytics/retention", {"days": "30,,60"}),
        ("/v1/analytics/retention", {"days": "99999999999999999999999"}),
        ("/v1/analytics/retention", {"days": ",".join(str(n) for n in range(1, 14))}),
        ("/v1/analytics/retention", {"as_of": "2026-13-45"}),
        ("/v1/analytics/retention/holdout", {"days": "-5"}),
        ("/v1/analytics/cohorts", {"periods": "1000"}),
        ("/v1/analytics/cohorts", {"periods": "0"}),
        ("/v1/analytics/cohorts", {"by": "zodiac"}),
        ("/v1/analytics/summary", {"start": "2026-03-01", "end": "2026-02-01", "currency": "USD"}),
        ("/v1/analytics/summary", {"currency": "XXQ"}),
        ("/v1/analytics/summary", {"start": "yesterday"}),
        ("/v1/analytics/summary", {"start": "99999-01-01"}),
        ("/v1/analytics/velocity", {"as_of": "garbage"}),
    ],
)
def test_bad_parameters_are_422(
    client: TestClient, workspace: WorkspaceCreated, path: str, params: dict[str, str]
) -> None:
    r = client.get(path, headers=bearer(workspace.secret_key), params=params)
    assert r.status_code == 422, r.text
    assert r.json()["error"]["code"]


def test_service_bounds() -> None:
    assert service.parse_windows("30, 60,30,90") == [30, 60, 90]
    with pytest.raises(BadAnalyticsQuery):
        service.parse_windows("3661")
    with pytest.raises(BadAnalyticsQuery):
        service.parse_windows("1.5")


def test_far_dates_are_empty_not_errors(
    client: TestClient, workspace: WorkspaceCreated, data: dict[str, str]
) -> None:
    body = get(client, "/v1/analytics/summary", workspace.secret_key, start="9999-12-31", currency="USD")
    assert body["buyers"] == 0
    # a day after today has no data yet: refused by the shared parsing (tests/api/test_strict_parameters.py)
    r = client.get(
        "/v1/analytics/retention", params={"as_of": "9999-12-31"}, headers=bearer(workspace.secret_key)
    )
    assert (r.status_code, r.json()["error"]["details"][0]["type"]) == (422, "future_date")
    assert get(client, "/v1/analytics/cohorts", workspace.secret_key, as_of="0001-01-01")["cohorts"] == []
    assert get(client, "/v1/analytics/retention", workspace.secret_key, as_of="0001-01-01")["buyers"] == 0
    assert date(2026, 4, 1).isoformat() == get(client, "/v1/analytics/cohorts", workspace.secret_key)["as_of"]
