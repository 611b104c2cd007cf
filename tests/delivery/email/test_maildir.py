"""MaildirTransport (idempotent by Message-ID, list and get) and transport_for's choice from the settings."""

from __future__ import annotations

import mailbox
import os
import threading
from email.message import EmailMessage
from pathlib import Path

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa

from offerloop.config import Settings
from offerloop.core.errors import ValidationFailed
from offerloop.delivery.email.compose import build_message
from offerloop.delivery.email.exceptions import EmailConfigError, EmailNotFound
from offerloop.delivery.email.transport import (
    MaildirTransport,
    SendResult,
    SmtpTransport,
    envelope_sender,
    maildir_path_for,
    transport_for,
)

BOUNCE = "bounces@mail.rowanvale.example"


def message(n: int, subject: str = "Hello") -> EmailMessage:
    return build_message(
        sender="Rowan Vale <hello@rowanvale.example>",
        to=f"buyer{n}@example.com",
        subject=f"{subject} #{n}",
        text=f"Message {n}\n",
        html=f"<p>Message {n}</p>",
        message_id=f"<m{n}@mail.rowanvale.example>",
        unsubscribe_url=None,
        unsubscribe_mailto=None,
        web_version_url=None,
    )


def files(root: Path) -> list[str]:
    return sorted(p.name for sub in ("new", "cur", "tmp") for p in (root / sub).iterdir())


def test_same_message_id_twice_is_one_file(tmp_path: Path) -> None:
    transport = MaildirTransport(tmp_path / "maildir")
    key = MaildirTransport.key_for("<m1@mail.rowanvale.example>")
    first = transport.send(envelope_from=BOUNCE, to="buyer1@example.com", message=message(1))
    assert first == SendResult("sent", f"delivered to the Maildir as {key}", None)
    # Re-composed (new Date, new MIME boundary) but the same Message-ID: nothing more is stored.
    again = transport.send(envelope_from=BOUNCE, to="buyer1@example.com", message=message(1, "Changed"))
    assert again == SendResult("sent", f"already in the Maildir as {key} (same Message-ID)", None)
    assert files(tmp_path / "maildir") == [key]
    stored = transport.get(key)
    assert stored.email.subject == "Hello #1"
    assert stored.email.envelope_from == BOUNCE
    assert stored.raw.startswith(f"Return-Path: <{BOUNCE}>\r\nDelivered-To: buyer1@example.com\r\n".encode())
    # A standard Maildir reader sees exactly that one message.
    box = mailbox.Maildir(tmp_path / "maildir", create=False)
    assert [m["Message-ID"] for m in box] == ["<m1@mail.rowanvale.example>"]


def test_concurrent_sends_of_one_message_id_store_one_file(tmp_path: Path) -> None:
    transport = MaildirTransport(tmp_path)
    barrier = threading.Barrier(8)
    results: list[str] = []

    def send() -> None:
        barrier.wait(timeout=10)
        results.append(transport.send(envelope_from=BOUNCE, to="b@example.com", message=message(7)).status)

    threads = [threading.Thread(target=send) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=30)
    assert results == ["sent"] * 8
    assert files(tmp_path) == [MaildirTransport.key_for("<m7@mail.rowanvale.example>")]


def test_list_newest_first_with_a_cursor_and_get(tmp_path: Path) -> None:
    transport = MaildirTransport(tmp_path)
    for n in range(5):
        assert (
            transport.send(envelope_from=BOUNCE, to=f"buyer{n}@example.com", message=message(n)).status
            == "sent"
        )
        path = tmp_path / "new" / MaildirTransport.key_for(f"<m{n}@mail.rowanvale.example>")
        os.utime(path, ns=(1_800_000_000_000_000_000 + n * 1_000_000_000,) * 2)  # one second apart
    page = transport.list(limit=2)
    assert [e.subject for e in page] == ["Hello #4", "Hello #3"]
    assert [e.to for e in page] == ["buyer4@example.com", "buyer3@example.com"]
    assert page[0].message_id == "<m4@mail.rowanvale.example>"
    assert page[0].sender == "Rowan Vale <hello@rowanvale.example>"
    assert page[0].delivered_at.timestamp() == 1_800_000_004
    nxt = transport.list(limit=2, before=page[-1].key)
    assert [e.subject for e in nxt] == ["Hello #2", "Hello #1"]
    assert [e.subject for e in transport.list(limit=2, before=nxt[-1].key)] == ["Hello #0"]
    assert transport.list(limit=2, before=transport.list(limit=5)[-1].key) == []

    # A mail client read one: it moved to cur/ with flags, and is still listed and found.
    key = page[0].key
    os.rename(tmp_path / "new" / key, tmp_path / "cur" / f"{key}:2,S")
    assert [e.key for e in transport.list(limit=1)] == [key]
    got = transport.get(key).message()
    assert got["Subject"] == "Hello #4"
    assert got.get_body(("html",)).get_content().replace("\r\n", "\n") == "<p>Message 4</p>\n"  # type: ignore[union-attr]
    # ... and sending it again still stores nothing.
    assert transport.send(
        envelope_from=BOUNCE, to="buyer4@example.com", message=message(4)
    ).detail.startswith("already in the Maildir")
    assert len(files(tmp_path)) == 5


