"""Journeys end to end on the in-app channel (no outside server needed): trigger, waits, branches, goals,
re-entry, the kill switch, consent, caps and the send window — all through the API and the real jobs."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from offerloop.core.clock import utcnow
from offerloop.db.uow import Database
from offerloop.delivery.journeys import engine
from offerloop.jobs import runner
from offerloop.worker import registry

registry.load()
KINDS = (engine.RUN, engine.SEND)

ONBOARDING = """
name: onboarding
category: marketing
trigger: {event: Order Completed, where: {properties.total_minor: {gte: 100}}}
goal: {event: Lesson Completed}
steps:
  - send: {channel: inapp, subject: "Welcome {{ buyer.traits.first_name }}", text: "Thanks for {{ event.properties.offer }}"}
  - wait: 2d
  - branch:
      when: {features.orders: {gte: 2}}
      then:
        - send: {channel: inapp, subject: "Back again", text: "again"}
          id: loyal
      else:
        - send: {channel: inapp, subject: "Start lesson 1", text: "go", url: "https://creator.example/l1"}
          id: nudge
"""


def run_jobs(db: Database, now: datetime) -> list[tuple[str, str]]:
    done: list[tuple[str, str]] = []
    for _ in range(20):
        ran = runner.run_due(db, owner="t", now=now, only=KINDS, limit=50)
        if not ran:
            return done
        done += [(r.kind, r.status) for r in ran]
    return done


def track(
    client: TestClient, headers: dict[str, str], user: str, event: str, props: dict[str, Any], mid: str
) -> None:
    r = client.post(
        "/v1/track",
        headers=headers,
        json={
            "userId": user,
            "event": event,
            "properties": props,
            "messageId": mid,
            "timestamp": utcnow().isoformat(),
        },
    )
    assert r.status_code == 200, r.text


def identify(
    client: TestClient, headers: dict[str, str], user: str, consent: bool | None = True, **traits: Any
) -> None:
    body: dict[str, Any] = {
        "userId": user,
        "traits": {"email": f"{user}@example.com", **traits},
        "messageId": f"id-{user}",
        "timestamp": utcnow().isoformat(),
    }
    if consent is not None:
        body["context"] = {"consent": {"categoryPreferences": {"marketing": consent}}}
    r = client.post("/v1/identify", headers=headers, json=body)
    assert r.status_code == 200, r.text


@pytest.fixture
def journey(client: TestClient, secret_headers: dict[str, str]) -> dict[str, Any]:
    # Send any time of day, and no caps, unless a test sets them.
    r = client.put(
        "/v1/delivery/settings",
        headers=secret_headers,
        json={"send_window": {"start": "00:00", "end": "00:00"}, "caps": {}, "overall_cap": None},
    )
    assert r.status_code == 200, r.text
    r = client.put("/v1/journeys/onboarding", headers=secret_headers, json={"yaml": ONBOARDING})
    assert r.status_code == 200, r.text
    return r.json()


def messages(client: TestClient, headers: dict[str, str], **query: Any) -> list[dict[str, Any]]:
    r = client.get("/v1/messages", headers=headers, params=query)
    assert r.status_code == 200, r.text
    return list(r.json()["items"])


def test_a_trigger_sends_then_waits_then_branches(client, db, write_headers, secret_headers, journey) -> None:
    assert journey["version"] == 1 and journey["trigger"] == "Order Completed"
    identify(client, write_headers, "ann", first_name="Ann")
    track(client, write_headers, "ann", "Order Completed", {"total_minor": 500, "offer": "Course"}, "o1")
    now = utcnow()
    assert run_jobs(db, now) == [(engine.RUN, "again"), (engine.SEND, "done")]
    sent = messages(client, secret_headers)
    assert [(m["step"], m["status"], m["subject"]) for m in sent] == [("0", "sent", "Welcome Ann")]
    detail = client.get(f"/v1/messages/{sent[0]['id']}", headers=secret_headers).json()
    assert detail["body"]["text"] == "Thanks for Course"

    assert run_jobs(db, now + timedelta(days=1)) == []  # still waiting
    run_jobs(db, now + timedelta(days=2, seconds=1))
    sent = messages(client, secret_headers)
    assert [(m["step"], m["status"]) for m in sent] == [("nudge", "sent"), ("0", "sent")]
    nudge = client.get(f"/v1/messages/{sent[0]['id']}", headers=secret_headers).json()
    assert nudge["body"]["url"].startswith("http://127.0.0.1:8000/v1/m/click/")
    runs = client.get("/v1/journey-runs", headers=secret_headers).json()["items"]
    assert [(r["state"], r["occurrence"], r["step"]) for r in runs] == [("completed", 1, None)]
    # The sends are events on the buyer's record.
    buyer = runs[0]["buyer_id"]
    events = client.get(f"/v1/buyers/{buyer}/events", headers=secret_headers).json()["items"]
    assert sorted(e["name"] for e in events if e["name"] == "Message Sent") == [
        "Message Sent",
        "Message Sent",
    ]


def test_the_trigger_condition_and_reentry_never(client, db, write_headers, secret_headers, journey) -> None:
    identify(client, write_headers, "bob")
    track(
        client, write_headers, "bob", "Order Completed", {"total_minor": 50}, "small"
    )  # below the condition
    run_jobs(db, utcnow())
    assert client.get("/v1/journey-runs", headers=secret_headers).json()["items"] == []
    track(client, write_headers, "bob", "Order Completed", {"total_minor": 500}, "big")
    track(client, write_headers, "bob", "Order Completed", {"total_minor": 900}, "big2")  # active: not again
    run_jobs(db, utcnow())
    runs = client.get("/v1/journey-runs", headers=secret_headers).json()["items"]
    assert [(r["trigger_message_id"], r["state"]) for r in runs] == [("big", "active")]


def test_a_goal_ends_the_run_and_nothing_more_is_sent(
    client, db, write_headers, secret_headers, journey
) -> None:
    identify(client, write_headers, "cat")
    track(client, write_headers, "cat", "Order Completed", {"total_minor": 500}, "o1")
    now = utcnow()
    run_jobs(db, now)
    track(client, write_headers, "cat", "Lesson Completed", {}, "l1")
    run_jobs(db, now + timedelta(days=3))
    runs = client.get("/v1/journey-runs", headers=secret_headers).json()["items"]
    assert [(r["state"], r["end_reason"]) for r in runs] == [("converted", "goal Lesson Completed (l1)")]
    assert [m["step"] for m in messages(client, secret_headers)] == ["0"]


def test_the_kill_switch_stops_runs_and_queued_sends(
    client, db, write_headers, secret_headers, journey
) -> None:
    identify(client, write_headers, "dan")
    track(client, write_headers, "dan", "Order Completed", {"total_minor": 500}, "o1")
    r = client.post("/v1/journeys/onboarding/pause", headers=secret_headers)
    assert r.status_code == 200 and r.json()["paused"] is True
    run_jobs(db, utcnow())
    runs = client.get("/v1/journey-runs", headers=secret_headers).json()["items"]
    assert [(r["state"], r["end_reason"]) for r in runs] == [("exited", "journey paused (kill switch)")]
    assert messages(client, secret_headers) == []
    identify(client, write_headers, "eve")
    track(client, write_headers, "eve", "Order Completed", {"total_minor": 500}, "o2")
    assert len(client.get("/v1/journey-runs", headers=secret_headers).json()["items"]) == 1  # no new run


def test_marketing_needs_consent_but_transactional_does_not(
    client, db, write_headers, secret_headers, journey
) -> None:
    identify(client, write_headers, "fay", consent=None)
    track(client, write_headers, "fay", "Order Completed", {"total_minor": 500}, "o1")
    run_jobs(db, utcnow())
    assert [(m["status"], m["detail"]) for m in messages(client, secret_headers)] == [
        ("skipped", "no marketing consent")
    ]
    receipt = ONBOARDING.replace("name: onboarding", "name: receipt").replace(
        "category: marketing", "category: transactional"
    )
    assert (
        client.put("/v1/journeys/receipt", headers=secret_headers, json={"yaml": receipt}).status_code == 200
    )
    track(
        client, secret_headers, "fay", "Order Completed", {"total_minor": 700}, "o2"
    )  # the creator's backend
    run_jobs(db, utcnow())
    assert [(m["journey"], m["status"]) for m in messages(client, secret_headers, journey="receipt")] == [
        ("receipt", "sent")
    ]


def test_a_frequency_cap_skips_the_second_marketing_message(
    client, db, write_headers, secret_headers, journey
) -> None:
    client.put(
        "/v1/delivery/settings",
        headers=secret_headers,
        json={"send_window": {"start": "00:00", "end": "00:00"}, "caps": {"inapp": {"max": 1, "per": "1d"}}},
    )
    two = ONBOARDING.replace("name: onboarding", "name: second")
    assert client.put("/v1/journeys/second", headers=secret_headers, json={"yaml": two}).status_code == 200
    identify(client, write_headers, "gus")
    track(client, write_headers, "gus", "Order Completed", {"total_minor": 500}, "o1")
    run_jobs(db, utcnow())
    got = sorted((m["status"], m["detail"] or "") for m in messages(client, secret_headers))
    assert got == [("sent", "in the buyer's inbox"), ("skipped", "frequency cap: 1 inapp per 86400s")]


def test_outside_the_send_window_a_marketing_message_waits_for_it(
    client, db, write_headers, secret_headers, journey
) -> None:
    client.put(
        "/v1/delivery/settings",
        headers=secret_headers,
        json={"send_window": {"start": "09:00", "end": "10:00"}, "caps": {}, "overall_cap": None},
    )
    identify(client, write_headers, "hal", timezone="America/New_York")
    track(client, write_headers, "hal", "Order Completed", {"total_minor": 500}, "o1")
    # 03:00 in New York on a winter day: the message waits until 09:00 local, 14:00 UTC.
    night = datetime(2026, 12, 10, 8, 0, tzinfo=UTC)
    run_jobs(db, night)
    first = messages(client, secret_headers)[0]
    assert (first["status"], first["not_before"]) == ("queued", "2026-12-10T14:00:00Z")
    run_jobs(db, datetime(2026, 12, 10, 14, 0, 1, tzinfo=UTC))
    assert messages(client, secret_headers)[0]["status"] == "sent"


def test_bad_journeys_are_refused_with_every_problem_by_line(client, secret_headers) -> None:
    bad = "name: x\ntrigger: {event: A, where: {features.n: {gtee: 1}}}\nsteps:\n  - wait: soon\n  - send: {channel: fax, text: hi}\n"
    r = client.put("/v1/journeys/x", headers=secret_headers, json={"yaml": bad})
    assert r.status_code == 422
    assert r.json()["error"]["code"] == "invalid_journey"
    message = r.json()["error"]["message"]
    assert "x.yaml:2: trigger.where" in message and "gtee" in message
    assert "x.yaml:4: steps[0].wait: must be a duration such as 30m, 2h, 3d or 1w, got 'soon'" in message
    assert "x.yaml:5: steps[1].send.channel" in message


def test_a_nul_spelled_in_a_quoted_string_is_refused_by_line_on_both_databases(
    client, secret_headers
) -> None:
    # "\0" in a double-quoted YAML string is a NUL character: SQLite would store it, PostgreSQL refuses it.
    text = 'name: x\ntrigger: {event: A}\nsteps:\n  - send: {channel: email, text: "hi\\0there"}\n'
    r = client.put("/v1/journeys/x", headers=secret_headers, json={"yaml": text})
    assert (r.status_code, r.json()["error"]["code"]) == (422, "invalid_journey")
    assert (
        "x.yaml:4: steps[0].send.text: text with a NUL character (\\0) cannot be stored"
        in r.json()["error"]["message"]
    )
    assert client.get("/v1/journeys/x", headers=secret_headers).status_code == 404


DECIDING = """
name: upsell
trigger: {event: Lesson Completed}
steps:
  - decide: {placement: email, as: offer}
  - send:
      channel: inapp
      subject: "Next for you: {{ offer.title }}"
      text: "{{ offer.title }} for {{ offer.price_minor }}"
      url: "https://creator.example/offers/{{ offer.action }}"
