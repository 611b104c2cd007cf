"""Parsing what comes back to the bounce address: each vector in tests/delivery/email/reports/ read exactly
(recipient, action, status, diagnostic, the original's Message-ID), VERP tokens, and refusals with their code
for everything that is not a report — never an unexpected exception, whatever the bytes."""

from __future__ import annotations

import contextlib
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from offerloop.delivery.email import reports
from offerloop.delivery.email.reports import Recipient, Report, ReportRefused

VECTORS = Path(__file__).parent / "reports"
ORIGINAL = "<5d0c3e1f9a8b7c6d5e4f3a2b1c0d9e8f@rowan.example>"
BOUNCES = ("bounces@rowan.example",)


def vector(name: str) -> bytes:
    return (VECTORS / name).read_bytes()


EXPECTED = {
    "postfix_hard.eml": Report(
        format="dsn",
        recipients=(
            Recipient(
                kind="hard_bounce",
                address="bob@example.com",
                original="bob@example.com",
                action="failed",
                status="5.1.1",
                remote_mta="mx1.example.com",
                diagnostic="550 5.1.1 <bob@example.com>: Recipient address rejected: User unknown in virtual "
                "mailbox table",
            ),
        ),
        message_ids=(ORIGINAL,),
        verp=BOUNCES,
        reporter="mail.rowan.example",
    ),
    "postfix_delayed.eml": Report(
        format="dsn",
        recipients=(
            Recipient(
                kind="soft_bounce",
                address="cy@example.com",
                original="cy@example.com",
                action="delayed",
                status="4.4.1",
                diagnostic="connect to mx.example.com[198.51.100.7]:25: Connection timed out",
            ),
        ),
        message_ids=(ORIGINAL,),
        verp=BOUNCES,
        reporter="mail.rowan.example",
    ),
    "gmail_hard.eml": Report(
        format="dsn",
        recipients=(
            Recipient(
                kind="hard_bounce",
                address="dee@example.org",
                action="failed",
                status="5.1.1",
                remote_mta="gmail-smtp-in.l.google.com. (2001:db8::1b, the server for the domain example.org.)",
                diagnostic="550-5.1.1 The email account that you tried to reach does not exist. Please try "
                "550-5.1.1 double-checking the recipient's email address for typos or 550-5.1.1 unnecessary "
                "spaces. For more information, go to 550 5.1.1 https://support.google.com/mail/?p=NoSuchUser "
                "a1si1234567lfg.9 - gsmtp",
            ),
        ),
        message_ids=(ORIGINAL,),
        verp=BOUNCES,
        reporter="googlemail.com",
    ),
    "postfix_delivered.eml": Report(
        format="dsn",
        recipients=(
            Recipient(
                kind="delivered",
                address="ann@example.com",
                original="ann@example.com",
                action="relayed",
                status="2.0.0",
                diagnostic="250 2.0.0 Ok: queued as 9F1E2D3C4B",
                remote_mta="mx.example.com",
            ),
        ),
        message_ids=(ORIGINAL,),
        verp=BOUNCES,
        reporter="mail.rowan.example",
    ),
    "arf_abuse.eml": Report(
        format="arf",
        recipients=(
            Recipient(kind="complaint", address="eve@example.net", diagnostic="feedback-type abuse"),
        ),
        message_ids=(ORIGINAL,),
        verp=BOUNCES,
        reporter="ExampleFBL/2.1",
        feedback_type="abuse",
    ),
    "qmail_plain.eml": Report(
        format="plain",
        recipients=(
            Recipient(
                kind="hard_bounce",
                address="fay@example.com",
                action="failed",
                status="5.2.1",
                diagnostic="Remote host said: 550 5.2.1 The email account that you tried to reach is disabled.",
            ),
        ),
        message_ids=(ORIGINAL,),
        verp=BOUNCES,
        reporter="mailer-daemon@mx.example.com",
    ),
}


@pytest.mark.parametrize("name", sorted(EXPECTED))
def test_each_vector_is_read_exactly(name: str) -> None:
    assert reports.parse(vector(name)) == EXPECTED[name]


def test_every_vector_is_covered() -> None:
    assert sorted(p.name for p in VECTORS.glob("*.eml")) == sorted([*EXPECTED, "vacation.eml"])


def test_crlf_line_ends_read_the_same() -> None:
    raw = vector("postfix_hard.eml").replace(b"\n", b"\r\n")
    assert reports.parse(raw) == EXPECTED["postfix_hard.eml"]


def test_a_failed_recipient_with_a_transient_status_is_a_soft_bounce() -> None:
    # Postfix gives up after the queue lifetime with the last 4.x.x it saw: not a statement about the address.
    raw = vector("postfix_delayed.eml").replace(b"Action: delayed", b"Action: failed")
    [recipient] = reports.parse(raw).recipients
    assert (recipient.kind, recipient.action, recipient.status) == ("soft_bounce", "failed", "4.4.1")


