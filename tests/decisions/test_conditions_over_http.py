"""The condition language over HTTP: an action's when: decides who sees it, and a broken condition in any
config is a 422 with every problem named — never a 500, never stored."""

from __future__ import annotations

import orjson
import pytest
from tests.conftest import msg

BASE = {"kind": "offer", "title": "t", "outcome": {"event": "Order Completed", "window_days": 7}}


def test_when_reads_the_live_buyer_state(client, write_headers, secret_headers) -> None:
    client.app.state.settings.holdout_share = 0.0
    catalog = [
        {**BASE, "key": "repeat", "when": {"path": "features.orders", "gte": 2}},
        {**BASE, "key": "first", "when": {"not": {"path": "features.orders", "gte": 1}}},
    ]
    assert client.put("/v1/actions", headers=secret_headers, json=catalog).status_code == 200
    events = [msg(type="identify", userId="c1", messageId="c1-i")]
    events += [
        msg(type="track", userId="c1", event="Order Completed", messageId=f"c1-o{i}",
            properties={"total_minor": 1000, "currency": "USD", "order_id": f"o{i}"})
        for i in range(2)
    ]  # fmt: skip
    r = client.post("/v1/batch", headers=write_headers, content=orjson.dumps({"batch": events}))
    assert r.status_code == 200 and r.json()["accepted"] == 3, r.text
    body = client.post(
        "/v1/decide", headers=secret_headers, json={"placement": "home", "user_id": "c1", "k": 5}
    )
    assert body.status_code == 200, body.text
    assert [i["id"] for i in body.json()["items"]] == ["repeat"]
    why = client.get(f"/v1/decisions/{body.json()['decision_id']}", headers=secret_headers).json()
    assert why["excluded"] == [{"id": "first", "reason": "when:not features.orders >= 1"}]
    stranger = client.post(
        "/v1/decide", headers=secret_headers, json={"placement": "home", "user_id": "new", "k": 5}
    )
    assert [i["id"] for i in stranger.json()["items"]] == ["first"]


@pytest.mark.parametrize(
    ("route", "body", "needle"),
    [
        (
            "/v1/actions",
            [{**BASE, "key": "k", "when": {"path": "traits.plan", "eq": 1}}],
            "'traits' cannot be read here",
        ),
        ("/v1/actions", [{**BASE, "key": "k", "requires": {"orders": {"gtee": 1}}}], "did you mean 'gte'?"),
        (
            "/v1/actions",
            [{**BASE, "key": "k", "when": {"path": "features.x", "matches": "("}}],
            "invalid regular expression",
        ),
        (
            "/v1/actions",
            [{**BASE, "key": "k", "when": {"all": [{"path": "features.x", "eq": i} for i in range(1001)]}}],
            "more than 1000 conditions",
        ),
        (
            "/v1/signals",
            {"rules": [{"where": {"plan": {"within": "soon"}}, "weight": 1, "confidence": 1}]},
            "rules[0].where.plan.within: must be a duration",
        ),
        (
            "/v1/features/spec",
            {"features": [{"name": "n", "kind": "count", "match": {"where": {"x": {"in": []}}}}]},
            "features[0].match.where.x.in: must be a list of 1 to 1000 values",
        ),
    ],
)
def test_a_broken_condition_is_refused_with_its_reason(client, secret_headers, route, body, needle) -> None:
    before = client.get(route, headers=secret_headers).json()
    r = client.put(route, headers=secret_headers, json=body)
    assert r.status_code == 422, r.text
    assert needle in r.text
    assert client.get(route, headers=secret_headers).json() == before


def test_deeply_nested_conditions_are_refused_not_crashed(client, secret_headers) -> None:
    deep: object = {"path": "features.x", "eq": 1}
    for _ in range(40):
        deep = {"not": deep}
    r = client.put("/v1/actions", headers=secret_headers, json=[{**BASE, "key": "k", "when": deep}])
    assert r.status_code == 422 and "nested deeper than 16 levels" in r.text