"""


def test_a_decide_step_is_a_logged_decision_rewarded_when_the_buyer_converts(
    client, db, write_headers, secret_headers, journey
) -> None:
    actions = [{"key": "coaching", "kind": "offer", "title": "Coaching call", "price_minor": 9900,
                "outcome": {"event": "Order Completed", "window_days": 7}}]  # fmt: skip
    assert client.put("/v1/actions", headers=secret_headers, json=actions).status_code == 200
    assert (
        client.put("/v1/journeys/upsell", headers=secret_headers, json={"yaml": DECIDING}).status_code == 200
    )
    identify(client, write_headers, "ivy")
    track(client, write_headers, "ivy", "Lesson Completed", {}, "l1")
    run_jobs(db, utcnow())
    sent = [m for m in messages(client, secret_headers) if m["journey"] == "upsell"]
    assert [(m["subject"], m["status"]) for m in sent] == [("Next for you: Coaching call", "sent")]
    body = client.get(f"/v1/messages/{sent[0]['id']}", headers=secret_headers).json()["body"]
    assert body["text"] == "Coaching call for 9900"
    decision_id = body["decisions"]["offer"]
    decision = client.get(f"/v1/decisions/{decision_id}", headers=secret_headers).json()
    assert decision["placement"] == "email" and decision["reward"] is None
    assert (decision["chosen"], decision["propensity"]) == ("coaching", 1.0)
    # The buyer clicks through and buys: the click is an event with the journey as its campaign, and the
    # order rewards the decision the journey logged.
    target = client.get(body["url"].removeprefix("http://127.0.0.1:8000"), follow_redirects=False)
    assert target.status_code == 302
    assert target.headers["location"] == (
        "https://creator.example/offers/coaching?utm_source=offerloop&utm_medium=inapp&utm_campaign=upsell&utm_content=1"
    )
    track(client, write_headers, "ivy", "Order Completed", {"total_minor": 9900}, "buy1")
    decision = client.get(f"/v1/decisions/{decision_id}", headers=secret_headers).json()
    assert decision["reward"] == 1.0 and decision["reward_source"] == "buy1"


PERSONAS = """
threshold: 0.5
personas:
  - name: buyer
    prior: 0.5
    signals: [{feature: orders, gte: 1, weight: 4.0}]
  - name: browser
    prior: 0.5
    signals: [{feature: orders, lt: 1, weight: 4.0}]
