from __future__ import annotations

import gzip

import orjson
from fastapi.testclient import TestClient
from tests.conftest import basic, bearer, msg


def _batch(client: TestClient, headers: dict[str, str], batch: list[object], **extra: object):  # type: ignore[no-untyped-def]
    return client.post("/v1/batch", headers=headers, content=orjson.dumps({"batch": batch, **extra}))


def test_track_is_stored_and_lands_on_the_buyer(client, write_headers, secret_headers):
    r = client.post(
        "/v1/track", headers=write_headers, json=msg(userId="u1", event="Lesson Started", messageId="m1")
    )
    assert r.status_code == 200
    assert r.json() == {"success": True, "accepted": 1, "duplicates": 0, "quarantined": 0, "errors": []}
    buyer = client.get("/v1/buyers/lookup", params={"user_id": "u1"}, headers=secret_headers).json()
    assert buyer["user_id"] == "u1"
    assert buyer["event_count"] == 1
    events = client.get(f"/v1/buyers/{buyer['id']}/events", headers=secret_headers).json()["items"]
    assert [(e["message_id"], e["type"], e["name"]) for e in events] == [("m1", "track", "Lesson Started")]


def test_bearer_and_basic_both_authenticate(client, workspace):
    for headers in (basic(workspace.write_key), bearer(workspace.write_key)):
        r = client.post("/v1/page", headers=headers, json=msg(anonymousId="a1", name="Home"))
        assert r.status_code == 200, r.text


def test_missing_and_wrong_keys_are_401_with_a_code(client):
    r = client.post("/v1/track", json=msg(userId="u1", event="x"))
    assert r.status_code == 401
    assert r.json()["error"]["code"] == "invalid_key"
    r = client.post("/v1/track", headers=bearer("wk_nope"), json=msg(userId="u1", event="x"))
    assert r.status_code == 401


def test_write_key_cannot_read(client, write_headers):
    r = client.get("/v1/quarantine", headers=write_headers)
    assert r.status_code == 403
    assert r.json()["error"]["code"] == "secret_key_required"


def test_duplicate_message_ids_are_stored_once(client, write_headers, secret_headers):
    first = msg(userId="u1", event="Order Completed", messageId="dup-1")
    # same batch
    r = _batch(client, write_headers, [{**first, "type": "track"}, {**first, "type": "track"}])
    assert r.json()["accepted"] == 1 and r.json()["duplicates"] == 1
    # another batch, and days apart
    later = {**first, "type": "track", "timestamp": "2026-11-09T10:00:00Z", "properties": {"changed": True}}
    r = _batch(client, write_headers, [later])
    assert r.json() == {"success": True, "accepted": 0, "duplicates": 1, "quarantined": 0, "errors": []}
    r = client.post("/v1/track", headers=write_headers, json=first)
    assert r.json()["duplicates"] == 1
    buyer = client.get("/v1/buyers/lookup", params={"user_id": "u1"}, headers=secret_headers).json()
    assert buyer["event_count"] == 1
    events = client.get(f"/v1/buyers/{buyer['id']}/events", headers=secret_headers).json()["items"]
    assert len(events) == 1 and events[0]["properties"] is None


def test_mixed_batch_stores_good_and_reports_bad_item_by_item(client, write_headers, secret_headers):
    batch = [
        msg(type="track", userId="u1", event="Lesson Started", messageId="g1"),
        msg(type="track", userId="u1", messageId="b1"),  # no event name
        msg(type="page", anonymousId="a9", messageId="g2"),
        msg(type="bogus", userId="u1", messageId="b2"),
        msg(type="track", userId="undefined", anonymousId="null", event="x", messageId="b3"),
        "not an object",
        msg(
            type="identify",
            userId="u1",
            traits={"email": "u1@example.com"},
            timestamp="yesterday",
            messageId="b4",
        ),
        msg(type="track", userId="u1", event="x", properties=[1, 2], messageId="b5"),
    ]
    r = _batch(client, write_headers, batch)
    assert r.status_code == 200
    body = r.json()
    assert (body["accepted"], body["duplicates"], body["quarantined"]) == (2, 0, 6)
    assert [(e["index"], e["messageId"], e["code"]) for e in body["errors"]] == [
        (1, "b1", "missing_event_name"),
        (3, "b2", "unknown_type"),
        (4, "b3", "missing_identity"),
        (5, None, "invalid_message"),
        (6, "b4", "invalid_timestamp"),
        (7, "b5", "invalid_properties"),
    ]
    assert all(e["quarantine_id"].startswith("qev_") for e in body["errors"])
    listed = client.get("/v1/quarantine", headers=secret_headers).json()["items"]
    assert sorted(q["reason_code"] for q in listed) == sorted(e["code"] for e in body["errors"])