def test_bad_keys_and_limits(tmp_path: Path) -> None:
    transport = MaildirTransport(tmp_path)
    for key in ("../../etc/passwd", "0" * 32, "", "A" * 32, "new"):
        with pytest.raises(EmailNotFound):
            transport.get(key)
    with pytest.raises(EmailNotFound):
        transport.list(before="0" * 32)
    for limit in (0, 501, -1):
        with pytest.raises(ValidationFailed):
            transport.list(limit=limit)


def test_messages_the_maildir_refuses(tmp_path: Path) -> None:
    transport = MaildirTransport(tmp_path)
    bare = EmailMessage()
    bare["Subject"] = "no id"
    bare.set_content("x")
    assert transport.send(envelope_from=BOUNCE, to="b@example.com", message=bare) == SendResult(
        "permanent", "the message has no Message-ID", None
    )
    injected = transport.send(envelope_from="a@b.example\r\nX: y", to="b@example.com", message=message(1))
    assert injected.status == "permanent"
    assert files(tmp_path) == []


def test_unwritable_maildir_is_transient(tmp_path: Path) -> None:
    transport = MaildirTransport(tmp_path)
    (tmp_path / "tmp").rmdir()
    (tmp_path / "tmp").write_text("not a directory")
    result = transport.send(envelope_from=BOUNCE, to="b@example.com", message=message(1))
    assert result.status == "transient"
    assert result.detail.startswith("cannot write to the Maildir:")


def test_transport_for_picks_smtp_or_the_maildir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    smtp = transport_for(Settings(smtp_url="smtps://u:p@mx.example", smtp_timeout_s=3))
    assert isinstance(smtp, SmtpTransport)
    assert (smtp.host, smtp.port, smtp.security, smtp.timeout) == ("mx.example", 465, "tls", 3)

    db = tmp_path / "data" / "offerloop.db"
    assert maildir_path_for(Settings(database_url=f"sqlite:///{db}")) == tmp_path / "data" / "maildir"
    assert maildir_path_for(Settings(database_url="sqlite:///offerloop.db")) == Path("maildir")
    assert maildir_path_for(Settings(database_url="sqlite://")) == Path("maildir")
    assert maildir_path_for(Settings(database_url="postgresql+psycopg://u@h/db")) == Path("maildir")
    assert maildir_path_for(Settings(database_url=f"sqlite:///{db}", maildir_path="/srv/mail")) == Path(
        "/srv/mail"
    )
    maildir = transport_for(Settings(database_url=f"sqlite:///{db}"))
    assert isinstance(maildir, MaildirTransport)
    assert sorted(p.name for p in (tmp_path / "data" / "maildir").iterdir()) == ["cur", "new", "tmp"]
    assert maildir.signer is None


def test_settings_dkim_and_bounce(tmp_path: Path) -> None:
    key = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    path = tmp_path / "dkim.pem"
    path.write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )
    signed = transport_for(
        Settings(
            maildir_path=str(tmp_path / "m"),
            dkim_selector="s1",
            dkim_domain="rowanvale.example",
            dkim_private_key_path=str(path),
        )
    )
    assert signed.signer is not None and signed.signer.dns_name == "s1._domainkey.rowanvale.example"
    assert signed.send(envelope_from=BOUNCE, to="b@example.com", message=message(1)).status == "sent"
    raw = (tmp_path / "m" / "new" / MaildirTransport.key_for("<m1@mail.rowanvale.example>")).read_bytes()
    assert raw.split(b"\r\n")[2].startswith(b"DKIM-Signature: v=1; a=rsa-sha256;")
    with pytest.raises(EmailConfigError):
        transport_for(Settings(maildir_path=str(tmp_path / "m"), dkim_selector="s1"))

    assert envelope_sender(Settings()) == "no-reply@localhost"
    assert envelope_sender(Settings(bounce_address="Bounces <b@rowanvale.example>")) == "b@rowanvale.example"
