"""Hostile bodies on the tracking endpoints: refused item by item with a reason (never a 500), and an event
without a messageId is never dropped as a "duplicate" of a different kind of event."""

from __future__ import annotations

import orjson
import pytest
from tests.conftest import basic, bearer


@pytest.mark.parametrize("kind", [{"a": 1}, ["track"], 7, True])
def test_a_type_that_is_not_a_string_is_quarantined_not_a_500(client, workspace, kind) -> None:
    batch = [
        {"type": kind, "userId": "u", "event": "Clicked", "messageId": "bad-type"},
        {"type": "track", "userId": "u", "event": "Clicked", "messageId": "good"},
    ]
    r = client.post("/v1/batch", json={"batch": batch}, headers=basic(workspace.write_key))
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["accepted"], body["quarantined"]) == (1, 1)
    assert [(e["index"], e["messageId"], e["code"]) for e in body["errors"]] == [
        (0, "bad-type", "unknown_type")
    ]
    one = client.post(
        "/v1/track", json={"type": kind, "userId": "u", "event": "x"}, headers=basic(workspace.write_key)
    )
    assert (one.status_code, one.json()["error"]["code"]) == (400, "type_mismatch")


def test_the_same_body_sent_to_two_endpoints_without_a_messageid_is_two_events(client, workspace) -> None:
    body = {"userId": "u_same", "timestamp": "2026-11-01T10:00:00Z"}
    answers = [
        client.post(f"/v1/{kind}", json=body, headers=basic(workspace.write_key)).json()
        for kind in ("identify", "page", "screen")
    ]
    assert [(a["accepted"], a["duplicates"]) for a in answers] == [(1, 0)] * 3
    buyer = client.get(
        "/v1/buyers/lookup", params={"user_id": "u_same"}, headers=bearer(workspace.secret_key)
    ).json()["id"]
    events = client.get(f"/v1/buyers/{buyer}/events", headers=bearer(workspace.secret_key)).json()["items"]
    assert sorted(e["type"] for e in events) == ["identify", "page", "screen"]


def test_one_event_with_a_lone_surrogate_is_quarantined_alone(client, workspace) -> None:
    good = [{"type": "track", "userId": "u", "event": "Clicked", "messageId": f"ok-{i}"} for i in range(3)]
    body = b'{"batch":[%s,{"type":"page","userId":"u","name":"Launch \\ud83d","messageId":"cut"},%s]}' % (
        b",".join(orjson.dumps(m) for m in good[:2]),
        orjson.dumps(good[2]),
    )
    r = client.post(
        "/v1/batch", content=body, headers={**basic(workspace.write_key), "content-type": "application/json"}
    )
    assert r.status_code == 200, r.text
    answer = r.json()
    assert (answer["accepted"], answer["quarantined"]) == (3, 1)
    assert [(e["index"], e["messageId"]) for e in answer["errors"]] == [(2, "cut")]


def test_the_same_message_ids_in_two_workspaces_are_two_workspaces_events(
    client, workspace, other_workspace
) -> None:
    batch = [
        {"type": "track", "userId": "u", "event": "Clicked", "messageId": f"shared-{i}"} for i in range(5)
    ]
    for ws in (workspace, other_workspace, workspace):
        client.post("/v1/batch", json={"batch": batch}, headers=basic(ws.write_key))
    answers = [
        client.post("/v1/batch", json={"batch": batch}, headers=basic(ws.write_key)).json()
        for ws in (workspace, other_workspace)
    ]
    assert [(a["accepted"], a["duplicates"]) for a in answers] == [(0, 5), (0, 5)]
    for ws in (workspace, other_workspace):
        secret = bearer(ws.secret_key)
        buyer = client.get("/v1/buyers/lookup", params={"user_id": "u"}, headers=secret).json()["id"]
        events = client.get(f"/v1/buyers/{buyer}/events", headers=secret).json()["items"]
        assert sorted(e["message_id"] for e in events) == [f"shared-{i}" for i in range(5)]


def test_a_generated_messageid_of_an_event_that_carries_its_type_is_unchanged() -> None:
    """Events stored before the type joined the generated id (batch items always carry theirs) still dedupe."""
    import hashlib

    import orjson

    from offerloop.events.validation import _message_id

    msg = {"type": "track", "userId": "u", "event": "Clicked", "timestamp": "2026-11-01T10:00:00Z"}
    before = "gen-" + hashlib.sha256(orjson.dumps(msg, option=orjson.OPT_SORT_KEYS)).hexdigest()[:32]
    assert _message_id(msg, "track") == before
    implied = {k: v for k, v in msg.items() if k != "type"}
    assert _message_id(implied, "track") == before  # /v1/track with the same body is the same event
    assert _message_id(implied, "page") != before
