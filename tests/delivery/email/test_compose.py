"""build_message: the bytes on the wire, parsed back with the stdlib, header by header and part by part."""

from __future__ import annotations

import email
import email.policy
from datetime import UTC, datetime
from email.message import EmailMessage
from typing import Any

import pytest

from offerloop.delivery.email.compose import (
    MAX_MESSAGE_BYTES,
    build_message,
    encoded_size,
    envelope_address,
)
from offerloop.delivery.email.exceptions import EmailTooLarge, InvalidEmail

WHEN = datetime(2026, 3, 29, 1, 30, 5, tzinfo=UTC)


def compose(**overrides: Any) -> EmailMessage:
    fields: dict[str, Any] = {
        "sender": "Rowan Vale <hello@rowanvale.example>",
        "to": "Ada Buyer <ada@example.com>",
        "subject": "Your workbook is ready",
        "text": "Hi Ada,\nyour workbook is ready.\n",
        "html": "<p>Hi Ada,<br>your workbook is <b>ready</b>.</p>\n",
        "message_id": "<3f2a9c@mail.rowanvale.example>",
        "unsubscribe_url": "https://offers.rowanvale.example/u/tok123",
        "unsubscribe_mailto": "mailto:unsubscribe@rowanvale.example?subject=tok123",
        "web_version_url": None,
        "date": WHEN,
    }
    fields.update(overrides)
    return build_message(**fields)


def parse(message: EmailMessage) -> EmailMessage:
    wire = message.as_bytes()
    assert b"\r\n" in wire and b"\n" not in wire.replace(b"\r\n", b"")  # CRLF everywhere, nothing bare
    assert wire.isascii()  # 7-bit: no hop needs 8BITMIME
    # Read back as a local delivery agent stores it: with the local line ends.
    parsed = email.message_from_bytes(wire.replace(b"\r\n", b"\n"), policy=email.policy.default)
    assert isinstance(parsed, EmailMessage)
    return parsed


