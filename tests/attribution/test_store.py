"""Attribution from the store over HTTP: touchpoints (UTM, offerloop's own clicks), Order Completed events,
lookback, conditions, the stored per-order credit and its sums by key and persona. Values solved by hand."""

from __future__ import annotations

from typing import Any

import orjson
import pytest
from fastapi.testclient import TestClient
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from sqlalchemy import select
from tests.conftest import basic, bearer

from offerloop.core.clock import utcnow
from offerloop.db.uow import Database
from offerloop.models import AttributionCredit, BuyerPersona, Event
from offerloop.workspaces.schemas import WorkspaceCreated

IG = "https://shop.example.com/?utm_source=instagram&utm_medium=social&utm_campaign=launch&utm_content=reel1"
GOOGLE = "https://shop.example.com/?utm_source=google&utm_medium=cpc&utm_campaign=brand"
PERIOD = {"start": "2026-11-01", "end": "2026-11-30"}


def _page(user: str, url: str, ts: str, n: int) -> dict[str, Any]:
    return {"type": "page", "userId": user, "messageId": f"p-{user}-{n}", "timestamp": ts,
            "context": {"page": {"url": url}}}  # fmt: skip


def _order(user: str, order_id: str, total: int, ts: str) -> dict[str, Any]:
    return {"type": "track", "event": "Order Completed", "userId": user, "messageId": f"o-{order_id}",
            "timestamp": ts, "properties": {"order_id": order_id, "total_minor": total, "currency": "USD"}}  # fmt: skip


def _journeys(client: TestClient, workspace: WorkspaceCreated) -> None:
    """u1: social 11-01, paid 11-03, order o1 $50 on 11-04. u2: e-mail click 11-02, order o2 $30 on 11-05.
    u3: social 11-02, no order (a null path). u4: order o3 $20 on 11-06 without any touch."""
    click = {"type": "track", "event": "Message Clicked", "userId": "u2", "messageId": "c-u2",
             "timestamp": "2026-11-02T10:00:00Z", "properties": {"channel": "email"},
             "context": {"campaign": {"source": "offerloop", "medium": "email", "name": "welcome",
                                      "content": "step1"}}}  # fmt: skip
    batch = [
        _page("u1", IG, "2026-11-01T10:00:00Z", 1),
        _page("u1", GOOGLE, "2026-11-03T10:00:00Z", 2),
        _order("u1", "o1", 5000, "2026-11-04T10:00:00Z"),
        click,
        _order("u2", "o2", 3000, "2026-11-05T10:00:00Z"),
        _page("u3", IG, "2026-11-02T10:00:00Z", 3),
        _order("u4", "o3", 2000, "2026-11-06T10:00:00Z"),
    ]
    r = client.post("/v1/batch", headers=basic(workspace.secret_key), content=orjson.dumps({"batch": batch}))
    assert r.status_code == 200, r.text


@pytest.fixture
def data(client: TestClient, workspace: WorkspaceCreated) -> dict[str, str]:
    _journeys(client, workspace)
    return bearer(workspace.secret_key)


def _get(client: TestClient, headers: dict[str, str], **params: Any) -> dict[str, Any]:
    r = client.get("/v1/attribution", headers=headers, params={**PERIOD, **params})
    assert r.status_code == 200, r.text
    body: dict[str, Any] = r.json()
    return body


def _table(body: dict[str, Any]) -> dict[str, tuple[float, float, float | None]]:
    return {c["channel"]: (c["conversions"], c["value"], c["removal_effect"]) for c in body["channels"]}


def _flat(d: dict[str, tuple[float, float, float | None]]) -> dict[tuple[str, int], float]:
    return {(k, i): -1.0 if x is None else x for k, v in d.items() for i, x in enumerate(v)}


@pytest.mark.parametrize(
    ("model", "expected"),
    [
        ("first", {"social": (1, 5000), "email": (1, 3000), "(none)": (1, 2000)}),
        ("last", {"paid": (1, 5000), "email": (1, 3000), "(none)": (1, 2000)}),
        ("linear", {"social": (0.5, 2500), "paid": (0.5, 2500), "email": (1, 3000), "(none)": (1, 2000)}),
        ("shapley", {"social": (0.5, 2500), "paid": (0.5, 2500), "email": (1, 3000), "(none)": (1, 2000)}),
    ],
)
def test_heuristics_by_channel(data: dict[str, str], client: TestClient, model: str,
                               expected: dict[str, tuple[float, float]]) -> None:  # fmt: skip
    body = _get(client, data, model=model)
    assert (body["model"], body["key"], body["currency"]) == (model, "channel", "USD")
    assert (body["conversions"], body["null_paths"]) == (3, 1)
    got = {k: (c, v) for k, (c, v, _) in _table(body).items() if c or v}
    assert got == expected


