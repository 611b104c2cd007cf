"""Reports applied to real sends: journeys mail a real SMTP server on loopback, then the DSN / ARF about that
message is posted to POST /v1/delivery/reports (or read from a Maildir by the CLI) — hard bounces suppress
the address so a later send is suppressed, complaints stop marketing but not receipts, soft bounces suppress
after three in a row, the same report twice is one event, and another workspace's message is not found."""

from __future__ import annotations

import email
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import timedelta
from email import policy
from pathlib import Path
from typing import Any

import orjson
import pytest
from tests.conftest import bearer
from tests.delivery.email import test_journey_mail as journey_mail
from tests.delivery.email.test_journey_mail import outbox, run, signup
from tests.delivery.email.test_reports_parse import ORIGINAL, vector
from typer.testing import CliRunner

from offerloop.cli import reports as report_cmds
from offerloop.cli.main import app as cli_app
from offerloop.core.clock import utcnow
from offerloop.delivery.email import reports
from offerloop.workspaces import service as workspace_service

NEWS = """
name: news
trigger: {event: Newsletter Due}
reentry: always
steps:
  - send: {channel: email, subject: "News {{ event.properties.n }}", text: "Read on"}
"""
RFC822 = {"Content-Type": "message/rfc822"}
mail = journey_mail.mail  # the fixture: an SMTP server on loopback, the welcome and receipt journeys


@pytest.fixture(autouse=True)
def message_id_matching(settings) -> None:
    """These tests match reports by the original's Message-ID: VERP off (test_verp.py runs it on)."""
    settings.smtp_verp = False


def post(client, headers, raw: bytes) -> Any:
    return client.post("/v1/delivery/reports", headers={**headers, **RFC822}, content=raw)


def about(raw: bytes, row: dict[str, Any], address: str | None = None) -> bytes:
    """A vector made about this outbox message: its Message-ID, and (optionally) its recipient."""
    out = raw.replace(ORIGINAL.encode(), row["message_id"].encode())
    return out.replace(address.encode(), row["recipient"].encode()) if address else out


def events(client, secret_headers, user: str) -> list[str]:
    buyer = client.get("/v1/buyers/lookup", headers=secret_headers, params={"user_id": user}).json()
    items = client.get(f"/v1/buyers/{buyer['id']}/events", headers=secret_headers).json()["items"]
    return sorted(e["name"] for e in items if (e["name"] or "").startswith("Message"))


def suppressions(client, headers) -> list[tuple[str, str, str]]:
    items = client.get("/v1/delivery/suppressions", headers=headers).json()["items"]
    return [(s["address"], s["scope"], s["reason"]) for s in items]


def order(client, secret_headers, user: str, order_id: str) -> None:
    """An order as the creator's backend reports it (secret key): it triggers the transactional receipt."""
    r = client.post("/v1/track", headers=secret_headers, json={
        "userId": user, "event": "Order Completed", "properties": {"order_id": order_id},
        "messageId": f"o-{order_id}", "timestamp": utcnow().isoformat()})  # fmt: skip
    assert r.status_code == 200


def newsletter(client, write_headers, user: str, n: int) -> None:
    r = client.post("/v1/track", headers=write_headers, json={
        "userId": user, "event": "Newsletter Due", "properties": {"n": n}, "messageId": f"n-{user}-{n}",
        "timestamp": utcnow().isoformat()})  # fmt: skip
    assert r.status_code == 200


def subjects(box: dict[str, Any]) -> list[str]:
    return [
        email.message_from_bytes(m.data, policy=policy.default)["Subject"]
        for m in box["server"].recorder.messages
    ]


@pytest.fixture
def news(client, secret_headers, mail) -> None:
    assert client.put("/v1/journeys/news", headers=secret_headers, json={"yaml": NEWS}).status_code == 200