def test_multipart_alternative_with_exact_headers_and_both_parts() -> None:
    got = parse(compose())
    assert got["From"] == "Rowan Vale <hello@rowanvale.example>"
    assert got["To"] == "Ada Buyer <ada@example.com>"
    assert got["Subject"] == "Your workbook is ready"
    assert got["Date"] == "Sun, 29 Mar 2026 01:30:05 +0000"
    assert got["Message-ID"] == "<3f2a9c@mail.rowanvale.example>"
    assert got["MIME-Version"] == "1.0"
    assert got["List-Unsubscribe"] == (
        "<https://offers.rowanvale.example/u/tok123>, <mailto:unsubscribe@rowanvale.example?subject=tok123>"
    )
    assert got["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"
    assert got.get_content_type() == "multipart/alternative"
    parts = list(got.iter_parts())
    assert [part.get_content_type() for part in parts] == ["text/plain", "text/html"]
    assert parts[0].get_content() == "Hi Ada,\nyour workbook is ready.\n"
    assert parts[1].get_content() == "<p>Hi Ada,<br>your workbook is <b>ready</b>.</p>\n"
    assert [part.get_content_charset() for part in parts] == ["utf-8", "utf-8"]
    assert all(part["MIME-Version"] is None for part in parts)
    assert got["Reply-To"] is None


def test_text_only_when_there_is_no_html() -> None:
    got = parse(compose(html=None))
    assert got.get_content_type() == "text/plain"
    assert got.get_content() == "Hi Ada,\nyour workbook is ready.\n"


def test_utf8_subject_display_names_and_idn_domains_are_encoded_and_read_back() -> None:
    message = compose(
        sender="Zoë Café <zoe@bücher.example>",
        to="Jürgen Groß <juergen@example.com>",
        subject="Grüße — ton cahier est prêt ✓",
        text="Grüße ✓\n",
        html="<p>Grüße ✓</p>",
        reply_to="Équipe <team@rowanvale.example>",
    )
    wire = message.as_bytes()
    assert b"Subject: =?utf-8?" in wire
    assert b"<zoe@xn--bcher-kva.example>" in wire
    got = parse(message)
    assert got["Subject"] == "Grüße — ton cahier est prêt ✓"
    assert got["From"] == "Zoë Café <zoe@xn--bcher-kva.example>"
    assert got["To"] == "Jürgen Groß <juergen@example.com>"
    assert got["Reply-To"] == "Équipe <team@rowanvale.example>"
    text, html = got.iter_parts()
    assert text["Content-Transfer-Encoding"] in ("quoted-printable", "base64")
    # base64 carries canonical CRLF line ends, which a mail reader shows as line ends.
    assert text.get_content().replace("\r\n", "\n") == "Grüße ✓\n"
    assert html.get_content().replace("\r\n", "\n") == "<p>Grüße ✓</p>\n"


def test_long_unsubscribe_url_stays_a_url_folded_only_between_uris() -> None:
    url = "https://offers.rowanvale.example/unsubscribe/" + "t" * 300
    wire = compose(unsubscribe_url=url).as_bytes()
    assert f"List-Unsubscribe: <{url}>,\r\n <mailto:".encode() in wire
    assert b"=?" not in wire.split(b"\r\n\r\n", 1)[0]
    assert parse(compose(unsubscribe_url=url))["List-Unsubscribe"].startswith(f"<{url}>, <mailto:")


@pytest.mark.parametrize(
    ("url", "mailto", "expected", "one_click"),
    [
        ("https://x.example/u/1", None, "<https://x.example/u/1>", True),
        ("http://127.0.0.1:8000/u/1", None, "<http://127.0.0.1:8000/u/1>", True),
        (None, "mailto:u@x.example", "<mailto:u@x.example>", False),
        (None, None, None, False),
    ],
)
def test_one_click_post_only_with_an_http_url(
    url: str | None, mailto: str | None, expected: str | None, one_click: bool
) -> None:
    got = parse(compose(unsubscribe_url=url, unsubscribe_mailto=mailto))
    assert got["List-Unsubscribe"] == expected
    assert got["List-Unsubscribe-Post"] == ("List-Unsubscribe=One-Click" if one_click else None)


def test_message_id_is_exactly_the_given_one_and_extra_headers_pass_through() -> None:
    long_id = "<" + "k" * 120 + "@mail.rowanvale.example>"
    message = compose(message_id=long_id, headers={"X-Offerloop-Journey": "onboarding/v3"})
    wire = message.as_bytes()
    assert f"\r\nMessage-ID: {long_id}\r\n".encode() in wire
    got = parse(message)
    assert got["Message-ID"] == long_id
    assert got["X-Offerloop-Journey"] == "onboarding/v3"


@pytest.mark.parametrize(
    "overrides",
    [
        {"subject": "Hi\r\nBcc: victim@example.com"},
        {"to": "ada@example.com\r\nBcc: victim@example.com"},
        {"to": "ada@example.com, bob@example.com"},
        {"to": "not an address"},
        {"to": "josé@example.com"},
        {"sender": ""},
        {"message_id": "3f2a9c@mail.rowanvale.example"},
        {"message_id": "<no-at-sign>"},
        {"message_id": "<a b@c>"},
        {"unsubscribe_url": "javascript:alert(1)"},
        {"unsubscribe_url": "https://x.example/u?a=<b>"},
        {"unsubscribe_url": "https://x.example/u 1"},
        {"unsubscribe_url": "/relative/u"},
        {"unsubscribe_mailto": "https://x.example/u"},
        {"headers": {"Bcc": "victim@example.com"}},
        {"headers": {"message-id": "<other@x>"}},
        {"headers": {"Bad Name": "x"}},
        {"headers": {"X-Note": "a\nb"}},
    ],
)
def test_bad_input_is_a_clear_error(overrides: dict[str, Any]) -> None:
    with pytest.raises(InvalidEmail) as caught:
        compose(**overrides)
    assert caught.value.status_code == 422
    assert caught.value.code == "email_invalid"


def _html_of_size(n: int) -> str:
    """ASCII HTML in short lines, so it is sent 7bit and each character adds exactly one byte."""
    lines, left = [], n
    while left > 0:
        chunk = min(left, 70)
        lines.append("x" * (chunk - 1) + "\n")
        left -= chunk
    return "".join(lines)


def _full_size(n: int) -> int:
    """The encoded size of the message with all of its HTML, whether or not that fits."""
    try:
        return encoded_size(compose(html=_html_of_size(n)))
    except EmailTooLarge as too_large:
        size: int = too_large.details["bytes"]
        return size


def test_size_limit_at_the_edge() -> None:
    base = _full_size(1000)
    fits = 1000 + MAX_MESSAGE_BYTES - base
    # A character is a byte, but each line's LF goes out as CRLF: one byte more per 70 characters.
    at_limit = fits - fits // 70
    while _full_size(at_limit + 1) <= MAX_MESSAGE_BYTES:
        at_limit += 1
    while _full_size(at_limit) > MAX_MESSAGE_BYTES:
        at_limit -= 1

    edge = compose(html=_html_of_size(at_limit), web_version_url="https://x.example/w/1")
    assert encoded_size(edge) <= MAX_MESSAGE_BYTES
    assert encoded_size(edge) > MAX_MESSAGE_BYTES - 3  # a CRLF at most from the limit
    assert list(parse(edge).iter_parts())[1].get_content() == _html_of_size(at_limit)

    over = parse(compose(html=_html_of_size(at_limit + 1), web_version_url="https://x.example/w/1?a=1&b=2"))
    text, html = over.iter_parts()
    assert text.get_content() == "Hi Ada,\nyour workbook is ready.\n"  # the text fits: kept whole
    assert html.get_content() == (
        "<!doctype html><html><body><p>This message is too long to show here in full.</p>"
        '<p><a href="https://x.example/w/1?a=1&amp;b=2">Read it online</a></p></body></html>\n'
    )
    assert over["Message-ID"] == "<3f2a9c@mail.rowanvale.example>"
    assert over["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"

    with pytest.raises(EmailTooLarge) as caught:
        compose(html=_html_of_size(at_limit + 1))
    assert caught.value.code == "email_too_large"
    assert caught.value.details["limit"] == MAX_MESSAGE_BYTES


def test_text_over_the_limit_is_replaced_too() -> None:
    big = "word " * 30_000
    got = parse(compose(text=big, html=big, web_version_url="https://x.example/w/1"))
    text, html = got.iter_parts()
    assert text.get_content() == (
        "This message is too long to show here in full.\n\nRead it online: https://x.example/w/1\n"
    )
    assert 'href="https://x.example/w/1"' in html.get_content()
    with pytest.raises(InvalidEmail):
        compose(text=big, html=None, web_version_url="ftp://x.example/w/1")


def test_envelope_addresses_are_bare_ascii() -> None:
    assert envelope_address("Bounces <bounce+42@rowanvale.example>") == "bounce+42@rowanvale.example"
    assert envelope_address("b@bücher.example") == "b@xn--bcher-kva.example"
    assert envelope_address("") == ""
    for bad in ("a@b\r\nRCPT TO:<x@y>", "x", "a@b, c@d"):
        with pytest.raises(InvalidEmail):
            envelope_address(bad)


@pytest.mark.parametrize("unit", ["=", "é", "€", "😀", "\n", "\t=\n", "a" * 200 + "\n", "\x00\x01"])
def test_the_size_shortcut_never_lets_an_oversized_message_through(unit: str) -> None:
    """build_message skips measuring when an upper bound fits; adversarial bodies right at that bound
    (quoted-printable's worst case, 4-byte UTF-8, bare line ends) still encode under the limit."""
    from offerloop.delivery.email.compose import _surely_fits

    subject = "Grüße " * 20
    n = 1
    while _surely_fits({"Subject": subject}, unit * (n * 2), unit * (n * 2)):
        n *= 2
    while _surely_fits({"Subject": subject}, unit * (n + 1), unit * (n + 1)):
        n += max(1, n // 64)
    body = unit * n
    message = compose(subject=subject, text=body, html=body)
    assert encoded_size(message) <= MAX_MESSAGE_BYTES
    text, _ = parse(message).iter_parts()
    assert text.get_content().replace("\r\n", "\n").rstrip("\n") == body.rstrip(
        "\n"
    )  # whole: the shortcut only ever keeps a message as it is


@pytest.mark.parametrize(
    "overrides",
    [
        {},
        {"html": None, "unsubscribe_url": None, "unsubscribe_mailto": None},
        {"subject": "Grüße — ton cahier est prêt ✓ " * 3, "sender": "Zoë Café <zoe@bücher.example>"},
        {"subject": "a =?utf-8?q?trap?= in plain sight", "headers": {"X-Tab": "a\tb"}},
        {
            "reply_to": "A very long display name that will not fit on one line at all <team@rowanvale.example>"
        },
    ],
)
def test_serialised_exactly_as_the_stock_smtp_policy_writes_it(overrides: dict[str, Any]) -> None:
    """The policy's shortcuts (short ASCII headers written as they are) change no byte, only the cost;
    it departs from the stock folder only where that would encode a long URL (tested above)."""
    message = compose(**overrides)
    assert message.as_bytes() == message.as_bytes(policy=email.policy.SMTP.clone(cte_type="7bit"))
