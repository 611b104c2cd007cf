"""SmtpTransport against a real SMTP server on loopback: plain, STARTTLS, implicit TLS, AUTH, refusals,
a server that is down or silent, and connection reuse across sends and threads."""

from __future__ import annotations

import email
import email.policy
import socket
import threading
from email.message import EmailMessage
from pathlib import Path
from typing import Any

import dkim
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ed25519
from tests.delivery.email.smtpd import PASSWORD, USER, Certificate, Recorder, ServerFactory, authenticator

from offerloop.delivery.email.compose import build_message
from offerloop.delivery.email.dkim import DkimSigner
from offerloop.delivery.email.exceptions import EmailConfigError
from offerloop.delivery.email.transport import SendResult, SmtpTransport

BOUNCE = "bounces+k1@mail.rowanvale.example"


def message(n: int = 1, to: str = "ada@example.com") -> EmailMessage:
    return build_message(
        sender="Rowan Vale <hello@rowanvale.example>",
        to=f"Ada <{to}>",
        subject=f"Grüße #{n}",
        text=f"Hello {n} ✓\n",
        html=f"<p>Hello {n} ✓</p>\n",
        message_id=f"<k{n}@mail.rowanvale.example>",
        unsubscribe_url=f"https://offers.rowanvale.example/u/{n}",
        unsubscribe_mailto="mailto:unsubscribe@rowanvale.example",
        web_version_url=None,
    )


def parsed(data: bytes) -> EmailMessage:
    got = email.message_from_bytes(data.replace(b"\r\n", b"\n"), policy=email.policy.default)
    assert isinstance(got, EmailMessage)
    return got


def send(transport: SmtpTransport, n: int = 1, to: str = "ada@example.com") -> SendResult:
    return transport.send(envelope_from=BOUNCE, to=to, message=message(n, to))


