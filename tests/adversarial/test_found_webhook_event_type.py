"""A journey's webhook step names the event type its deliveries carry (``send.event``). The webhook channel takes
at most 120 characters (its column and ``deliver``'s check), but the journey accepted any length: the step's
message then raised inside the transaction that gates a whole batch of sends, so every other buyer's message in
that batch (e-mail, in-app…) failed with it, again at each retry. A longer type is refused when the journey is
stored, and a message queued with one before that fails alone."""

from __future__ import annotations

from sqlalchemy import select
from tests.delivery.test_journeys import identify, run_jobs, track

from offerloop.core.clock import utcnow
from offerloop.delivery.journeys import engine
from offerloop.jobs import runner
from offerloop.models import OutboxMessage

LONG = "e" * 121
HOOK = """
name: hook
trigger: {event: Hooked}
steps:
  - send: {channel: webhook, text: "hi", event: EVENT}
"""
HELLO = """
name: hello
trigger: {event: Signed Up}
steps:
  - send: {channel: inapp, subject: "Hello", text: "hi"}
"""


def test_found_an_overlong_webhook_event_type_is_refused_by_line(client, secret_headers) -> None:
    r = client.put("/v1/journeys/hook", headers=secret_headers, json={"yaml": HOOK.replace("EVENT", LONG)})
    assert r.status_code == 422, r.text
    [problem] = r.json()["error"]["details"]
    assert (problem["line"], problem["location"]) == (5, "steps[0].send.event")


def test_found_a_queued_overlong_webhook_event_type_fails_only_its_own_message(
    client, db, write_headers, secret_headers, workspace
) -> None:
    r = client.put("/v1/delivery/settings", headers=secret_headers,
                   json={"send_window": {"start": "00:00", "end": "00:00"}, "caps": {}, "overall_cap": None})  # fmt: skip
    assert r.status_code == 200, r.text
    r = client.post(
        "/v1/webhooks/endpoints", headers=secret_headers, json={"url": "https://hooks.example/in"}
    )
    assert r.status_code == 201, r.text
    for name, text in (("hello", HELLO), ("hook", HOOK.replace("EVENT", "journey.hook"))):
        assert (
            client.put(f"/v1/journeys/{name}", headers=secret_headers, json={"yaml": text}).status_code == 200
        )
    for user, event in (("ann", "Hooked"), ("bob", "Signed Up")):
        identify(client, write_headers, user)
        track(client, write_headers, user, event, {}, f"t-{user}")
    now = utcnow()
    while runner.run_due(db, owner="t", now=now, only=(engine.RUN,), limit=50):
        pass
    with db.write() as session:  # queued by a release that did not bound the type
        row = session.scalars(select(OutboxMessage).where(
            OutboxMessage.workspace_id == workspace.id, OutboxMessage.journey == "hook")).one()  # fmt: skip
        row.body = {**row.body, "event": LONG}
    run_jobs(db, now)
    sent = sorted((m["journey"], m["status"], m["detail"]) for m in client.get(
        "/v1/messages", headers=secret_headers).json()["items"])  # fmt: skip
    assert sent == [
        ("hello", "sent", "in the buyer's inbox"),
        ("hook", "failed", "cannot queue the webhook: event_type must be 1 to 120 characters"),
    ]