@pytest.mark.parametrize(
    ("raw", "code", "message"),
    [
        (b"", "not_an_email", "this is not an e-mail message (no From, Date, Subject or Content-Type header)"),
        (b"\x00\xff\xfe garbage \x80", "not_an_email",
         "this is not an e-mail message (no From, Date, Subject or Content-Type header)"),
        (b"From: Ann <ann@example.com>\nSubject: hello\n\nthanks for the mail 5.1.1", "not_a_report",
         "neither a delivery-status nor a feedback report, nor a recognisable bounce"),
        (vector("vacation.eml"), "not_a_report",
         "an automatic reply (out of office or similar), not a delivery report"),
        (b"From: MAILER-DAEMON@mx.example.com\nSubject: failure notice\n\nsomething went wrong", "not_a_report",
         "a bounce with no x.y.z status code in its text: it is not applied"),
        (vector("postfix_hard.eml").replace(b"Content-Type: message/delivery-status", b"Content-Type: text/plain"),
         "malformed_report", "a delivery-status report without its message/delivery-status part"),
        (vector("postfix_hard.eml").replace(b"Final-Recipient: rfc822; bob@example.com\n", b""),
         "malformed_report", "a recipient block without a Final-Recipient"),
        (vector("postfix_hard.eml").replace(b"Action: failed", b"Action: vanished").replace(b"Status: 5.1.1", b"Status: 9.9.9"),
         "malformed_report", "a recipient with action 'vanished' and status None means nothing known"),
        (vector("arf_abuse.eml").replace(b"Feedback-Type: abuse", b"Feedback-Type: not-spam"), "not_a_report",
         "a not-spam feedback report: nothing to suppress"),
        (vector("arf_abuse.eml").replace(b"Feedback-Type: abuse\n", b""), "malformed_report",
         "a feedback report without its Feedback-Type"),
        (b"Subject: x\n\n" + b"a" * reports.MAX_REPORT_BYTES, "report_too_large",
         f"the message is {reports.MAX_REPORT_BYTES + 12} bytes; a report is at most {reports.MAX_REPORT_BYTES}"),
    ],
)  # fmt: skip
def test_what_is_not_a_report_is_refused_with_its_code(raw: bytes, code: str, message: str) -> None:
    with pytest.raises(ReportRefused) as refused:
        reports.parse(raw)
    assert (refused.value.code, refused.value.message) == (code, message)
    assert refused.value.status_code == (413 if code == "report_too_large" else 422)


def test_a_verp_address_names_its_message_and_cannot_be_forged() -> None:
    address = reports.verp_address("bounces@rowan.example", 4711, "s3cret-of-this-server")
    local, domain = address.split("@")
    assert domain == "rowan.example" and local.startswith("bounces+4711-") and len(local) <= 64
    assert reports.verp_outbox_id((address,), "s3cret-of-this-server") == 4711
    assert reports.verp_outbox_id((address.upper(),), "s3cret-of-this-server") == 4711  # a case-folding hop
    assert reports.verp_outbox_id((address,), "another-server-secret") is None
    forged = address.replace("bounces+4711-", "bounces+4712-")
    assert reports.verp_outbox_id((forged, "bounces@rowan.example"), "s3cret-of-this-server") is None
    assert reports.verp_address("", 1, "s") == ""  # the null sender stays null


def test_a_report_delivered_to_a_verp_address_carries_it() -> None:
    address = reports.verp_address("bounces@rowan.example", 12, "k" * 32)
    raw = vector("postfix_hard.eml").replace(
        b"Delivered-To: bounces@rowan.example", f"Delivered-To: {address}".encode()
    )
    assert reports.parse(raw).verp == (address, "bounces@rowan.example")


@given(st.binary(max_size=2000))
def test_no_bytes_make_the_parser_fail_otherwise(raw: bytes) -> None:
    with contextlib.suppress(ReportRefused):
        reports.parse(raw)


@given(
    st.integers(min_value=0, max_value=len(vector("postfix_hard.eml"))), st.binary(min_size=1, max_size=40)
)
def test_a_damaged_report_is_read_or_refused(at: int, noise: bytes) -> None:
    raw = vector("postfix_hard.eml")
    with contextlib.suppress(ReportRefused):
        reports.parse(raw[:at] + noise + raw[at:])


DSN_HEAD = (
    b"From: MAILER-DAEMON@mx.example.com\nSubject: failure notice\n"
    b"Content-Type: multipart/report; report-type=delivery-status; boundary=X\n\n"
    b"--X\nContent-Type: message/delivery-status\n\nReporting-MTA: dns; x\n\n"
)
NESTED = b"".join(b"--b%d\nContent-Type: multipart/mixed; boundary=b%d\n\n" % (i, i + 1) for i in range(3000))


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (b"Subject: x\nContent-Type: multipart/mixed; boundary=b0\n\n" + NESTED,
         "more than 200 Content-Type fields: not a report"),
        (DSN_HEAD + b"Final-Recipient: rfc822; a@b.example\nAction: failed\nStatus: 5.1.1\n\n" * 101,
         "more than 100 Final-Recipient fields: not a report"),
        (DSN_HEAD + b"X-Note: rfc822; a@b.example\nAction: failed\n\n" * 3000,
         "more than 5000 header fields: not a report"),
        (DSN_HEAD + b"\n \n" * 600_000, "more than 40000 lines or 5000 blank lines: not a report"),
        (DSN_HEAD + b"\n \n" * 2600, "more than 40000 lines or 5000 blank lines: not a report"),
    ],
)  # fmt: skip
def test_what_only_costs_time_to_read_is_refused_before_parsing(raw: bytes, message: str) -> None:
    # The stdlib parser needs seconds to a minute for these (hundreds of thousands of blank-line blocks).
    with pytest.raises(ReportRefused) as refused:
        reports.parse(raw)
    assert (refused.value.code, refused.value.message) == ("malformed_report", message)
