"""A journey after two buyers merge: a visitor's device and the known buyer each entered a ``reentry: never``
journey before the device identified as that buyer. The merged buyer is one person in the journey: one run goes
on, the other ends, and no step is sent twice."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from tests.delivery.test_journeys import identify, journey, messages, run_jobs  # noqa: F401  (fixture)

from offerloop.core.clock import utcnow


def test_delivery_merged_buyers_go_on_in_one_run_of_a_reentry_never_journey(
    client,
    db,
    write_headers,
    secret_headers,
    journey: dict[str, Any],  # noqa: F811
) -> None:
    identify(client, write_headers, "ann", first_name="Ann")
    now = utcnow()
    for who, mid in (({"anonymousId": "device-a"}, "o-device"), ({"userId": "ann"}, "o-ann")):
        r = client.post("/v1/track", headers=write_headers, json={
            **who, "event": "Order Completed", "properties": {"total_minor": 500, "offer": "Course"},
            "messageId": mid, "timestamp": now.isoformat()})  # fmt: skip
        assert r.status_code == 200, r.text
    now = utcnow()
    run_jobs(db, now)
    assert len(messages(client, secret_headers)) == 2  # two buyers as far as anyone knew: a welcome each
    r = client.post("/v1/identify", headers=write_headers, json={
        "anonymousId": "device-a", "userId": "ann", "messageId": "merge", "timestamp": now.isoformat()})  # fmt: skip
    assert r.status_code == 200, r.text
    run_jobs(db, now + timedelta(days=2, seconds=1))
    later = [(m["step"], m["status"]) for m in messages(client, secret_headers) if m["step"] != "0"]
    assert later == [("loyal", "sent")]  # two orders now: the "loyal" branch, sent once
    runs = client.get("/v1/journey-runs", headers=secret_headers).json()["items"]
    assert sorted((r["trigger_message_id"], r["state"]) for r in runs) == [
        ("o-ann", "exited"),  # the later of the two
        ("o-device", "completed"),
    ]
