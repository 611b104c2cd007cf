"""The buyer record's reads (lookup, live state, events) see every event acknowledged before the request,
even when no consumer has run yet (issue 10, item 3)."""

from __future__ import annotations

from tests.conftest import msg

from offerloop.pipeline import log as pipeline_log


def test_lookup_state_and_events_see_what_was_just_acknowledged(client, db, write_headers, secret_headers):
    pipeline_log.set_inline(db, False)  # as in a server whose consumers have not reached these events yet
    batch = [
        msg(type="identify", userId="rae", messageId="rae-i", traits={"email": "rae@example.com"}),
        msg(type="track", userId="rae", event="Order Completed", messageId="rae-o",
            timestamp="2026-11-02T10:00:00Z", properties={"order_id": "rae-1", "revenue": "49.00"}),
    ]  # fmt: skip
    r = client.post("/v1/batch", headers=write_headers, json={"batch": batch})
    assert r.status_code == 200 and r.json()["accepted"] == 2, r.text
    r = client.get("/v1/buyers/lookup", headers=secret_headers, params={"email": "rae@example.com"})
    assert r.status_code == 200, r.text
    buyer = r.json()["id"]
    more = msg(
        type="track", userId="rae", event="Viewed", messageId="rae-v", timestamp="2026-11-03T10:00:00Z"
    )
    assert client.post("/v1/track", headers=write_headers, json=more).status_code == 200
    events = client.get(f"/v1/buyers/{buyer}/events", headers=secret_headers).json()["items"]
    assert [e["message_id"] for e in events] == ["rae-v", "rae-o", "rae-i"]
    more = msg(type="track", userId="rae", event="Order Completed", messageId="rae-o2",
               timestamp="2026-11-04T10:00:00Z", properties={"order_id": "rae-2", "revenue": "49.00"})  # fmt: skip
    assert client.post("/v1/track", headers=write_headers, json=more).status_code == 200
    features = client.get(f"/v1/buyers/{buyer}/state", headers=secret_headers).json()["features"]
    assert (features["orders"], features["monetary_minor"]) == (2, 9800)
