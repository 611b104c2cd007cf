from __future__ import annotations

import orjson
from sqlalchemy import select
from tests.conftest import msg

from offerloop.models import Event, Touchpoint


def _post_batch(client, headers, batch):
    return client.post("/v1/batch", headers=headers, content=orjson.dumps({"batch": batch})).json()


def test_replay_with_a_fix_then_it_is_closed(client, write_headers, secret_headers):
    body = _post_batch(client, write_headers, [msg(type="track", userId="u-q", messageId="q1")])
    qid = body["errors"][0]["quarantine_id"]
    # replaying as-is is still refused, and the attempt is counted
    r = client.post(f"/v1/quarantine/{qid}/replay", headers=secret_headers)
    assert r.status_code == 422
    assert r.json() == {"id": qid, "status": "open", "message_id": "q1", "code": "missing_event_name",
                        "message": "track needs an event name"}  # fmt: skip
    fixed = msg(type="track", userId="u-q", messageId="q1", event="Lesson Completed")
    r = client.post(f"/v1/quarantine/{qid}/replay", headers=secret_headers, json={"payload": fixed})
    assert r.status_code == 200
    assert r.json() == {"id": qid, "status": "replayed", "message_id": "q1", "code": None, "message": None}
    q = client.get(f"/v1/quarantine/{qid}", headers=secret_headers).json()
    assert (q["status"], q["attempts"], q["payload"]["event"]) == ("replayed", 2, "Lesson Completed")
    assert client.get("/v1/quarantine", headers=secret_headers).json()["items"] == []
    buyer = client.get("/v1/buyers/lookup", params={"user_id": "u-q"}, headers=secret_headers).json()
    assert buyer["event_count"] == 1
    again = client.post(f"/v1/quarantine/{qid}/replay", headers=secret_headers)
    assert again.status_code == 409 and again.json()["error"]["code"] == "quarantine_closed"


def test_replay_of_an_already_stored_message_is_a_duplicate(client, write_headers, secret_headers):
    body = _post_batch(client, write_headers, [msg(type="track", userId="u", messageId="d1")])
    qid = body["errors"][0]["quarantine_id"]
    _post_batch(client, write_headers, [msg(type="track", userId="u", messageId="d1", event="ok")])
    r = client.post(f"/v1/quarantine/{qid}/replay", headers=secret_headers,
                    json={"payload": msg(type="track", userId="u", messageId="d1", event="ok")})  # fmt: skip
    assert r.json()["status"] == "duplicate"


def test_quarantine_filter_paging_and_discard(client, write_headers, secret_headers):
    batch = [msg(type="track", userId="u", messageId=f"n{i}") for i in range(3)] + [msg(type="x", userId="u")]
    _post_batch(client, write_headers, batch)
    page = client.get("/v1/quarantine", params={"limit": 2}, headers=secret_headers).json()
    assert len(page["items"]) == 2 and page["next_cursor"] is not None
    rest = client.get(
        "/v1/quarantine", params={"limit": 2, "cursor": page["next_cursor"]}, headers=secret_headers
    ).json()
    ids = [q["id"] for q in page["items"] + rest["items"]]
    assert ids == sorted(ids, reverse=True) and len(set(ids)) == 4
    assert len(rest["items"]) == 2 and rest["next_cursor"] is None
    only = client.get("/v1/quarantine", params={"reason": "unknown_type"}, headers=secret_headers).json()[
        "items"
    ]
    assert [q["reason_code"] for q in only] == ["unknown_type"]
    r = client.post(f"/v1/quarantine/{only[0]['id']}/discard", headers=secret_headers)
    assert r.json()["status"] == "discarded"
    assert len(client.get("/v1/quarantine", headers=secret_headers).json()["items"]) == 3
    assert client.get("/v1/quarantine/qev_missing", headers=secret_headers).status_code == 404


def test_signal_rules_are_applied_at_ingest(client, workspace, write_headers, secret_headers, db):
    rules = """
threshold: 0.5
rules:
  - event: "Assessment Completed"
    where: {score: {gte: 70}}
    weight: 5
    confidence: 0.95
    high_signal: true
  - event: "Assessment Completed"
    weight: 2
    confidence: 0.4
  - type: page
    weight: 0.1
    confidence: 0.2
"""
    r = client.put("/v1/signals", headers=secret_headers, json=rules)
    assert r.status_code == 200 and r.json()["version"] == 1
    _post_batch(client, write_headers, [
        msg(type="track", userId="s", event="Assessment Completed", properties={"score": 82}, messageId="hi"),
        msg(type="track", userId="s", event="Assessment Completed", properties={"score": 41}, messageId="lo"),
        msg(type="page", userId="s", messageId="pg"),
        msg(type="track", userId="s", event="Other", messageId="ot"),
    ])  # fmt: skip
    with db.read() as session:
        rows = session.execute(select(Event.message_id, Event.weight, Event.confidence, Event.high_signal, Event.suppressed)
                               .where(Event.workspace_id == workspace.id).order_by(Event.message_id)).all()  # fmt: skip
    assert rows == [
        ("hi", 5.0, 0.95, True, False),
        ("lo", 2.0, 0.4, False, True),
        ("ot", 1.0, 1.0, False, False),
        ("pg", 0.1, 0.2, False, True),
    ]
    bad = client.put(
        "/v1/signals", headers=secret_headers, json={"rules": [{"event": "x", "weight": -1, "confidence": 2}]}
    )
    assert bad.status_code == 422 and bad.json()["error"]["code"] == "invalid_signal_config"
    assert len(bad.json()["error"]["details"]) == 2


