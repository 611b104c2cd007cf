"""A journey after two buyers merge: a visitor's device and the known buyer each entered a ``reentry: never``
journey before the device identified as that buyer. The merged buyer is one person in the journey: one run goes
on, the other ends, and no step is sent twice; and the merged buyer's in-app inbox shows the messages sent to
either of them (a run keeps the buyer it started for)."""

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


def test_delivery_the_merged_buyers_inbox_holds_the_in_app_messages_of_both(
    client,
    db,
    write_headers,
    secret_headers,
    journey: dict[str, Any],  # noqa: F811
) -> None:
    identify(client, write_headers, "bo", first_name="Bo")
    r = client.post("/v1/identify", headers=write_headers, json={
        "anonymousId": "device-b", "traits": {"first_name": "Bo"}, "messageId": "anon", "timestamp": utcnow().isoformat(),
        "context": {"consent": {"categoryPreferences": {"marketing": True}}}})  # fmt: skip
    assert r.status_code == 200, r.text
    r = client.post("/v1/track", headers=write_headers, json={
        "anonymousId": "device-b", "event": "Order Completed", "properties": {"total_minor": 500, "offer": "Kit"},
        "messageId": "o-b", "timestamp": utcnow().isoformat()})  # fmt: skip
    assert r.status_code == 200, r.text
    run_jobs(db, utcnow())
    [welcome] = messages(client, secret_headers)
    assert (welcome["subject"], welcome["status"]) == ("Welcome Bo", "sent")

    def token(**who: str) -> str:
        r = client.post("/v1/inbox/tokens", headers=secret_headers, json=who)
        assert r.status_code == 201, r.text
        return str(r.json()["token"])

    before = token(anonymous_id="device-b")  # minted before the merge
    r = client.post("/v1/identify", headers=write_headers, json={
        "anonymousId": "device-b", "userId": "bo", "messageId": "merge-b", "timestamp": utcnow().isoformat()})  # fmt: skip
    assert r.status_code == 200, r.text
    for t in (token(user_id="bo"), before):
        r = client.get("/v1/inbox", params={"token": t})
        assert r.status_code == 200, r.text
        assert [i["id"] for i in r.json()["items"]] == [welcome["id"]]
    r = client.post(f"/v1/inbox/{welcome['id']}/read", params={"token": token(user_id="bo")})
    assert r.status_code == 200, r.text
    assert r.json()["read_at"] is not None