def test_a_hard_bounce_suppresses_the_address_and_a_later_send(
    client,
    db,
    write_headers,
    secret_headers,
    mail,
) -> None:
    signup(client, write_headers, "bob")
    run(db, mail["settings"])
    [row] = outbox(client, secret_headers)
    assert row["status"] == "sent" and suppressions(client, secret_headers) == []
    r = post(client, secret_headers, about(vector("postfix_hard.eml"), row))
    assert r.status_code == 200, r.text
    diagnostic = (
        "550 5.1.1 <bob@example.com>: Recipient address rejected: User unknown in virtual mailbox table"
    )
    assert r.json() == {
        "format": "dsn", "matched_by": "message_id", "outbox_id": row["id"], "message_id": row["message_id"],
        "buyer_id": row["buyer_id"], "journey": "welcome",
        "outcomes": [{"kind": "hard_bounce", "recipient": "bob@example.com", "reported_recipient": "bob@example.com",
                      "action": "failed", "status": "5.1.1", "diagnostic": diagnostic, "applied": True,
                      "event": "Message Bounced", "suppressed": "all"}],
    }  # fmt: skip
    reason = f"hard bounce: 5.1.1 {diagnostic}"[:200]
    assert suppressions(client, secret_headers) == [("bob@example.com", "all", reason)]
    assert events(client, secret_headers, "bob") == ["Message Bounced", "Message Sent"]

    # The same report again (the MTA re-delivered it): nothing more.
    again = post(client, secret_headers, about(vector("postfix_hard.eml"), row))
    assert again.status_code == 200 and again.json()["outcomes"][0]["applied"] is False
    assert events(client, secret_headers, "bob") == ["Message Bounced", "Message Sent"]
    [stored] = client.get("/v1/delivery/reports", headers=secret_headers).json()["items"]
    assert (stored["kind"], stored["outbox_id"], stored["status"], stored["reporter"]) == (
        "hard_bounce", row["id"], "5.1.1", "mail.rowan.example",
    )  # fmt: skip

    # A receipt (transactional) is suppressed too: nothing more reaches the SMTP server.
    order(client, secret_headers, "bob", "ord_b1")
    run(db, mail["settings"])
    receipt = outbox(client, secret_headers, journey="receipt")[0]
    assert (receipt["status"], receipt["detail"]) == ("suppressed", f"suppressed: {reason}")
    assert subjects(mail) == ["Welcome, Bob"]


def test_a_complaint_stops_marketing_but_not_receipts(
    client,
    db,
    write_headers,
    secret_headers,
    mail,
    news,
) -> None:
    signup(client, write_headers, "eve")
    run(db, mail["settings"])
    [row] = outbox(client, secret_headers)
    # The feedback loop redacted/forwarded the recipient (eve@example.net): the one report is this message's.
    r = post(client, secret_headers, about(vector("arf_abuse.eml"), row))
    assert r.status_code == 200, r.text
    assert r.json()["outcomes"] == [{
        "kind": "complaint", "recipient": "eve@example.com", "reported_recipient": "eve@example.net",
        "action": None, "status": None, "diagnostic": "feedback-type abuse", "applied": True,
        "event": "Message Complained", "suppressed": "marketing"}]  # fmt: skip
    assert suppressions(client, secret_headers) == [("eve@example.com", "marketing", "complaint (abuse)")]
    buyer = client.get("/v1/buyers/lookup", headers=secret_headers, params={"user_id": "eve"}).json()
    assert buyer["consent"]["marketing"] is False
    assert (
        post(client, secret_headers, about(vector("arf_abuse.eml"), row)).json()["outcomes"][0]["applied"]
        is False
    )
    assert events(client, secret_headers, "eve") == ["Message Complained", "Message Sent"]

    newsletter(client, write_headers, "eve", 1)
    order(client, secret_headers, "eve", "ord_e1")
    run(db, mail["settings"])
    [news_row] = outbox(client, secret_headers, journey="news")
    assert (news_row["status"], news_row["detail"]) == ("suppressed", "suppressed: complaint (abuse)")
    assert subjects(mail) == ["Welcome, Eve", "Receipt ord_e1"]