def test_touchpoints_are_normalised_and_stored(client, workspace, write_headers, secret_headers, db):
    _post_batch(client, write_headers, [
        msg(type="page", anonymousId="tp", messageId="t1", timestamp="2026-11-01T00:00:00Z",
            context={"page": {"url": "https://c.example/?utm_source=IG&utm_medium=Social&utm_campaign={{name}}"}}),
        msg(type="page", anonymousId="tp", messageId="t2", timestamp="2026-11-02T00:00:00Z",
            context={"page": {"url": "https://c.example/p", "referrer": "https://www.google.com/search?q=x"}}),
        msg(type="page", anonymousId="tp", messageId="t3", timestamp="2026-11-03T00:00:00Z",
            context={"page": {"url": "https://c.example/q"}}),
    ])  # fmt: skip
    buyer = client.get("/v1/buyers/lookup", params={"anonymous_id": "tp"}, headers=secret_headers).json()
    assert (buyer["first_touch"]["channel"], buyer["first_touch"]["source"]) == ("social", "instagram")
    assert buyer["first_touch"]["flags"] == ["placeholder:utm_campaign"]
    assert (buyer["last_touch"]["channel"], buyer["last_touch"]["source"]) == ("search", "google")
    with db.read() as session:
        stmt = (
            select(Touchpoint.channel)
            .where(Touchpoint.workspace_id == workspace.id)
            .order_by(Touchpoint.occurred_at)
        )
        assert session.scalars(stmt).all() == ["social", "search"]


def test_workspace_export_is_json_lines(client, write_headers, secret_headers):
    _post_batch(
        client,
        write_headers,
        [msg(type="identify", userId="e1", messageId="x1"), msg(type="track", userId="e1", messageId="x2")],
    )
    r = client.get("/v1/export", headers=secret_headers)
    assert r.headers["content-type"] == "application/x-ndjson"
    lines = [orjson.loads(line) for line in r.content.splitlines()]
    assert [(line["kind"], line.get("message_id")) for line in lines] == [
        ("buyer", None),
        ("event", "x1"),
        ("quarantine", "x2"),
    ]


def test_health_ready_metrics_openapi(client, write_headers):
    assert client.get("/healthz").json() == {"status": "ok"}
    assert client.get("/readyz").json() == {"status": "ready"}
    _post_batch(client, write_headers, [msg(type="track", userId="m", event="e", messageId="mm")])
    text = client.get("/metrics").text
    assert 'offerloop_events_total{outcome="accepted"}' in text
    assert "offerloop_http_request_duration_seconds_bucket" in text
    spec = client.get("/openapi.json").json()
    assert spec["paths"]["/v1/batch"]["post"]["requestBody"]["content"]["application/json"]["example"][
        "batch"
    ]
    for path in ("/v1/identify", "/v1/track", "/v1/page", "/v1/screen", "/v1/group", "/v1/alias", "/v1/buyers/lookup",
                 "/v1/buyers/{buyer_id}", "/v1/buyers/{buyer_id}/events", "/v1/buyers/{buyer_id}/export",
                 "/v1/quarantine", "/v1/quarantine/{quarantine_id}/replay"):  # fmt: skip
        assert path in spec["paths"]


def test_no_500_for_client_garbage(client, write_headers, secret_headers):
    cases = [
        ("post", "/v1/track", {"content": b"\xff\xfe"}),
        ("post", "/v1/batch", {"content": b"[]"}),
        ("post", "/v1/identify", {"content": orjson.dumps({"userId": {"a": 1}})}),
        ("post", "/v1/track", {"content": orjson.dumps({"userId": "u", "event": "e", "timestamp": 1e30})}),
        ("get", "/v1/buyers/{x}/events?cursor=abc", {}),
        ("get", "/v1/quarantine?cursor=%22%22", {}),
        ("get", "/v1/quarantine?limit=-1", {}),
        ("put", "/v1/signals", {"content": b"not json"}),
        ("post", "/v1/batch", {"content": b"x", "headers": {"Content-Encoding": "gzip"}}),
    ]
    for method, path, kw in cases:
        headers = {
            **(secret_headers if method != "post" or "signals" in path else write_headers),
            **kw.pop("headers", {}),
        }
        r = getattr(client, method)(path, headers=headers, **kw)
        assert 400 <= r.status_code < 500, (path, r.status_code, r.text)
        assert "code" in r.json()["error"]
    r = client.post(
        "/v1/batch", headers=write_headers, content=orjson.dumps({"batch": [None, 1, [], {"type": None}]})
    )
    assert r.status_code == 200 and r.json()["quarantined"] == 4