def test_single_bad_event_is_400_and_quarantined(client, write_headers, secret_headers):
    r = client.post("/v1/track", headers=write_headers, json=msg(userId="u1", messageId="nope"))
    assert r.status_code == 400
    err = r.json()["error"]
    assert err["code"] == "missing_event_name"
    q = client.get(f"/v1/quarantine/{err['details']['quarantine_id']}", headers=secret_headers).json()
    assert q["payload"]["messageId"] == "nope" and q["status"] == "open"


def test_type_mismatch_on_typed_endpoint(client, write_headers):
    r = client.post("/v1/track", headers=write_headers, json=msg(type="page", userId="u1"))
    assert r.status_code == 400
    assert r.json()["error"]["code"] == "type_mismatch"


def test_invalid_json_is_quarantined_raw(client, write_headers, secret_headers):
    r = client.post("/v1/batch", headers=write_headers, content=b'{"batch": [')
    assert r.status_code == 400
    err = r.json()["error"]
    assert err["code"] == "invalid_json"
    q = client.get(f"/v1/quarantine/{err['details']['quarantine_id']}", headers=secret_headers).json()
    assert q["raw"] == '{"batch": [' and q["payload"] is None


def test_batch_without_batch_array(client, write_headers):
    r = client.post("/v1/batch", headers=write_headers, json={"events": []})
    assert r.status_code == 400
    assert r.json()["error"]["code"] == "invalid_batch"


def test_size_limits(client, write_headers, secret_headers):
    big = msg(type="track", userId="u1", event="Big", messageId="big", properties={"blob": "x" * 33_000})
    r = client.post("/v1/track", headers=write_headers, json=big)
    assert r.status_code == 413
    assert r.json()["error"]["code"] == "event_too_large"
    r = _batch(client, write_headers, [big, msg(type="track", userId="u1", event="ok", messageId="small")])
    assert r.status_code == 200
    assert [(e["index"], e["code"]) for e in r.json()["errors"]] == [(0, "event_too_large")]
    assert r.json()["accepted"] == 1
    huge = [
        msg(type="track", userId="u1", event="x", messageId=f"h{i}", properties={"b": "y" * 20_000})
        for i in range(30)
    ]
    r = _batch(client, write_headers, huge)
    assert r.status_code == 413
    assert r.json()["error"]["code"] == "batch_too_large"


def test_gzip_body(client, write_headers):
    body = gzip.compress(
        orjson.dumps({"batch": [msg(type="track", userId="u1", event="z", messageId="gz1")]})
    )
    r = client.post("/v1/batch", headers={**write_headers, "Content-Encoding": "gzip"}, content=body)
    assert r.status_code == 200 and r.json()["accepted"] == 1


def test_clock_skew_is_corrected(client, write_headers, secret_headers):
    # The client's clock is 2 hours fast: it stamped the event 30 s before sending it.
    event = {"userId": "u-skew", "event": "Lesson Started", "messageId": "skew-1",
             "timestamp": "2030-01-01T12:00:00Z", "sentAt": "2030-01-01T12:00:30Z"}  # fmt: skip
    client.post("/v1/track", headers=write_headers, json=event)
    buyer = client.get("/v1/buyers/lookup", params={"user_id": "u-skew"}, headers=secret_headers).json()
    ev = client.get(f"/v1/buyers/{buyer['id']}/events", headers=secret_headers).json()["items"][0]
    from datetime import datetime

    received = datetime.fromisoformat(ev["received_at"])
    corrected = datetime.fromisoformat(ev["timestamp"])
    assert (received - corrected).total_seconds() == 30.0


def test_batch_level_sent_at_and_context(client, write_headers, secret_headers):
    r = _batch(
        client,
        write_headers,
        [
            {
                "type": "track",
                "userId": "u-b",
                "event": "e",
                "messageId": "bl1",
                "timestamp": "2020-01-01T00:00:00Z",
            }
        ],
        sentAt="2020-01-01T00:01:00Z",
        context={"library": {"name": "test"}},
    )
    assert r.json()["accepted"] == 1
    buyer = client.get("/v1/buyers/lookup", params={"user_id": "u-b"}, headers=secret_headers).json()
    ev = client.get(f"/v1/buyers/{buyer['id']}/events", headers=secret_headers).json()["items"][0]
    from datetime import datetime

    assert (
        datetime.fromisoformat(ev["received_at"]) - datetime.fromisoformat(ev["timestamp"])
    ).total_seconds() == 60.0
    assert ev["context"] == {"library": {"name": "test"}}