def test_three_soft_bounces_in_a_row_suppress_a_delivery_breaks_the_row(
    client,
    db,
    write_headers,
    secret_headers,
    mail,
    news,
) -> None:
    signup(client, write_headers, "cy")
    start = utcnow()
    run(db, mail["settings"], start)
    for n in range(1, 5):
        newsletter(client, write_headers, "cy", n)
        run(db, mail["settings"], start + timedelta(minutes=n))
    rows = sorted(outbox(client, secret_headers), key=lambda m: m["sent_at"])
    assert [m["status"] for m in rows] == ["sent"] * 5
    delayed, delivered = vector("postfix_delayed.eml"), vector("postfix_delivered.eml")

    def soft(i: int) -> str | None:
        r = post(client, secret_headers, about(delayed, rows[i]))
        assert r.status_code == 200, r.text
        return r.json()["outcomes"][0]["suppressed"]

    assert [soft(0), soft(1)] == [None, None]  # fewer than three messages so far
    assert post(client, secret_headers, about(delivered, rows[2], "ann@example.com")).status_code == 200
    assert [soft(3), soft(4)] == [None, None]  # the last three (4, 3, 2) include the delivered one
    assert soft(2) is None  # a late delay notice for 2: it was still delivered in the end
    assert suppressions(client, secret_headers) == []
    names = events(client, secret_headers, "cy")
    assert names.count("Message Deferred") == 5 and names.count("Message Delivered") == 1
    # A sixth message soft-bounces: the last three (5, 4, 3) all soft, none delivered: suppressed.
    newsletter(client, write_headers, "cy", 5)
    run(db, mail["settings"], start + timedelta(minutes=10))
    sixth = max(outbox(client, secret_headers), key=lambda m: m["sent_at"])
    r = post(client, secret_headers, about(delayed, sixth))
    assert r.json()["outcomes"][0]["suppressed"] == "all"
    reason = "3 soft bounces in a row, last: 4.4.1 connect to mx.example.com[198.51.100.7]:25: Connection timed out"
    assert suppressions(client, secret_headers) == [("cy@example.com", "all", reason)]


def test_a_delivery_notice_and_a_verp_address(client, db, write_headers, secret_headers, mail) -> None:
    signup(client, write_headers, "ann")
    run(db, mail["settings"])
    [row] = outbox(client, secret_headers)
    r = post(client, secret_headers, about(vector("postfix_delivered.eml"), row))
    assert r.json()["outcomes"][0] | {"diagnostic": None} == {
        "kind": "delivered", "recipient": "ann@example.com", "reported_recipient": "ann@example.com",
        "action": "relayed", "status": "2.0.0", "diagnostic": None, "applied": True, "event": "Message Delivered",
        "suppressed": None}  # fmt: skip
    assert events(client, secret_headers, "ann") == ["Message Delivered", "Message Sent"]
    # A bounce that returns no headers at all, delivered to the message's VERP bounce address.
    with db.read() as session:
        secret = workspace_service.signing_secret(session=session, configured=mail["settings"].secret)
    verp = reports.verp_address("bounces@rowan.example", row["id"], secret)
    bare = vector("gmail_hard.eml").replace(ORIGINAL.encode(), b"<elsewhere@example.org>")
    bare = bare.replace(b"Delivered-To: bounces@rowan.example", f"Delivered-To: {verp}".encode())
    r = post(client, secret_headers, bare)
    assert r.status_code == 200, r.text
    assert (r.json()["matched_by"], r.json()["outbox_id"]) == ("verp", row["id"])
    assert [(o["kind"], o["recipient"], o["reported_recipient"]) for o in r.json()["outcomes"]] == [
        ("hard_bounce", "ann@example.com", "dee@example.org")
    ]
    forged = bare.replace(f"+{row['id']}-".encode(), f"+{row['id'] + 1}-".encode())
    assert post(client, secret_headers, forged).json()["error"]["code"] == "report_message_not_found"


