"""A journey's webhook step names the event type its deliveries carry (``send.event``). The webhook channel takes
at most 120 characters (its column and ``deliver``'s check), but the journey accepted any length: the step's
message then raised inside the transaction that gates a whole batch of sends, so every other buyer's message in
that batch (e-mail, in-app…) failed with it, again at each retry. A longer type is refused when the journey is
stored, and one stored before that fails its own message only."""

from __future__ import annotations

from tests.delivery.test_journeys import identify, run_jobs, track

from offerloop.core.clock import utcnow
from offerloop.delivery.journeys import engine

LONG = "e" * 121
HOOK = f"""
name: hook
trigger: {{event: Signed Up}}
steps:
  - send: {{channel: webhook, text: "hi", event: {LONG}}}
"""
HELLO = """
name: hello
trigger: {event: Signed Up}
steps:
  - send: {channel: inapp, subject: "Hello", text: "hi"}
"""


def test_found_an_overlong_webhook_event_type_is_refused_by_line(client, secret_headers) -> None:
    r = client.put("/v1/journeys/hook", headers=secret_headers, json={"yaml": HOOK})
    assert r.status_code == 422, r.text
    [problem] = r.json()["error"]["details"]
    assert (problem["line"], problem["location"]) == (5, "steps[0].send.event")


def test_found_a_stored_overlong_webhook_event_type_fails_only_its_own_message(
    client, db, write_headers, secret_headers
) -> None:
    from offerloop.delivery import repository

    r = client.put("/v1/delivery/settings", headers=secret_headers,
                   json={"send_window": {"start": "00:00", "end": "00:00"}, "caps": {}, "overall_cap": None})  # fmt: skip
    assert r.status_code == 200, r.text
    r = client.post("/v1/webhooks/endpoints", headers=secret_headers, json={"url": "https://hooks.example/in"})
    assert r.status_code == 201, r.text
    assert client.put("/v1/journeys/hello", headers=secret_headers, json={"yaml": HELLO}).status_code == 200
    workspace_id = client.get("/v1/journeys/hello", headers=secret_headers).json()
    good = client.put(
        "/v1/journeys/hook", headers=secret_headers, json={"yaml": HOOK.replace(LONG, "journey.hello")}
    )
    assert good.status_code == 200, good.text
    with db.write() as session:  # as stored by a release that did not bound it
        [row] = [j for j in repository.latest_journeys(session, _workspace(session)) if j.name == "hook"]
        row.definition = {**row.definition, "steps": [{"send": {**row.definition["steps"][0]["send"], "event": LONG}}]}
    del workspace_id
    identify(client, write_headers, "ann")
    track(client, write_headers, "ann", "Signed Up", {}, "s-ann")
    run_jobs(db, utcnow())
    sent = sorted((m["journey"], m["status"], m["detail"]) for m in client.get(
        "/v1/messages", headers=secret_headers).json()["items"])  # fmt: skip
    assert sent == [
        ("hello", "sent", "in the buyer's inbox"),
        ("hook", "failed", "the webhook event type must be 1 to 120 characters"),
    ]
    assert engine.SEND