def test_workspace_isolation(client, workspace, other_workspace):
    client.post(
        "/v1/identify", headers=basic(workspace.write_key), json=msg(userId="shared", traits={"name": "A"})
    )
    client.post(
        "/v1/identify",
        headers=basic(other_workspace.write_key),
        json=msg(userId="shared", traits={"name": "B"}),
    )
    mine = client.get(
        "/v1/buyers/lookup", params={"user_id": "shared"}, headers=bearer(workspace.secret_key)
    ).json()
    theirs = client.get(
        "/v1/buyers/lookup", params={"user_id": "shared"}, headers=bearer(other_workspace.secret_key)
    ).json()
    assert mine["id"] != theirs["id"]
    assert (mine["traits"], theirs["traits"]) == ({"name": "A"}, {"name": "B"})
    other = bearer(other_workspace.secret_key)
    for path in (
        f"/v1/buyers/{mine['id']}",
        f"/v1/buyers/{mine['id']}/events",
        f"/v1/buyers/{mine['id']}/export",
    ):
        assert client.get(path, headers=other).status_code == 404
    assert client.delete(f"/v1/buyers/{mine['id']}", headers=other).status_code == 404
    assert client.get(f"/v1/buyers/{mine['id']}", headers=bearer(workspace.secret_key)).json()["traits"] == {
        "name": "A"
    }
    # the same messageId in two workspaces is two events
    for ws in (workspace, other_workspace):
        r = client.post(
            "/v1/track", headers=basic(ws.write_key), json=msg(userId="shared", event="e", messageId="same")
        )
        assert r.json()["accepted"] == 1


def test_nul_characters_are_refused_and_kept_escaped(client, write_headers, secret_headers):
    # PostgreSQL cannot store NUL in text or jsonb; the event is quarantined with the NUL made visible.
    r = _batch(
        client, write_headers, [msg(type="track", userId="u-nul", event="bad\x00name", messageId="nul-1")]
    )
    err = r.json()["errors"][0]
    assert (err["code"], r.json()["quarantined"]) == ("invalid_characters", 1)
    q = client.get(f"/v1/quarantine/{err['quarantine_id']}", headers=secret_headers).json()
    assert q["payload"] is None and "bad\\u0000name" in q["raw"]
    # an escaped backslash followed by "u0000" is ordinary text, not a NUL
    ok = _batch(
        client, write_headers, [msg(type="track", userId="u-nul", event="lit\\u0000eral", messageId="nul-2")]
    )
    assert ok.json()["accepted"] == 1
    r = client.post("/v1/track", headers=write_headers, content=b"\x00")
    assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_json"
    raw = client.get(
        f"/v1/quarantine/{r.json()['error']['details']['quarantine_id']}", headers=secret_headers
    ).json()
    assert raw["raw"] == "\\u0000"


def test_an_events_origin_is_set_by_the_server_never_by_the_client(
    client, db, workspace, write_headers, secret_headers
):
    """context.offerloop.origin says who sent an event (transactional journeys trust only the creator and the
    server): a write key's own claim is dropped, a secret key is the creator, offerloop's own events are the
    server's."""
    from offerloop.events import service as events_service

    forged = {"offerloop": {"origin": "server"}, "timezone": "Europe/Paris"}
    assert client.post("/v1/track", headers=write_headers, json=msg(
        userId="u9", event="Order Completed", messageId="c1", context=forged)).status_code == 200  # fmt: skip
    assert client.post("/v1/batch", headers=secret_headers, content=orjson.dumps({"batch": [
        msg(type="track", userId="u9", event="Order Completed", messageId="c2")],
        "context": {"offerloop": {"origin": "server"}}})).status_code == 200  # fmt: skip
    buyer = client.get("/v1/buyers/lookup", params={"user_id": "u9"}, headers=secret_headers).json()
    with db.write() as session:
        events_service.record_server_events(session, workspace.id, [events_service.buyer_track(
            session, workspace.id, buyer["id"], "Order Completed", {}, "c3")])  # fmt: skip
    events = client.get(f"/v1/buyers/{buyer['id']}/events", headers=secret_headers).json()["items"]
    found = {e["message_id"]: e["context"] for e in events}
    assert found["c1"] == {"timezone": "Europe/Paris"}  # the forged claim is gone, the rest kept
    assert found["c2"] == {"offerloop": {"origin": "creator"}}
    assert found["c3"] == {"offerloop": {"origin": "server"}}
    assert [events_service.origin_of(found[m]) for m in ("c1", "c2", "c3")] == ["client", "creator", "server"]
