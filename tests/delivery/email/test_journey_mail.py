"""Journeys through a real SMTP server on loopback: the message as received (headers, parts, the stable
Message-ID, RFC 8058 one-click unsubscribe), the one-click POST itself, hard bounces suppressing the address,
transient refusals retried, and transactional mail going where marketing may not."""

from __future__ import annotations

import email
import re
from collections.abc import Iterator
from datetime import timedelta
from email import policy
from typing import Any

import pytest
from tests.delivery.email.smtpd import Recorder

from offerloop.core.clock import utcnow
from offerloop.delivery import tasks
from offerloop.delivery.journeys import engine
from offerloop.jobs import runner
from offerloop.worker import registry

registry.load()

WELCOME = """
name: welcome
trigger: {event: Signed Up}
steps:
  - send:
      channel: email
      subject: "Welcome, {{ buyer.traits.first_name }}"
      text: "Start here: {{ link('https://creator.example/start') }}"
      html: "<p>Hello <b>{{ buyer.traits.first_name }}</b> <a href='{{ link('https://creator.example/start') }}'>start</a></p>"
"""
RECEIPT = """
name: receipt
category: transactional
trigger: {event: Order Completed}
reentry: always
steps:
  - send: {channel: email, subject: "Receipt {{ event.properties.order_id }}", text: "Thanks"}
"""


@pytest.fixture
def mail(client, settings, secret_headers, smtp_server) -> Iterator[dict[str, Any]]:
    server = smtp_server(Recorder())
    settings.smtp_url = f"smtp://127.0.0.1:{server.port}"
    settings.mail_from = "Rowan Vale <hello@rowan.example>"
    settings.bounce_address = "bounces@rowan.example"
    r = client.put("/v1/delivery/settings", headers=secret_headers,
                   json={"send_window": {"start": "00:00", "end": "00:00"}, "caps": {}, "overall_cap": None})  # fmt: skip
    assert r.status_code == 200
    for name, text in (("welcome", WELCOME), ("receipt", RECEIPT)):
        assert (
            client.put(f"/v1/journeys/{name}", headers=secret_headers, json={"yaml": text}).status_code == 200
        )
    yield {"server": server, "settings": settings}
    tasks.close_mailers()


def run(db, settings, now=None) -> list[tuple[str, str]]:
    out: list[tuple[str, str]] = []
    for _ in range(20):
        ran = runner.run_due(db, owner="t", now=now or utcnow(), only=(engine.RUN, engine.SEND), limit=50,
                             deps={"settings": settings})  # fmt: skip
        if not ran:
            return out
        out += [(r.kind, r.status) for r in ran]
    return out


def signup(client, write_headers, user: str, *, consent: bool = True) -> None:
    now = utcnow().isoformat()
    r = client.post("/v1/identify", headers=write_headers, json={
        "userId": user, "traits": {"email": f"{user}@example.com", "first_name": user.title()}, "messageId": f"i-{user}",
        "timestamp": now, "context": {"consent": {"categoryPreferences": {"marketing": consent}}}})  # fmt: skip
    assert r.status_code == 200
    r = client.post("/v1/track", headers=write_headers,
                    json={"userId": user, "event": "Signed Up", "messageId": f"s-{user}", "timestamp": now})  # fmt: skip
    assert r.status_code == 200


def outbox(client, secret_headers, **query: Any) -> list[dict[str, Any]]:
    return list(client.get("/v1/messages", headers=secret_headers, params=query).json()["items"])


