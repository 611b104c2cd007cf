"""The links in messages (signed: no key) and the creator's views of journeys, messages and suppressions, with
e-mail captured in the embedded Maildir (no SMTP server configured)."""

from __future__ import annotations

import asyncio
import email
from email import policy
from pathlib import Path
from typing import Any

import pytest
from tests.conftest import tampered

from offerloop.core.clock import utcnow
from offerloop.delivery import live, tasks
from offerloop.delivery.journeys import engine
from offerloop.jobs import runner
from offerloop.worker import registry

registry.load()

NEWS = """
name: news
trigger: {event: Signed Up}
steps:
  - send:
      channel: email
      subject: "News for {{ buyer.traits.first_name }}"
      text: "Read: {{ link('https://creator.example/post?id=7') }}"
      html: "<p>Hi <b>{{ buyer.traits.first_name }}</b></p>"
"""


@pytest.fixture
def sent(client, db, settings, tmp_path, write_headers, secret_headers) -> Any:
    settings.maildir_path = str(tmp_path / "maildir")
    client.put("/v1/delivery/settings", headers=secret_headers,
               json={"send_window": {"start": "00:00", "end": "00:00"}, "caps": {}, "overall_cap": None})  # fmt: skip
    assert client.put("/v1/journeys/news", headers=secret_headers, json={"yaml": NEWS}).status_code == 200
    now = utcnow().isoformat()
    client.post("/v1/identify", headers=write_headers, json={
        "userId": "ann", "traits": {"email": "ann@example.com", "first_name": "Ann"}, "messageId": "i1", "timestamp": now,
        "context": {"consent": {"categoryPreferences": {"marketing": True}}}})  # fmt: skip
    client.post("/v1/track", headers=write_headers, json={"userId": "ann", "event": "Signed Up", "messageId": "s1",
                                                          "timestamp": now})  # fmt: skip
    for _ in range(5):
        runner.run_due(db, owner="t", only=(engine.RUN, engine.SEND), limit=10, deps={"settings": settings})
    yield client.get("/v1/messages", headers=secret_headers).json()["items"][0]
    tasks.close_mailers()


def test_the_captured_email_and_its_web_version(client, secret_headers, sent) -> None:
    assert sent["status"] == "sent"
    raw = client.get(f"/v1/messages/{sent['id']}/email", headers=secret_headers)
    assert raw.status_code == 200 and raw.headers["content-type"] == "message/rfc822"
    parsed = email.message_from_bytes(raw.content, policy=policy.default)
    assert (parsed["Subject"], parsed["Message-ID"]) == ("News for Ann", sent["message_id"])
    assert client.get("/v1/messages/999999/email", headers=secret_headers).status_code == 404
    # The web version: what a long e-mail links to, in the browser.
    detail = client.get(f"/v1/messages/{sent['id']}", headers=secret_headers).json()
    view_token = detail["body"]["unsubscribe_url"].rsplit("/", 1)[1]
    assert client.get(f"/v1/m/view/{view_token}").status_code == 403  # an unsubscribe token opens no view


def test_clicks_and_opens_become_events_and_forged_links_are_refused(client, secret_headers, sent) -> None:
    detail = client.get(f"/v1/messages/{sent['id']}", headers=secret_headers).json()
    link = detail["body"]["text"].split("Read: ", 1)[1].strip().removeprefix("http://127.0.0.1:8000")
    r = client.get(link, follow_redirects=False)
    assert r.status_code == 302
    assert r.headers["location"] == (
        "https://creator.example/post?id=7&utm_source=offerloop&utm_medium=email&utm_campaign=news&utm_content=0"
    )
    token = link.rsplit("/", 1)[1]
    assert client.get(f"/v1/m/click/{tampered(token)}", follow_redirects=False).status_code == 403
    assert client.get(f"/v1/m/open/{token}").status_code == 403  # a click token is no open token
    buyer = client.get("/v1/buyers/lookup", headers=secret_headers, params={"user_id": "ann"}).json()["id"]
    names = [
        e["name"] for e in client.get(f"/v1/buyers/{buyer}/events", headers=secret_headers).json()["items"]
    ]
    assert names.count("Message Clicked") == 1 and names.count("Message Sent") == 1