"""

BECAME_BUYER = """
name: new_buyer
trigger: {persona: buyer}
steps:
  - send: {channel: inapp, subject: "Welcome to the buyers", text: "You are now a {{ persona }}"}
"""


def test_entering_a_persona_starts_a_journey_once(client, db, write_headers, secret_headers, journey) -> None:
    r = client.put("/v1/personas/templates", headers=secret_headers, json=PERSONAS)
    assert r.status_code == 200, r.text
    assert (
        client.put("/v1/journeys/new_buyer", headers=secret_headers, json={"yaml": BECAME_BUYER}).status_code
        == 200
    )
    identify(client, write_headers, "jo")
    track(client, write_headers, "jo", "Page Viewed", {}, "p1")
    run_jobs(db, utcnow())
    assert [m for m in messages(client, secret_headers) if m["journey"] == "new_buyer"] == []
    track(client, write_headers, "jo", "Order Completed", {"total_minor": 10}, "o1")
    track(
        client, write_headers, "jo", "Order Completed", {"total_minor": 10}, "o2"
    )  # still a buyer: no re-entry
    run_jobs(db, utcnow())
    sent = [m for m in messages(client, secret_headers) if m["journey"] == "new_buyer"]
    assert [(m["subject"], m["status"]) for m in sent] == [("Welcome to the buyers", "sent")]
    body = client.get(f"/v1/messages/{sent[0]['id']}", headers=secret_headers).json()["body"]
    assert body["text"] == "You are now a buyer"


def test_erasing_a_buyer_erases_their_runs_addresses_and_message_content(
    client, db, write_headers, secret_headers, journey
) -> None:
    identify(client, write_headers, "kim", first_name="Kim")
    track(client, write_headers, "kim", "Order Completed", {"total_minor": 500, "offer": "Course"}, "o1")
    run_jobs(db, utcnow())
    assert client.post("/v1/delivery/suppressions", headers=secret_headers,
                       json={"address": "kim@example.com", "scope": "marketing"}).status_code == 201  # fmt: skip
    buyer = client.get("/v1/journey-runs", headers=secret_headers).json()["items"][0]["buyer_id"]
    assert client.delete(f"/v1/buyers/{buyer}", headers=secret_headers).status_code == 200
    assert client.get("/v1/journey-runs", headers=secret_headers).json()["items"] == []
    [message] = messages(client, secret_headers)
    detail = client.get(f"/v1/messages/{message['id']}", headers=secret_headers).json()
    assert (detail["status"], detail["recipient"], detail["subject"], detail["body"]) == (
        "sent",
        None,
        None,
        {},
    )
    assert client.get("/v1/delivery/suppressions", headers=secret_headers).json()["items"] == []


def test_a_goal_counts_by_log_order_not_by_the_clients_clock(
    client, db, write_headers, secret_headers, journey
) -> None:
    identify(client, write_headers, "lee")
    track(client, write_headers, "lee", "Order Completed", {"total_minor": 500}, "o1")
    run_jobs(db, utcnow())
    # The buyer's device clock is an hour behind: the goal event says it happened before the run began.
    r = client.post("/v1/track", headers=write_headers, json={
        "userId": "lee", "event": "Lesson Completed", "messageId": "l1",
        "timestamp": (utcnow() - timedelta(hours=1)).isoformat()})  # fmt: skip
    assert r.status_code == 200
    runs = client.get("/v1/journey-runs", headers=secret_headers).json()["items"]
    assert [(r["state"], r["end_reason"]) for r in runs] == [("converted", "goal Lesson Completed (l1)")]


RECEIPT = """
name: receipt
category: transactional
trigger: {event: Order Completed}
reentry: always
steps:
  - send: {channel: inapp, subject: "Receipt {{ event.properties.order_id }}", text: "Thanks"}
  - wait: 1d
  - send: {channel: inapp, subject: "How is it going?", text: "Tell us"}