def test_markov(data: dict[str, str], client: TestClient) -> None:
    # start: social 2/4, email 1/4, (none) 1/4; social -> paid 1/2, null 1/2; the others convert.
    # P = 3/4; removing any one channel leaves 1/2: every removal effect is 1/3, 3 conversions shared equally.
    # Value: E = 1/4 * 5000 + 1/4 * 3000 + 1/4 * 2000 = 2500; without social or paid 1250 (RE 1/2),
    # without email 1750 (RE 0.3), without (none) 2000 (RE 0.2): 10000 shared 1/2 : 1/2 : 0.3 : 0.2.
    body = _get(client, data, model="markov")
    assert _flat(_table(body)) == pytest.approx(
        _flat({"social": (0.75, 10000 / 3, 1 / 3), "paid": (0.75, 10000 / 3, 1 / 3),
               "email": (0.75, 2000, 1 / 3), "(none)": (0.75, 4000 / 3, 1 / 3)}), rel=1e-12)  # fmt: skip


def test_by_source_campaign_and_content(data: dict[str, str], client: TestClient) -> None:
    linear = {"model": "linear"}
    assert _table(_get(client, data, by="source", **linear)) == {
        "(none)": (1, 2000, None), "google": (0.5, 2500, None), "instagram": (0.5, 2500, None),
        "offerloop": (1, 3000, None),
    }  # fmt: skip
    assert _table(_get(client, data, by="campaign", **linear)) == {
        "(none)": (1, 2000, None), "brand": (0.5, 2500, None), "launch": (0.5, 2500, None),
        "welcome": (1, 3000, None),
    }  # fmt: skip
    # content: the post (utm_content) or offerloop's step; the paid touch has none.
    assert _table(_get(client, data, by="content", **linear)) == {
        "(none)": (1.5, 4500, None), "reel1": (0.5, 2500, None), "step1": (1, 3000, None),
    }  # fmt: skip


def test_lookback_and_condition(data: dict[str, str], client: TestClient) -> None:
    # Two days of lookback: u1's social touch and u2's e-mail click (3 days before their orders) are out.
    assert _table(_get(client, data, model="first", lookback_days=2)) == {
        "(none)": (2, 5000, None), "paid": (1, 5000, None), "social": (0, 0, None),
    }  # fmt: skip
    body = _get(client, data, model="last", where='{"total_minor": {"gte": 2500}}')
    assert body["conversions"] == 2
    assert {k: v for k, v in _table(body).items() if v[0]} == {
        "email": (1, 3000, None),
        "paid": (1, 5000, None),
    }
    # Another conversion event: no conversions, u1..u3's touches are null paths.
    other = _get(client, data, model="markov", conversion="Trial Started")
    assert (other["conversions"], other["null_paths"], other["currency"]) == (0, 3, None)
    assert all(c["conversions"] == 0 for c in other["channels"])


def test_time_decay_uses_days(data: dict[str, str], client: TestClient) -> None:
    # u1: social 3 days and paid 1 day before the order; half-life 2 days: weights 2^-1.5 and 2^-0.5.
    body = _get(client, data, model="time_decay", half_life_days=2)
    social = 2**-1.5 / (2**-1.5 + 2**-0.5)
    got = _table(body)
    assert got["social"][0] == pytest.approx(social, rel=1e-12)
    assert got["paid"][0] == pytest.approx(1 - social, rel=1e-12)
    assert got["social"][0] == pytest.approx(1 / 3, rel=1e-12)