def test_the_creator_views_journeys_runs_suppressions_and_rules(client, secret_headers, sent) -> None:
    listed = client.get("/v1/journeys", headers=secret_headers, params={"limit": 1}).json()
    assert [j["name"] for j in listed["items"]] == ["news"] and listed["next_cursor"] is None
    detail = client.get("/v1/journeys/news", headers=secret_headers).json()
    assert detail["runs"] == [{"state": "completed", "step": None, "runs": 1}]
    assert client.post("/v1/journeys/news/pause", headers=secret_headers).json()["paused"] is True
    assert client.post("/v1/journeys/news/resume", headers=secret_headers).json()["paused"] is False
    assert client.post("/v1/journeys/nope/pause", headers=secret_headers).status_code == 404
    runs = client.get("/v1/journey-runs", headers=secret_headers, params={"state": "completed"}).json()[
        "items"
    ]
    assert len(runs) == 1
    added = client.post("/v1/delivery/suppressions", headers=secret_headers,
                        json={"address": "Bob@Example.com", "reason": "asked by phone"})  # fmt: skip
    assert added.status_code == 201 and added.json()["address"] == "bob@example.com"
    page = client.get("/v1/delivery/suppressions", headers=secret_headers, params={"channel": "email"}).json()
    assert [s["address"] for s in page["items"]] == ["bob@example.com"]
    removed = client.delete(f"/v1/delivery/suppressions/{added.json()['id']}", headers=secret_headers)
    assert removed.status_code == 200 and removed.json()["reason"] == "asked by phone"
    assert (
        client.delete(f"/v1/delivery/suppressions/{added.json()['id']}", headers=secret_headers).status_code
        == 404
    )
    rules = client.get("/v1/delivery/settings", headers=secret_headers).json()
    assert rules["send_window"] == {"start": "00:00", "end": "00:00"} and rules["open_tracking"] is False


def test_a_stream_wakes_on_its_topic_only() -> None:
    async def scenario() -> tuple[bool, bool, int]:
        woken = asyncio.create_task(live.wait(("inbox", "w", "b"), 5.0))
        other = asyncio.create_task(live.wait(("inbox", "w", "c"), 0.2))
        await asyncio.sleep(0)
        waiting = live.waiting(("inbox", "w", "b"))
        live.notify(("inbox", "w", "b"))
        return await woken, await other, waiting

    assert asyncio.run(scenario()) == (True, False, 1)
    assert live.waiting(("inbox", "w", "b")) == 0


def test_settings_refuse_a_sender_with_line_breaks_and_an_unknown_zone(client, secret_headers) -> None:
    """A header injection or a zone that would silently become UTC at send time is a 422 at the PUT."""
    for body, where, message in [
        ({"sender": "Evil <ceo@bank.example>\r\nBcc: x@y"}, "sender", "sender may not contain line breaks"),
        ({"sender": "two <a@example.com>, <b@example.com>"}, "sender",
         "sender must be one address like 'Name <user@example.com>'"),
        ({"default_timezone": "Mars/Olympus"}, "default_timezone",
         "is not a time zone this server knows (tzdata), got 'Mars/Olympus'"),
    ]:  # fmt: skip
        r = client.put("/v1/delivery/settings", headers=secret_headers, json=body)
        assert r.status_code == 422, r.text
        problems = r.json()["error"]["details"]
        assert [(p["location"], p["message"]) for p in problems] == [(where, message)], problems
    good = {"sender": "Shop <shop@example.com>", "default_timezone": "Europe/Paris"}
    assert client.put("/v1/delivery/settings", headers=secret_headers, json=good).status_code == 200


def test_an_erased_buyers_captured_email_is_deleted_and_their_old_unsubscribe_link_records_nothing(
    client, secret_headers, settings, sent
) -> None:
    unsubscribe = client.get(f"/v1/messages/{sent['id']}", headers=secret_headers).json()["body"][
        "unsubscribe_url"
    ]
    path = "/" + unsubscribe.split("/", 3)[3]
    maildir = Path(settings.maildir_path)

    def files() -> list[str]:
        return sorted(p.name for sub in ("new", "cur") for p in (maildir / sub).iterdir())

    assert len(files()) == 1
    assert client.delete(f"/v1/buyers/{sent['buyer_id']}", headers=secret_headers).status_code == 200
    r = client.get(f"/v1/messages/{sent['id']}/email", headers=secret_headers)
    assert (r.status_code, r.json()["error"]["message"]) == (
        404,
        "the buyer of this message was erased: its e-mail is not kept",
    )
    assert files() == []  # deleted, not only hidden
    assert client.post(path).status_code == 200  # the link still answers...
    suppressions = client.get("/v1/delivery/suppressions", headers=secret_headers).json()["items"]
    assert suppressions == []  # ...but nothing about the erased buyer is stored again