def test_another_workspace_and_bad_input(
    client,
    db,
    write_headers,
    secret_headers,
    mail,
    other_workspace,
) -> None:
    signup(client, write_headers, "bob")
    run(db, mail["settings"])
    [row] = outbox(client, secret_headers)
    other = bearer(other_workspace.secret_key)
    r = post(client, other, about(vector("postfix_hard.eml"), row))
    assert (r.status_code, r.json()["error"]["code"]) == (404, "report_message_not_found")
    assert suppressions(client, secret_headers) == [] and suppressions(client, other) == []
    assert events(client, secret_headers, "bob") == ["Message Sent"]

    r = post(client, secret_headers, b"\x00\x01 not mail at all")
    assert (r.status_code, r.json()["error"]["code"]) == (422, "not_an_email")
    quarantined = client.get(
        f"/v1/quarantine/{r.json()['error']['details']['quarantine_id']}", headers=secret_headers
    )
    assert (quarantined.json()["reason_code"], quarantined.json()["raw"]) == (
        "not_an_email",
        "\\u0000\x01 not mail at all",
    )
    # Two recipients, neither the message's: about some other message that reused the Message-ID.
    two = about(vector("postfix_hard.eml"), row).replace(b"bob@example.com", b"zed@example.com")
    two = two.replace(b"    User unknown in virtual mailbox table\n", b"    User unknown\n\n"
                      b"Final-Recipient: rfc822; yan@example.com\nAction: failed\nStatus: 5.1.1\n", 1)  # fmt: skip
    r = post(client, secret_headers, two)
    assert (r.status_code, r.json()["error"]["code"]) == (422, "malformed_report")
    assert (
        r.json()["error"]["message"]
        == "none of the report's recipients is the recipient of the message it names"
    )
    assert "quarantine_id" in r.json()["error"]["details"]
    r = post(client, secret_headers, vector("vacation.eml"))
    assert (r.status_code, r.json()["error"]["code"]) == (422, "not_a_report")
    r = client.post(
        "/v1/delivery/reports", headers={**secret_headers, "Content-Type": "application/json"}, content=b"{}"
    )
    assert (r.status_code, r.json()["error"]["code"]) == (415, "unsupported_media_type")
    r = post(client, secret_headers, b"Subject: x\n\n" + b"a" * (10 * 1024 * 1024))
    assert (r.status_code, r.json()["error"]["code"]) == (413, "body_too_large")
    r = client.post("/v1/delivery/reports", headers=RFC822, content=vector("postfix_hard.eml"))
    assert r.status_code == 401
    assert suppressions(client, secret_headers) == []


def test_the_cli_applies_a_maildir_and_moves_what_it_handled(
    client,
    db,
    write_headers,
    secret_headers,
    mail,
    tmp_path: Path,
    monkeypatch,
) -> None:
    signup(client, write_headers, "bob")
    run(db, mail["settings"])
    [row] = outbox(client, secret_headers)
    box = tmp_path / "Maildir"
    for sub in ("new", "cur", "tmp"):
        (box / sub).mkdir(parents=True)
    (box / "new" / "1.bounce.host").write_bytes(about(vector("postfix_hard.eml"), row))
    (box / "new" / "2.ooo.host").write_bytes(vector("vacation.eml"))
    (box / "new" / "3.unknown.host").write_bytes(vector("postfix_hard.eml"))
    (box / "tmp" / "4.partial.host").write_bytes(b"being written")

    @contextmanager
    def same_database(cfg: Any = None) -> Iterator[Any]:
        yield db  # the test's database (one rolled-back transaction) instead of a new engine

    monkeypatch.setattr(report_cmds, "database", same_database)
    result = CliRunner().invoke(cli_app, ["delivery", "reports", "--maildir", str(box), "--json"])
    assert result.exit_code == 0, result.output
    out = orjson.loads(result.output)
    assert [(Path(o["file"]).name, o["outcome"], o.get("code")) for o in out] == [
        ("1.bounce.host", "applied", None),
        ("2.ooo.host", "refused", "not_a_report"),
        ("3.unknown.host", "refused", "report_message_not_found"),
    ]
    assert out[0]["outcomes"][0]["suppressed"] == "all" and out[0]["outbox_id"] == row["id"]
    assert sorted(p.name for p in (box / "new").iterdir()) == []
    assert sorted(p.name for p in (box / "cur").iterdir()) == [
        "1.bounce.host:2,S",
        "2.ooo.host:2,FS",
        "3.unknown.host:2,FS",
    ]
    assert [p.name for p in (box / "tmp").iterdir()] == ["4.partial.host"]
    assert [s[:2] for s in suppressions(client, secret_headers)] == [("bob@example.com", "all")]
    # Run again: nothing left in new/; the file itself (FILE argument) applies once.
    again = CliRunner().invoke(cli_app, ["delivery", "reports", str(box / "cur" / "1.bounce.host:2,S")])
    assert again.exit_code == 0, again.output
    assert again.output.endswith("(already applied)\n")
    assert events(client, secret_headers, "bob") == ["Message Bounced", "Message Sent"]