"""


def test_a_transactional_trigger_from_a_public_write_key_sends_nothing(
    client, db, write_headers, secret_headers, journey
) -> None:
    """A write key is public: whoever has it must not make offerloop send consent-free mail with their text to an
    address they choose. Transactional journeys start on the server's or the creator's (secret key) events."""
    assert (
        client.put("/v1/journeys/receipt", headers=secret_headers, json={"yaml": RECEIPT}).status_code == 200
    )
    identify(client, write_headers, "vic", consent=False)
    track(client, write_headers, "vic", "Order Completed", {"order_id": "Claim your prize at http://evil.example"},
          "spoof")  # fmt: skip
    run_jobs(db, utcnow())
    assert messages(client, secret_headers, journey="receipt") == []
    track(client, secret_headers, "vic", "Order Completed", {"order_id": "ord_1"}, "real")
    run_jobs(db, utcnow())
    assert [m["subject"] for m in messages(client, secret_headers, journey="receipt")] == ["Receipt ord_1"]


def test_reentry_always_gives_every_trigger_its_own_run_while_the_earlier_ones_still_run(
    client, db, write_headers, secret_headers, journey
) -> None:
    assert (
        client.put("/v1/journeys/receipt", headers=secret_headers, json={"yaml": RECEIPT}).status_code == 200
    )
    identify(client, write_headers, "wes")
    for n in (
        1,
        2,
        3,
    ):  # three orders back to back: the first run is still waiting its day when the others come
        track(client, secret_headers, "wes", "Order Completed", {"order_id": f"ord_{n}"}, f"o{n}")
        run_jobs(db, utcnow())
    track(
        client, secret_headers, "wes", "Order Completed", {"order_id": "ord_3"}, "o3"
    )  # a replay: no new run
    run_jobs(db, utcnow())
    subjects = sorted(m["subject"] for m in messages(client, secret_headers, journey="receipt"))
    assert subjects == ["Receipt ord_1", "Receipt ord_2", "Receipt ord_3"]
    run_jobs(db, utcnow() + timedelta(days=2))
    follow_ups = [
        m for m in messages(client, secret_headers, journey="receipt") if m["subject"] == "How is it going?"
    ]
    assert len(follow_ups) == 3


def test_a_journey_cannot_be_triggered_by_offerloops_own_send_events(client, secret_headers) -> None:
    loop = "name: loop\ncategory: transactional\nreentry: always\ntrigger: {event: Message Sent}\nsteps:\n" \
           "  - send: {channel: inapp, text: again}\n"  # fmt: skip
    r = client.put("/v1/journeys/loop", headers=secret_headers, json={"yaml": loop})
    assert r.status_code == 422
    assert (
        "loop.yaml:4: trigger.event: Message Sent is recorded by offerloop for the messages it sends"
        in (r.json()["error"]["message"])
    )
    clicked = loop.replace("Message Sent", "Message Clicked")  # what the buyer does is a fine trigger
    assert client.put("/v1/journeys/loop", headers=secret_headers, json={"yaml": clicked}).status_code == 200


def test_every_kind_of_trigger_is_named_in_the_journey_read(client, secret_headers) -> None:
    journeys = Path(__file__).resolve().parents[2] / "examples" / "demo" / "journeys"
    shown = {}
    for name in ("entitlement_expiring", "weekly_digest", "module_unlocked", "trial_ending"):
        text = (journeys / f"{name}.yaml").read_text()
        r = client.put(f"/v1/journeys/{name}", headers=secret_headers, json={"yaml": text})
        assert r.status_code in (200, 201), r.text
        shown[name] = client.get(f"/v1/journeys/{name}", headers=secret_headers).json()["trigger"]
    assert shown == {
        "entitlement_expiring": "entitlement module:* ending within 1w",
        "weekly_digest": "every week on mon at 09:00 (buyer's time)",
        "module_unlocked": "entitlement granted: module:lesson-*",
        "trial_ending": "trial ending within 3d",
    }
    text = "name: p\ntrigger: {persona: deal_hunter}\nsteps:\n  - send: {channel: inapp, text: hi}\n"
    r = client.put("/v1/journeys/p", headers=secret_headers, json={"yaml": text})
    assert r.json()["trigger"] == "persona entered: deal_hunter", r.text