def test_plain_delivery_with_exact_headers_parts_and_envelope(smtp_server: ServerFactory) -> None:
    server = smtp_server()
    with SmtpTransport.from_url(f"smtp://127.0.0.1:{server.port}") as transport:
        result = send(transport)
    assert result == SendResult("sent", "250 2.0.0 Message accepted (DATA)", 250)
    [received] = server.recorder.messages
    assert received.mail_from == BOUNCE  # the envelope sender is the bounce address, not the From
    assert received.rcpt_tos == ["ada@example.com"]
    assert received.tls is False
    got = parsed(received.data)
    assert got["From"] == "Rowan Vale <hello@rowanvale.example>"
    assert got["To"] == "Ada <ada@example.com>"
    assert got["Subject"] == "Grüße #1"
    assert got["Message-ID"] == "<k1@mail.rowanvale.example>"
    assert got["MIME-Version"] == "1.0"
    assert got["List-Unsubscribe"] == (
        "<https://offers.rowanvale.example/u/1>, <mailto:unsubscribe@rowanvale.example>"
    )
    assert got["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    text, html = got.iter_parts()
    assert text.get_content().replace("\r\n", "\n") == "Hello 1 ✓\n"
    assert html.get_content().replace("\r\n", "\n") == "<p>Hello 1 ✓</p>\n"


def test_dkim_signed_message_verifies_as_received(smtp_server: ServerFactory) -> None:
    server = smtp_server()
    key = ed25519.Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    signer = DkimSigner.from_pem(key, selector="s1", domain="rowanvale.example")
    with SmtpTransport.from_url(f"smtp://127.0.0.1:{server.port}", signer=signer) as transport:
        assert send(transport).status == "sent"
    [received] = server.recorder.messages
    assert received.data.startswith(b"DKIM-Signature: v=1; a=ed25519-sha256;")

    def lookup(name: bytes, timeout: float = 5) -> bytes:
        assert name == b"s1._domainkey.rowanvale.example."
        return signer.dns_record().encode()

    assert dkim.verify(received.data, dnsfunc=lookup)
    assert parsed(received.data)["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"


def test_starttls_with_a_self_signed_certificate(
    smtp_server: ServerFactory, certificate: Certificate
) -> None:
    server = smtp_server(tls_context=certificate.server_context(), require_starttls=True)
    url = f"smtp://127.0.0.1:{server.port}?starttls=true"
    with SmtpTransport.from_url(url, ca_file=str(certificate.cert_file)) as transport:
        assert send(transport).status == "sent"
    assert [m.tls for m in server.recorder.messages] == [True]
    # Without trusting the certificate the connection is refused, and nothing is delivered.
    with SmtpTransport.from_url(url) as transport:
        result = send(transport, 2)
    assert result.status == "transient"
    assert "CERTIFICATE_VERIFY_FAILED" in result.detail
    # A plain client to a server that requires STARTTLS is refused with 530.
    with SmtpTransport.from_url(f"smtp://127.0.0.1:{server.port}") as transport:
        refused = send(transport, 3)
    assert (refused.status, refused.smtp_code) == ("permanent", 530)
    assert len(server.recorder.messages) == 1


def test_starttls_required_but_not_offered_is_not_sent_in_clear(smtp_server: ServerFactory) -> None:
    server = smtp_server()
    with SmtpTransport.from_url(f"smtp://127.0.0.1:{server.port}?starttls=true") as transport:
        result = send(transport)
    assert result == SendResult("transient", "the server does not offer STARTTLS", None)
    assert server.recorder.messages == []


def test_implicit_tls(smtp_server: ServerFactory, certificate: Certificate) -> None:
    server = smtp_server(ssl_context=certificate.server_context())
    url = f"smtps://127.0.0.1:{server.port}"
    with SmtpTransport.from_url(url, ca_file=str(certificate.cert_file)) as transport:
        assert send(transport).status == "sent"
        assert send(transport, 2).status == "sent"
    assert [m.tls for m in server.recorder.messages] == [True, True]
    assert [parsed(m.data)["Message-ID"] for m in server.recorder.messages] == [
        "<k1@mail.rowanvale.example>",
        "<k2@mail.rowanvale.example>",
    ]


@pytest.mark.parametrize("only", ["LOGIN", "PLAIN"])
def test_auth_required(smtp_server: ServerFactory, certificate: Certificate, only: str) -> None:
    other = "PLAIN" if only == "LOGIN" else "LOGIN"
    server = smtp_server(
        tls_context=certificate.server_context(),
        require_starttls=True,
        auth_required=True,
        authenticator=authenticator,
        auth_exclude_mechanism=[other],
    )
    user = USER.replace("@", "%40")
    password = PASSWORD.replace("%", "%25").replace(":", "%3A").replace("@", "%40").replace("/", "%2F")
    good = f"smtp://{user}:{password}@127.0.0.1:{server.port}?starttls=true"
    with SmtpTransport.from_url(good, ca_file=str(certificate.cert_file)) as transport:
        assert send(transport).status == "sent"
        assert PASSWORD not in repr(transport) and password not in repr(transport)
        assert repr(transport) == f"SmtpTransport('smtp://{USER}:***@127.0.0.1:{server.port}?starttls=true')"
    assert [m.login for m in server.recorder.messages] == [USER.encode()]

    wrong = f"smtp://{USER}:wrong@127.0.0.1:{server.port}?starttls=true"
    with SmtpTransport.from_url(wrong, ca_file=str(certificate.cert_file)) as transport:
        result = send(transport, 2)
    assert (result.status, result.smtp_code) == ("permanent", 535)
    assert "wrong" not in result.detail and PASSWORD not in result.detail

    with SmtpTransport.from_url(
        f"smtp://127.0.0.1:{server.port}?starttls=true", ca_file=str(certificate.cert_file)
    ) as t:
        anonymous = send(t, 3)
    assert (anonymous.status, anonymous.smtp_code) == ("permanent", 530)
    assert len(server.recorder.messages) == 1


def test_auth_over_plain_connection_when_the_server_allows_it(smtp_server: ServerFactory) -> None:
    # Offered, not required (aiosmtpd warns about requiring AUTH without TLS, rightly).
    server = smtp_server(auth_require_tls=False, authenticator=authenticator)
    transport = SmtpTransport(host="127.0.0.1", port=server.port, username=USER, password=PASSWORD)
    with transport:
        assert send(transport).status == "sent"
    assert [m.login for m in server.recorder.messages] == [USER.encode()]


@pytest.mark.parametrize(
    ("where", "reply", "status", "code", "stage"),
    [
        ("rcpt", "451 4.3.0 Try again later", "transient", 451, "RCPT TO"),
        ("rcpt", "550 5.1.1 User unknown", "permanent", 550, "RCPT TO"),
        ("rcpt", "452 4.2.2 Mailbox full", "transient", 452, "RCPT TO"),
        ("data", "552 5.3.4 Message too big", "permanent", 552, "DATA"),
        ("data", "554 5.7.1 Rejected as spam", "permanent", 554, "DATA"),
        ("data", "451 4.7.1 Greylisted", "transient", 451, "DATA"),
    ],
)
def test_refusals_are_classified_and_the_connection_stays_usable(
    smtp_server: ServerFactory, where: str, reply: str, status: str, code: int, stage: str
) -> None:
    recorder = Recorder()
    if where == "rcpt":
        recorder.rcpt_replies["nobody@example.com"] = reply
    else:
        recorder.data_reply = reply
    server = smtp_server(recorder)
    with SmtpTransport.from_url(f"smtp://127.0.0.1:{server.port}") as transport:
        result = send(transport, 1, to="nobody@example.com")
        assert result == SendResult(status, f"{reply} ({stage})", code)  # type: ignore[arg-type]
        recorder.data_reply = None
        assert send(transport, 2).status == "sent"  # the same connection, after RSET
    assert [m.rcpt_tos for m in recorder.messages] == [["ada@example.com"]]


def test_server_down_is_transient() -> None:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with SmtpTransport.from_url(f"smtp://127.0.0.1:{port}", timeout=2) as transport:
        result = send(transport)
    assert result.status == "transient"
    assert result.smtp_code is None
    assert result.detail.startswith("cannot connect: ConnectionRefusedError")


def test_silent_server_times_out_as_transient() -> None:
    with socket.socket() as listener:
        listener.bind(("127.0.0.1", 0))
        listener.listen(1)  # accepts the TCP connection (backlog) but never greets
        port = listener.getsockname()[1]
        with SmtpTransport.from_url(f"smtp://127.0.0.1:{port}", timeout=0.3) as transport:
            result = send(transport)
    assert result.status == "transient"
    assert result.detail.startswith("cannot connect: ")
    assert result.detail.endswith("timed out")


def test_reconnects_when_the_server_dropped_the_connection(smtp_server: ServerFactory) -> None:
    first = smtp_server()
    with SmtpTransport.from_url(f"smtp://127.0.0.1:{first.port}") as transport:
        assert send(transport, 1).status == "sent"
        first.stop()  # closes the connection the transport keeps
        second = smtp_server(port=first.port)
        assert send(transport, 2).status == "sent"
        assert send(transport, 3).status == "sent"
    assert [parsed(m.data)["Message-ID"] for m in first.recorder.messages] == ["<k1@mail.rowanvale.example>"]
    assert [parsed(m.data)["Message-ID"] for m in second.recorder.messages] == [
        "<k2@mail.rowanvale.example>",
        "<k3@mail.rowanvale.example>",
    ]
    assert len({m.peer for m in second.recorder.messages}) == 1  # one new connection, reused


def test_one_connection_per_thread_reused_across_sends(smtp_server: ServerFactory) -> None:
    server = smtp_server()
    results: dict[int, list[str]] = {0: [], 1: []}
    start = threading.Barrier(2)
    with SmtpTransport.from_url(f"smtp://127.0.0.1:{server.port}") as transport:

        def worker(w: int) -> None:
            start.wait(timeout=10)
            for n in range(25):
                results[w].append(send(transport, w * 100 + n).status)

        threads = [threading.Thread(target=worker, args=(w,)) for w in (0, 1)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(timeout=60)
    assert results == {0: ["sent"] * 25, 1: ["sent"] * 25}
    messages = server.recorder.messages
    assert len(messages) == 50
    assert len({m.peer for m in messages}) == 2  # two connections: one per thread, each reused
    ids = sorted(parsed(m.data)["Message-ID"] for m in messages)
    assert ids == sorted(f"<k{w * 100 + n}@mail.rowanvale.example>" for w in (0, 1) for n in range(25))


def test_invalid_envelope_addresses_are_permanent_without_a_connection() -> None:
    transport = SmtpTransport.from_url("smtp://127.0.0.1:9")  # nothing listens: never reached
    for envelope_from, to in [
        (BOUNCE, "ada@example.com>\r\nRCPT TO:<x@y>"),
        ("a\r\nb@c", "ada@example.com"),
        (BOUNCE, ""),
    ]:
        result = transport.send(envelope_from=envelope_from, to=to, message=message())
        assert result.status == "permanent"
        assert result.detail.startswith("invalid envelope address:")
    transport.close()


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("smtp://mx.example", ("mx.example", 25, "none", None)),
        ("smtp://u%40x:p%3Aw@mx.example:587?starttls=true", ("mx.example", 587, "starttls", "u@x")),
        ("smtps://mx.example", ("mx.example", 465, "tls", None)),
        ("smtp://[::1]:2525", ("::1", 2525, "none", None)),
    ],
)
def test_from_url(url: str, expected: tuple[Any, ...]) -> None:
    transport = SmtpTransport.from_url(url)
    assert (transport.host, transport.port, transport.security, transport.username) == expected


@pytest.mark.parametrize(
    "url",
    [
        "http://mx.example",
        "smtp://",
        "smtp://mx.example:99999",
        "smtp://mx.example?starttls=maybe",
        "smtp://mx.example?tls=true",
        "smtps://mx.example?starttls=true",
    ],
)
def test_bad_urls_are_config_errors(url: str) -> None:
    with pytest.raises(EmailConfigError):
        SmtpTransport.from_url(url)


def test_password_never_in_repr_or_settings_repr(tmp_path: Path) -> None:
    from offerloop.config import Settings

    settings = Settings(smtp_url="smtp://mailer:hunter2-secret@mx.example:587?starttls=true")
    assert "hunter2-secret" not in repr(settings)
    transport = SmtpTransport.from_url(settings.smtp_url or "")
    assert "hunter2-secret" not in repr(transport)
    assert "hunter2-secret" not in str(vars(transport).get("username"))


def test_lines_starting_with_a_dot_arrive_whole(smtp_server: ServerFactory) -> None:
    server = smtp_server()
    text = "line one\n.\n..two dots\n.hidden\nend\n"
    composed = build_message(
        sender="hello@rowanvale.example",
        to="ada@example.com",
        subject="dots",
        text=text,
        html=None,
        message_id="<dots@mail.rowanvale.example>",
        unsubscribe_url=None,
        unsubscribe_mailto=None,
        web_version_url=None,
    )
    with SmtpTransport.from_url(f"smtp://127.0.0.1:{server.port}") as transport:
        assert transport.send(envelope_from=BOUNCE, to="ada@example.com", message=composed).status == "sent"
    [received] = server.recorder.messages
    assert parsed(received.data).get_content() == text
