"""A suppression must stop mail to the address the message is actually sent to.

- The gate looked the suppression up under the buyer's *current* ``email`` trait, while the e-mail goes to the
  address rendered when the message was queued (``recipient``): a buyer who changed address while a message
  waited (a send window, a retry) had their old, suppressed address mailed anyway.
- Addresses are case-insensitive in practice (every mailbox provider), and the creator's suppression is stored
  lower-cased, but the gate looked up the trait as written: ``Ann@Example.com`` suppressed for everything still
  got a receipt.

Observed at a real SMTP server on loopback: the envelope recipients it accepted."""

from __future__ import annotations

from typing import Any

import pytest
from tests.delivery.email.conftest import smtp_server  # noqa: F401  (fixture)
from tests.delivery.email.test_journey_mail import mail, outbox, run  # noqa: F401  (fixture)

from offerloop.core.clock import utcnow
from offerloop.delivery.journeys import engine
from offerloop.jobs import runner


def identify(client, write_headers, user: str, address: str, mid: str) -> None:
    r = client.post("/v1/identify", headers=write_headers, json={
        "userId": user, "traits": {"email": address, "first_name": user}, "messageId": mid,
        "timestamp": utcnow().isoformat(), "context": {"consent": {"categoryPreferences": {"marketing": True}}}})  # fmt: skip
    assert r.status_code == 200, r.text


def order(client, secret_headers, user: str, order_id: str) -> None:
    r = client.post("/v1/track", headers=secret_headers, json={
        "userId": user, "event": "Order Completed", "properties": {"order_id": order_id}, "messageId": order_id,
        "timestamp": utcnow().isoformat()})  # fmt: skip
    assert r.status_code == 200, r.text


def suppress(client, secret_headers, address: str) -> None:
    r = client.post("/v1/delivery/suppressions", headers=secret_headers, json={"address": address})
    assert r.status_code == 201, r.text


Live = tuple[Any, Any, dict[str, str], dict[str, str], dict[str, Any]]


@pytest.fixture
def live(client, db, write_headers, secret_headers, mail: dict[str, Any]) -> Live:  # noqa: F811
    return client, db, write_headers, secret_headers, mail


def received(server: dict[str, Any]) -> list[str]:
    return [to for m in server["server"].recorder.messages for to in m.rcpt_tos]


def assert_suppressed(client, db, secret_headers, server: dict[str, Any]) -> None:
    run(db, server["settings"])
    [row] = outbox(client, secret_headers)
    assert (row["status"], row["detail"]) == ("suppressed", "suppressed: added by the creator")
    assert received(server) == []


def test_found_a_suppressed_old_address_is_not_mailed_after_the_buyer_changed_address(live: Live) -> None:
    client, db, write_headers, secret_headers, smtp = live
    identify(client, write_headers, "dee", "dee@old.example", "i1")
    order(client, secret_headers, "dee", "ord_1")
    # The run queues the receipt to dee@old.example; the send has not happened yet.
    while runner.run_due(db, owner="t", now=utcnow(), only=(engine.RUN,), limit=50):
        pass
    identify(client, write_headers, "dee", "dee@new.example", "i2")
    suppress(client, secret_headers, "dee@old.example")
    assert_suppressed(client, db, secret_headers, smtp)


def test_found_a_suppression_matches_the_address_whatever_its_case(live: Live) -> None:
    client, db, write_headers, secret_headers, smtp = live
    identify(client, write_headers, "ann", "Ann@Example.com", "i1")
    suppress(client, secret_headers, "Ann@Example.com")  # stored as ann@example.com
    order(client, secret_headers, "ann", "ord_1")
    assert_suppressed(client, db, secret_headers, smtp)


def test_found_a_hard_bounce_of_a_mixed_case_address_suppresses_it_for_any_spelling(live: Live) -> None:
    client, db, write_headers, secret_headers, smtp = live
    smtp["server"].recorder.rcpt_replies["Bo@Example.com"] = "550 5.1.1 no such user"
    identify(client, write_headers, "bo", "Bo@Example.com", "i1")
    order(client, secret_headers, "bo", "ord_1")
    run(db, smtp["settings"])
    identify(client, write_headers, "bo", "bo@example.com", "i2")
    order(client, secret_headers, "bo", "ord_2")
    run(db, smtp["settings"])
    rows = sorted((r["subject"], r["status"]) for r in outbox(client, secret_headers))
    assert rows == [("Receipt ord_1", "failed"), ("Receipt ord_2", "suppressed")]
    assert received(smtp) == []
    [suppressed] = client.get("/v1/delivery/suppressions", headers=secret_headers).json()["items"]
    assert (suppressed["address"], suppressed["scope"]) == ("bo@example.com", "all")
