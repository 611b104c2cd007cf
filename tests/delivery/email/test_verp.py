"""VERP, on by default with a bounce address: each message's envelope sender (as a real SMTP server on loopback
receives it in MAIL FROM) carries its outbox id, signed; a DSN delivered to that address suppresses the
recipient; a forged one — naming only the Message-ID, or a VERP token with a wrong signature — is refused
(422 report_not_signed), quarantined, and suppresses nothing, over HTTP and through the CLI's Maildir."""

from __future__ import annotations

import email
import re
from collections.abc import Iterator
from contextlib import contextmanager
from email import policy
from pathlib import Path
from typing import Any

import orjson
from tests.delivery.email import test_journey_mail as journey_mail
from tests.delivery.email.test_journey_mail import outbox, run, signup
from tests.delivery.email.test_reports_apply import about, events, post, suppressions
from tests.delivery.email.test_reports_parse import ORIGINAL, vector
from typer.testing import CliRunner

from offerloop.cli import reports as report_cmds
from offerloop.cli.main import app as cli_app
from offerloop.config import Settings
from offerloop.delivery.email import reports
from offerloop.workspaces import service as workspace_service

mail = journey_mail.mail  # an SMTP server on loopback; bounce address bounces@rowan.example


def returned(box: dict[str, Any], row: dict[str, Any]) -> bytes:
    """A Gmail-style DSN about the message as the server received it: delivered to its envelope sender,
    with the original's headers (its Return-Path) returned."""
    [got] = [m for m in box["server"].recorder.messages if row["recipient"] in m.rcpt_tos]
    original = email.message_from_bytes(got.data, policy=policy.compat32)
    raw = vector("gmail_hard.eml").replace(b"dee@example.org", row["recipient"].encode())
    raw = raw.replace(ORIGINAL.encode(), str(original["Message-ID"]).encode())
    raw = raw.replace(b"Delivered-To: bounces@rowan.example", f"Delivered-To: {got.mail_from}".encode())
    return raw.replace(b"Return-Path: <bounces@rowan.example>", f"Return-Path: <{got.mail_from}>".encode())


def test_verp_is_on_by_default_with_a_bounce_address() -> None:
    assert Settings(environment="test").verp_enabled is False  # no bounce address: the null case
    assert Settings(environment="test", bounce_address="b@example.com").verp_enabled is True
    assert Settings(environment="test", bounce_address="b@example.com", smtp_verp=False).verp_enabled is False
    assert Settings(environment="test", smtp_verp=True).verp_enabled is True


def test_mail_from_carries_the_signed_outbox_id_and_its_dsn_suppresses(
    client, db, write_headers, secret_headers, mail
) -> None:
    signup(client, write_headers, "ann")
    run(db, mail["settings"])
    [row] = outbox(client, secret_headers)
    [got] = mail["server"].recorder.messages
    with db.read() as session:
        secret = workspace_service.signing_secret(session=session, configured=mail["settings"].secret)
    assert got.mail_from == reports.verp_address("bounces@rowan.example", row["id"], secret)
    assert re.fullmatch(rf"bounces\+{row['id']}-[0-9a-f]{{20}}@rowan\.example", got.mail_from)

    r = post(client, secret_headers, returned(mail, row))
    assert r.status_code == 200, r.text
    assert (r.json()["matched_by"], r.json()["outbox_id"]) == ("verp", row["id"])
    assert [(o["kind"], o["suppressed"], o["applied"]) for o in r.json()["outcomes"]] == [
        ("hard_bounce", "all", True)
    ]
    [(address, scope, reason)] = suppressions(client, secret_headers)
    assert (address, scope) == ("ann@example.com", "all") and reason.startswith("hard bounce: 5.1.1 ")
    assert events(client, secret_headers, "ann") == ["Message Bounced", "Message Sent"]


def test_a_forged_bounce_naming_only_the_message_id_suppresses_nothing(
    client, db, write_headers, secret_headers, mail
) -> None:
    signup(client, write_headers, "bob")
    run(db, mail["settings"])
    [row] = outbox(client, secret_headers)
    # Anyone who received the message knows its Message-ID: a DSN to the plain bounce address naming it.
    forged = about(vector("postfix_hard.eml"), row)
    r = post(client, secret_headers, forged)
    assert (r.status_code, r.json()["error"]["code"]) == (422, "report_not_signed")
    assert r.json()["error"]["details"]["message_ids"] == [row["message_id"]]
    quarantined = client.get(
        f"/v1/quarantine/{r.json()['error']['details']['quarantine_id']}", headers=secret_headers
    )
    assert quarantined.json()["reason_code"] == "report_not_signed"
    # A VERP address with this message's id and a made-up signature, or another message's signature.
    genuine = returned(mail, row)
    token = re.search(rb"\+\d+-([0-9a-f]{20})@", genuine)
    assert token is not None
    for wrong in (b"0" * 20, b"f" * 20):
        r = post(client, secret_headers, genuine.replace(token.group(1), wrong))
        assert (r.status_code, r.json()["error"]["code"]) == (422, "report_not_signed")
    moved = genuine.replace(f"+{row['id']}-".encode(), f"+{row['id'] + 1}-".encode())
    assert post(client, secret_headers, moved).json()["error"]["code"] == "report_not_signed"
    assert suppressions(client, secret_headers) == []
    assert events(client, secret_headers, "bob") == ["Message Sent"]
    # The buyer's next message still goes.
    assert client.get("/v1/delivery/suppressions", headers=secret_headers).json()["items"] == []


def test_the_cli_flags_an_unsigned_report_and_applies_a_signed_one(
    client, db, write_headers, secret_headers, mail, tmp_path: Path, monkeypatch
) -> None:
    signup(client, write_headers, "cy")
    run(db, mail["settings"])
    [row] = outbox(client, secret_headers)
    box = tmp_path / "Maildir"
    for sub in ("new", "cur", "tmp"):
        (box / sub).mkdir(parents=True)
    (box / "new" / "1.forged.host").write_bytes(about(vector("postfix_hard.eml"), row))
    (box / "new" / "2.signed.host").write_bytes(returned(mail, row))

    @contextmanager
    def same_database(cfg: Any = None) -> Iterator[Any]:
        yield db

    monkeypatch.setattr(report_cmds, "database", same_database)
    monkeypatch.setenv("OFFERLOOP_BOUNCE_ADDRESS", "bounces@rowan.example")
    monkeypatch.setenv("OFFERLOOP_SECRET", mail["settings"].secret)
    result = CliRunner().invoke(cli_app, ["delivery", "reports", "--maildir", str(box), "--json"])
    assert result.exit_code == 0, result.output
    out = orjson.loads(result.output)
    assert [(Path(o["file"]).name, o["outcome"], o.get("code")) for o in out] == [
        ("1.forged.host", "refused", "report_not_signed"),
        ("2.signed.host", "applied", None),
    ]
    assert sorted(p.name for p in (box / "cur").iterdir()) == ["1.forged.host:2,FS", "2.signed.host:2,S"]
    assert [s[:2] for s in suppressions(client, secret_headers)] == [("cy@example.com", "all")]