def test_the_message_as_received_and_one_click_unsubscribe(
    client, db, write_headers, secret_headers, mail
) -> None:
    signup(client, write_headers, "ann")
    run(db, mail["settings"])
    [got] = mail["server"].recorder.messages
    parsed = email.message_from_bytes(got.data, policy=policy.default)
    [row] = outbox(client, secret_headers)
    # VERP (on with a bounce address): the envelope sender names the message, signed.
    assert re.fullmatch(rf"bounces\+{row['id']}-[0-9a-f]{{20}}@rowan\.example", got.mail_from)
    assert got.rcpt_tos == ["ann@example.com"]
    assert row["status"] == "sent"
    assert parsed["Message-ID"] == row["message_id"]
    assert (parsed["From"], parsed["To"], parsed["Subject"]) == (
        "Rowan Vale <hello@rowan.example>",
        "ann@example.com",
        "Welcome, Ann",
    )
    assert parsed["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    unsubscribe = parsed["List-Unsubscribe"].strip("<>")
    assert unsubscribe.startswith("http://127.0.0.1:8000/v1/m/unsubscribe/")
    assert parsed.get_content_type() == "multipart/alternative"
    text = parsed.get_body(("plain",)).get_content()
    html = parsed.get_body(("html",)).get_content()
    assert text.startswith("Start here: http://127.0.0.1:8000/v1/m/click/")
    assert "<b>Ann</b>" in html

    # RFC 8058: a POST with List-Unsubscribe=One-Click to the URL, no cookies, no confirmation.
    path = unsubscribe.removeprefix("http://127.0.0.1:8000")
    assert client.get(path).status_code == 200  # the page: a GET changes nothing
    assert client.get("/v1/delivery/suppressions", headers=secret_headers).json()["items"] == []
    r = client.post(path, content=b"List-Unsubscribe=One-Click",
                    headers={"Content-Type": "application/x-www-form-urlencoded"})  # fmt: skip
    assert r.status_code == 200 and r.json() == {"unsubscribed": True, "channel": "email"}
    assert client.post(path, content=b"List-Unsubscribe=One-Click").status_code == 200  # twice: same answer
    [suppressed] = client.get("/v1/delivery/suppressions", headers=secret_headers).json()["items"]
    assert (suppressed["address"], suppressed["scope"]) == ("ann@example.com", "marketing")
    buyer = client.get("/v1/buyers/lookup", headers=secret_headers, params={"user_id": "ann"}).json()
    assert buyer["consent"]["marketing"] is False
    # Marketing stops; a receipt (transactional) still goes.
    client.post("/v1/track", headers=secret_headers, json={  # an order: the creator's backend (secret key)
        "userId": "ann", "event": "Order Completed", "properties": {"order_id": "ord_1"}, "messageId": "o1",
        "timestamp": utcnow().isoformat()})  # fmt: skip
    run(db, mail["settings"])
    subjects = [
        email.message_from_bytes(m.data, policy=policy.default)["Subject"]
        for m in mail["server"].recorder.messages
    ]
    assert subjects == ["Welcome, Ann", "Receipt ord_1"]
    receipt = email.message_from_bytes(mail["server"].recorder.messages[1].data, policy=policy.default)
    assert receipt["List-Unsubscribe"] is None  # transactional mail has no unsubscribe


def test_a_hard_bounce_suppresses_the_address_for_everything(
    client, db, write_headers, secret_headers, mail
) -> None:
    mail["server"].recorder.rcpt_replies["bob@example.com"] = "550 5.1.1 no such user"
    signup(client, write_headers, "bob")
    run(db, mail["settings"])
    [row] = outbox(client, secret_headers)
    assert (row["status"], row["detail"]) == ("failed", "550 550 5.1.1 no such user (RCPT TO)")
    [suppressed] = client.get("/v1/delivery/suppressions", headers=secret_headers).json()["items"]
    assert (suppressed["address"], suppressed["scope"]) == ("bob@example.com", "all")
    buyer = client.get("/v1/buyers/lookup", headers=secret_headers, params={"user_id": "bob"}).json()
    names = [
        e["name"]
        for e in client.get(f"/v1/buyers/{buyer['id']}/events", headers=secret_headers).json()["items"]
    ]
    assert "Message Bounced" in names and "Message Sent" not in names
    client.post("/v1/track", headers=secret_headers, json={
        "userId": "bob", "event": "Order Completed", "properties": {"order_id": "ord_2"}, "messageId": "o2",
        "timestamp": utcnow().isoformat()})  # fmt: skip
    run(db, mail["settings"])
    receipt = outbox(client, secret_headers, journey="receipt")[0]
    assert (receipt["status"], receipt["detail"]) == (
        "suppressed",
        "suppressed: hard bounce: 550 550 5.1.1 no such user (RCPT TO)",
    )
    assert mail["server"].recorder.messages == []


def test_a_transient_refusal_is_retried_with_the_same_message_id(
    client, db, write_headers, secret_headers, mail
) -> None:
    mail["server"].recorder.data_reply = "451 4.3.0 try again later"
    signup(client, write_headers, "cy")
    assert run(db, mail["settings"]) == [(engine.RUN, "done"), (engine.SEND, "retrying")]
    [row] = outbox(client, secret_headers)
    assert (row["status"], row["attempts"], row["detail"]) == (
        "queued",
        1,
        "451 451 4.3.0 try again later (DATA)",
    )
    mail["server"].recorder.data_reply = None
    run(db, mail["settings"], utcnow() + timedelta(minutes=5))
    [got] = mail["server"].recorder.messages
    [row] = outbox(client, secret_headers)
    assert (row["status"], row["attempts"]) == ("sent", 2)
    assert email.message_from_bytes(got.data, policy=policy.default)["Message-ID"] == row["message_id"]
