"""Features and personas are fresh the moment an event is acknowledged (same transaction)."""

from __future__ import annotations

from pathlib import Path

import orjson
import pytest
from tests.conftest import msg

DEMO_PERSONAS = Path(__file__).resolve().parents[2] / "examples" / "demo" / "personas.yaml"


@pytest.fixture
def send(client, write_headers):
    def _send(*messages):
        r = client.post("/v1/batch", headers=write_headers, content=orjson.dumps({"batch": list(messages)}))
        assert r.status_code == 200 and r.json()["quarantined"] == 0, r.text
        return r.json()

    return _send


@pytest.fixture
def state(client, secret_headers):
    def _state(**lookup):
        buyer = client.get("/v1/buyers/lookup", params=lookup, headers=secret_headers).json()
        return client.get(f"/v1/buyers/{buyer['id']}/state", headers=secret_headers).json()

    return _state


@pytest.fixture
def with_personas(client, secret_headers):
    r = client.put("/v1/personas/templates", headers=secret_headers, json=DEMO_PERSONAS.read_text())
    assert r.status_code == 200 and r.json() == {"version": 1}


def order(user: str, n: int, day: int, **props: object) -> dict[str, object]:
    return msg(type="track", userId=user, event="Order Completed", messageId=f"{user}-o{n}",
               timestamp=f"2026-11-{day:02d}T10:00:00Z", properties={"order_id": f"{user}-{n}", "revenue": "49.00", **props})  # fmt: skip


def test_features_are_fresh_at_acknowledgement(send, state):
    send(
        msg(
            type="identify",
            userId="f1",
            traits={"email": "f1@example.com"},
            messageId="f1-i",
            timestamp="2026-11-01T09:00:00Z",
        )
    )
    assert state(user_id="f1")["features"]["stage"] == "lead"
    send(order("f1", 1, 2))
    features = state(user_id="f1")["features"]
    assert (features["orders"], features["monetary_minor"], features["stage"]) == (1, 4900, "customer")
    send(order("f1", 2, 3, product_type="drop"))
    features = state(user_id="f1")["features"]
    assert (features["orders"], features["drop_orders"], features["monetary_minor"], features["stage"]) == (
        2, 1, 9800, "repeat_customer",
    )  # fmt: skip


def test_merge_replays_both_histories_into_the_survivor(send, state):
    send(
        msg(type="identify", userId="m1", messageId="m1-i", timestamp="2026-11-01T09:00:00Z"),
        order("m1", 1, 2),
    )
    send(msg(type="track", anonymousId="m-phone", event="Order Completed", messageId="anon-o1",
             timestamp="2026-11-03T10:00:00Z", properties={"revenue": "10.00"}))  # fmt: skip
    assert state(anonymous_id="m-phone")["features"]["orders"] == 1
    send(
        msg(
            type="identify",
            userId="m1",
            anonymousId="m-phone",
            messageId="m1-link",
            timestamp="2026-11-04T09:00:00Z",
        )
    )
    merged = state(user_id="m1")["features"]
    assert (merged["orders"], merged["monetary_minor"]) == (2, 5900)


def test_persona_is_inferred_with_reasons_and_history(send, state, with_personas):
    send(
        msg(
            type="identify",
            userId="p1",
            traits={"email": "p1@example.com"},
            messageId="p1-i",
            timestamp="2026-11-01T09:00:00Z",
        )
    )
    first = state(user_id="p1")["persona"]
    assert first["history"][0]["from"] is None
    renewals = [
        msg(
            type="track",
            userId="p1",
            event=name,
            messageId=f"p1-s{i}",
            timestamp=f"2026-11-{2 + i:02d}T10:00:00Z",
        )
        for i, name in enumerate(
            ["Subscription Started", "Subscription Renewed", "Subscription Renewed", "Subscription Renewed"]
        )
    ]
    modules = [
        msg(type="track", userId="p1", event="Module Completed", properties={"module_id": f"mod-{i}"}, messageId=f"p1-m{i}",
            timestamp=f"2026-11-{10 + i:02d}T10:00:00Z")
        for i in range(6)
    ]  # fmt: skip
    send(*renewals, *modules)
    persona = state(user_id="p1")["persona"]
    assert persona["name"] == "subscription_loyalist"
    assert persona["confidence"] == max(persona["posterior"].values()) and persona["confidence"] > 0.6
    assert abs(sum(persona["posterior"].values()) - 1.0) < 1e-9
    assert persona["reasons"] and {r["persona"] for r in persona["reasons"]} == {"subscription_loyalist"}
    assert [h["to"] for h in persona["history"]][-1] == "subscription_loyalist"
    assert persona["history"][-1]["at"].startswith("2026-11-15T10:00:00")


def test_persona_distribution_and_bad_templates(client, secret_headers, send, with_personas):
    send(msg(type="identify", userId="d1", messageId="d1-i"))
    dist = client.get("/v1/personas", headers=secret_headers).json()["items"]
    assert sum(row["buyers"] for row in dist) == 1
    bad = client.put(
        "/v1/personas/templates", headers=secret_headers, json={"personas": [{"name": "Only One"}]}
    )
    assert bad.status_code == 422 and bad.json()["error"]["code"] == "invalid_persona_templates"
    assert client.put("/v1/personas/templates", headers=secret_headers, json="personas: [").status_code == 422


def test_erasure_forgets_features_and_persona(client, secret_headers, send, state, with_personas):
    send(msg(type="identify", userId="g1", messageId="g1-i"), order("g1", 1, 2))
    buyer = client.get("/v1/buyers/lookup", params={"user_id": "g1"}, headers=secret_headers).json()
    assert client.delete(f"/v1/buyers/{buyer['id']}", headers=secret_headers).status_code == 200
    erased = client.get(f"/v1/buyers/{buyer['id']}/state", headers=secret_headers).json()
    assert erased["persona"] is None and erased["features"]["orders"] == 0