@pytest.mark.parametrize(
    ("params", "status"),
    [
        ({"model": "u_shaped"}, 422),
        ({"start": "2026-11-30", "end": "2026-11-01"}, 422),
        ({"lookback_days": 0}, 422),
        ({"lookback_days": 366}, 422),
        ({"start": "not-a-date"}, 422),
        ({"start": "2026-02-30"}, 422),
        ({"by": "persona"}, 422),
        ({"order": 4}, 422),
        ({"where": "{not json"}, 422),
        ({"where": '{"total_minor": {"between": 3}}'}, 422),
        ({"start": "1900-01-01", "end": "2026-11-30"}, 422),
        ({"half_life_days": "nan"}, 422),
        ({"currency": "usd"}, 422),
        ({"lookback_days": 10**30}, 422),
    ],
)
def test_every_parameter_is_validated(
    data: dict[str, str], client: TestClient, params: dict[str, Any], status: int
) -> None:
    r = client.get("/v1/attribution", headers=data, params={**PERIOD, **params})
    assert r.status_code == status, r.text
    assert "error" in r.json()


def test_empty_period_and_other_workspace(
    data: dict[str, str], client: TestClient, other_workspace: WorkspaceCreated
) -> None:
    empty = _get(client, data, start="2025-01-01", end="2025-01-31")
    assert (empty["conversions"], empty["null_paths"], empty["channels"]) == (0, 0, [])
    other = _get(client, bearer(other_workspace.secret_key))
    assert (other["conversions"], other["null_paths"], other["channels"]) == (0, 0, [])
    assert client.get("/v1/attribution", params=PERIOD).status_code == 401
    assert client.get("/v1/attribution", headers=basic(other_workspace.write_key), params=PERIOD).status_code in (
        401, 403,
    )  # fmt: skip


def _credits(db: Database, workspace_id: str) -> list[tuple[Any, ...]]:
    with db.read() as session:
        rows = session.execute(
            select(AttributionCredit.model, AttributionCredit.conversion_id, AttributionCredit.channel,
                   AttributionCredit.source, AttributionCredit.campaign, AttributionCredit.content,
                   AttributionCredit.share, AttributionCredit.value_minor, AttributionCredit.currency)
            .where(AttributionCredit.workspace_id == workspace_id)
            .order_by(AttributionCredit.model, AttributionCredit.conversion_id, AttributionCredit.channel)
        )  # fmt: skip
        return [tuple(r) for r in rows]


def test_refresh_stores_credit_per_order_idempotently(
    data: dict[str, str], client: TestClient, db: Database, workspace: WorkspaceCreated
) -> None:
    body = {"models": ["linear", "markov"], **PERIOD}
    r = client.post("/v1/attribution/refresh", headers=data, json=body)
    assert r.status_code == 200, r.text
    assert r.json() == {"models": ["linear", "markov"], "conversion": "Order Completed", "start": "2026-11-01",
                        "end": "2026-11-30", "conversions": 3, "rows": 8}  # fmt: skip
    first = _credits(db, workspace.id)
    assert first[:4] == [
        ("linear", "o1", "paid", "google", "brand", "", 0.5, 2500.0, "USD"),
        ("linear", "o1", "social", "instagram", "launch", "reel1", 0.5, 2500.0, "USD"),
        ("linear", "o2", "email", "offerloop", "welcome", "step1", 1.0, 3000.0, "USD"),
        ("linear", "o3", "(none)", "", "", "", 1.0, 2000.0, "USD"),
    ]
    # Markov per order: o1's share split by the removal effects of social and paid (1/3 each).
    assert [(*r[1:3], r[6]) for r in first[4:]] == [("o1", "paid", 0.5), ("o1", "social", 0.5),
                                                     ("o2", "email", 1.0), ("o3", "(none)", 1.0)]  # fmt: skip
    again = client.post("/v1/attribution/refresh", headers=data, json=body)
    assert again.json()["rows"] == 8
    assert _credits(db, workspace.id) == first


def test_credits_by_key_and_persona(
    data: dict[str, str], client: TestClient, db: Database, workspace: WorkspaceCreated
) -> None:
    assert (
        client.post(
            "/v1/attribution/refresh", headers=data, json={"models": ["linear"], **PERIOD}
        ).status_code
        == 200
    )
    with db.write() as session:
        buyer = session.scalar(select(Event.buyer_id).where(Event.workspace_id == workspace.id,
                                                            Event.message_id == "o-o1"))  # fmt: skip
        assert buyer is not None
        session.add(BuyerPersona(buyer_id=buyer, workspace_id=workspace.id, persona="builder", confidence=0.9,
                                 posterior={"builder": 0.9}, reasons=[], templates_version=1,
                                 updated_at=utcnow()))  # fmt: skip
    r = client.get(
        "/v1/attribution/credits", headers=data, params={"model": "linear", "by": "persona", **PERIOD}
    )
    assert r.status_code == 200, r.text
    assert r.json()["credits"] == [
        {"key": "(none)", "currency": "USD", "conversions": 2.0, "value_minor": 5000.0},
        {"key": "builder", "currency": "USD", "conversions": 1.0, "value_minor": 5000.0},
    ]
    by_channel = client.get("/v1/attribution/credits", headers=data,
                            params={"model": "linear", "by": "channel", **PERIOD}).json()["credits"]  # fmt: skip
    assert [(c["key"], c["conversions"], c["value_minor"]) for c in by_channel] == [
        ("(none)", 1.0, 2000.0), ("email", 1.0, 3000.0), ("paid", 0.5, 2500.0), ("social", 0.5, 2500.0),
    ]  # fmt: skip


def test_refresh_refuses_bad_input(data: dict[str, str], client: TestClient) -> None:
    for body in ({"models": ["u_shaped"]}, {"models": []}, {"lookback_days": 0}, {"start": "2026-12-01",
                 "end": "2026-11-01"}, {"where": {"total_minor": {"nope": 1}}}):  # fmt: skip
        r = client.post("/v1/attribution/refresh", headers=data, json=body)
        assert r.status_code == 422, (body, r.text)


@pytest.mark.parametrize(
    "params",
    [
        {"start": "0001-01-01", "end": "0001-01-01"},
        {"end": "9999-12-31"},
        {"start": "9999-12-31", "end": "9999-12-31"},
        {"conversion": "Order\x00Completed"},
        {"conversion": " "},
        {"where": "[1, 2]"},
        {"where": "3"},
        {"where": '{"a": {"matches": "("}}'},
        {"where": "[" * 500 + "]" * 500},
    ],
)
def test_edge_input_is_a_clear_422(
    client: TestClient, secret_headers: dict[str, str], params: dict[str, str]
) -> None:
    for route in ("/v1/attribution", "/v1/attribution/credits"):
        r = client.get(route, headers=secret_headers, params=params)
        assert r.status_code in ((422,) if route == "/v1/attribution" or "start" in params or "end" in params
                                 else (200, 422)), (route, r.text)  # fmt: skip


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    params=st.dictionaries(
        st.sampled_from(
            [
                "model",
                "conversion",
                "where",
                "start",
                "end",
                "by",
                "lookback_days",
                "order",
                "half_life_days",
                "currency",
            ]
        ),
        st.text(max_size=40),
        max_size=6,
    )
)
def test_no_query_is_a_server_error(
    client: TestClient, secret_headers: dict[str, str], params: dict[str, str]
) -> None:
    r = client.get("/v1/attribution", headers=secret_headers, params=params)
    assert r.status_code in (200, 422), r.text


def test_markov_folds_values_past_its_limit_into_other(client, data, monkeypatch) -> None:
    """Past MAX_MARKOV_KEYS values (3 here), those in the fewest converting paths share "(other)": campaigns
    launch (u1's order, u3's null path), brand (u1), welcome (u2) and (none) (u4) keep launch and (none)
    (ties by name). Paths: launch > (other) ($50), (other) ($30), launch (null), (none) ($20).
    P(conv) = 1/2·1/2 + 1/4 + 1/4 = 3/4; without launch 1/2, without (other) 1/4, without (none) 1/2:
    removal effects 1/3, 2/3, 1/3, so the 3 orders split 0.75 / 1.5 / 0.75. Expected value 2,500 (from
    (other) a conversion is worth 4,000, from (none) 2,000); without each: 1,500, 500, 2,000 → effects 0.4,
    0.8, 0.2 of the $100."""
    from offerloop.attribution import service

    monkeypatch.setattr(service, "MAX_MARKOV_KEYS", 3)
    got = _table(_get(client, data, model="markov", by="campaign"))
    assert got == {
        "launch": (pytest.approx(0.75), pytest.approx(10_000 * 0.4 / 1.4), pytest.approx(1 / 3)),
        "(other)": (pytest.approx(1.5), pytest.approx(10_000 * 0.8 / 1.4), pytest.approx(2 / 3)),
        "(none)": (pytest.approx(0.75), pytest.approx(10_000 * 0.2 / 1.4), pytest.approx(1 / 3)),
    }
    # Other models keep every value.
    assert set(_table(_get(client, data, model="linear", by="campaign"))) == {
        "launch",
        "brand",
        "welcome",
        "(none)",
    }
