"""One outgoing e-mail as RFC 5322 bytes: text and HTML alternatives, a stable Message-ID, one-click
unsubscribe (RFC 2369 / RFC 8058), and a size limit under Gmail's clipping point.

The HTML is the caller's rendered output and is passed through as it is: nothing in it is executed or
fetched here.
"""

from __future__ import annotations

import functools
import html as html_lib
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from email.headerregistry import Address
from email.message import EmailMessage
from email.policy import EmailPolicy
from email.utils import format_datetime
from types import MappingProxyType
from typing import Any
from urllib.parse import urlsplit

from offerloop.core.clock import utcnow
from offerloop.delivery.email.exceptions import EmailTooLarge, InvalidEmail

# Gmail clips a message past 102 KB; the limit leaves room for a DKIM signature and trace headers.
MAX_MESSAGE_BYTES = 100 * 1024
# RFC 5322 2.1.1: a line is at most 998 characters; a header that cannot fold must fit on one.
_MAX_LINE = 998
_FOLD_AT = 78
_MAX_URI = 900

_MESSAGE_ID = re.compile(r"<[!#-;=?-~]+@[!#-;=?-~]+>")  # printable ASCII but "<", ">", "@" and space
_FIELD_NAME = re.compile(r"[!-9;-~]+")  # RFC 5322 ftext: printable ASCII except ":"
_URI_FORBIDDEN = re.compile(r"[\x00-\x20<>\"\x7f]")

# Headers build_message writes itself; extra headers may not replace or repeat them.
RESERVED_HEADERS = frozenset(
    name.lower()
    for name in (
        "From", "To", "Cc", "Bcc", "Subject", "Date", "Message-ID", "MIME-Version", "Reply-To", "Sender",
        "Content-Type", "Content-Transfer-Encoding", "Content-Disposition", "List-Unsubscribe",
        "List-Unsubscribe-Post", "DKIM-Signature", "Return-Path", "Received",
    )
)  # fmt: skip

ONE_CLICK = "List-Unsubscribe=One-Click"


class _Policy(EmailPolicy):
    """policy.SMTP, except that an ASCII header the stock folder would turn into RFC 2047 encoded-words
    (a long URL or Message-ID with no space to fold at) is written as it is, folded at its spaces: an
    encoded ``List-Unsubscribe`` URL is no URL to a mail client."""

    def fold(self, name: str, value: str) -> str:
        if _one_line(name, value):
            return f"{name}: {value}{self.linesep}"
        folded: str = super().fold(name, value)
        if "=?" in folded and "=?" not in str(value) and str(value).isascii():
            return _fold_plain(name, str(value), self.linesep)
        return folded

    def fold_binary(self, name: str, value: str) -> bytes:
        if _one_line(name, value):
            return f"{name}: {value}{self.linesep}".encode("ascii")
        folded = super().fold_binary(name, value)
        if b"=?" in folded and "=?" not in str(value) and str(value).isascii():
            return _fold_plain(name, str(value), self.linesep).encode("ascii")
        return folded


# 7bit: non-ASCII bodies go quoted-printable or base64, so no hop needs 8BITMIME.
POLICY = _Policy(linesep="\r\n", cte_type="7bit")


def _one_line(name: str, value: str) -> bool:
    """A short printable-ASCII header needs no folding or encoding: written as it is, it is what the stock
    folder writes, without its cost (most of a message's serialisation)."""
    text = str(value)
    return (
        len(name) + 2 + len(text) <= _FOLD_AT and text.isascii() and text.isprintable() and "=?" not in text
    )


def _fold_plain(name: str, value: str, linesep: str) -> str:
    lines: list[str] = []
    line = f"{name}:"
    for word in value.split(" "):
        if len(line) + 1 + len(word) > _FOLD_AT and line.strip() and not line.endswith(":"):
            lines.append(line)
            line = ""
        line += " " + word
    lines.append(line)
    return linesep.join(lines) + linesep


def encoded_size(message: EmailMessage) -> int:
    """Bytes of the message as it goes on the wire (CRLF line ends)."""
    return len(message.as_bytes(policy=POLICY))


def build_message(
    *,
    sender: str,
    to: str,
    subject: str,
    text: str,
    html: str | None,
    message_id: str,
    unsubscribe_url: str | None,
    unsubscribe_mailto: str | None,
    web_version_url: str | None,
    reply_to: str | None = None,
    headers: Mapping[str, str] = MappingProxyType({}),
    date: datetime | None = None,
) -> EmailMessage:
    """The message: multipart/alternative (text, then HTML) or text only when ``html`` is None.

    ``message_id`` is written exactly as given (``<id@domain>``). Over ``MAX_MESSAGE_BYTES`` encoded, the
    HTML is replaced by a short one linking to ``web_version_url`` (and, if still too large, the text
    too); without a web version that is an ``EmailTooLarge`` error. Malformed input is ``InvalidEmail``.
    """
    top: dict[str, Any] = {
        "From": _address("From", sender),
        "To": _address("To", to),
        "Subject": _plain("Subject", subject),
        "Date": format_datetime((date or utcnow()).astimezone(UTC)),
        "Message-ID": _message_id(message_id),
        "MIME-Version": "1.0",
    }
    if reply_to is not None:
        top["Reply-To"] = _address("Reply-To", reply_to)
    top.update(unsubscribe_headers(unsubscribe_url, unsubscribe_mailto))
    for name, value in headers.items():
        if not _FIELD_NAME.fullmatch(name) or name.lower() in RESERVED_HEADERS:
            raise InvalidEmail(f"header {name!r} cannot be set by the caller", details={"header": name})
        top[name] = _plain(name, value)

    message = _assemble(top, text, html)
    if _surely_fits(top, text, html) or encoded_size(message) <= MAX_MESSAGE_BYTES:
        return message
    if web_version_url is None:
        raise EmailTooLarge(
            f"the message is over {MAX_MESSAGE_BYTES} bytes encoded and has no web version to link to",
            details={"bytes": encoded_size(message), "limit": MAX_MESSAGE_BYTES},
        )
    link = _uri("web_version_url", web_version_url, schemes=("https", "http"))
    short_html = web_version_html(link)
    for body in (text, web_version_text(link)):
        message = _assemble(top, body, short_html)
        if encoded_size(message) <= MAX_MESSAGE_BYTES:
            return message
    raise EmailTooLarge(
        "the message's headers alone are over the size limit",
        details={"bytes": encoded_size(message), "limit": MAX_MESSAGE_BYTES},
    )


def _surely_fits(top: Mapping[str, Any], text: str, html: str | None) -> bool:
    """An upper bound of the encoded size is under the limit, so serialising to measure can be skipped:
    every byte of a body or header at most 4 bytes encoded (quoted-printable is 3 and a soft break per
    76), plus room for the MIME boundaries and part headers."""
    content = len(text.encode()) + len((html or "").encode())
    headers = sum(len(name) + len(str(value).encode()) + 4 for name, value in top.items())
    return 4 * (content + headers) + 2048 <= MAX_MESSAGE_BYTES


def web_version_text(url: str) -> str:
    return f"This message is too long to show here in full.\n\nRead it online: {url}\n"


def web_version_html(url: str) -> str:
    href = html_lib.escape(url, quote=True)
    return (
        "<!doctype html><html><body><p>This message is too long to show here in full.</p>"
        f'<p><a href="{href}">Read it online</a></p></body></html>\n'
    )


def unsubscribe_headers(url: str | None, mailto: str | None) -> dict[str, str]:
    """``List-Unsubscribe`` (RFC 2369: the URL first, then the mailto) and, only when an http(s) URL is
    there, ``List-Unsubscribe-Post: List-Unsubscribe=One-Click`` (RFC 8058; receivers honour it only on a
    DKIM-signed message whose signature covers both headers)."""
    uris: list[str] = []
    if url is not None:
        uris.append(_uri("unsubscribe_url", url, schemes=("https", "http")))
    if mailto is not None:
        uris.append(_uri("unsubscribe_mailto", mailto, schemes=("mailto",)))
    if not uris:
        return {}
    out = {"List-Unsubscribe": ", ".join(f"<{uri}>" for uri in uris)}
    if url is not None:
        out["List-Unsubscribe-Post"] = ONE_CLICK
    return out


def _assemble(top: Mapping[str, Any], text: str, html: str | None) -> EmailMessage:
    message = EmailMessage(policy=POLICY)
    for name, value in top.items():
        message[name] = value
    message.set_content(text, charset="utf-8")
    if html is not None:
        message.add_alternative(html, subtype="html", charset="utf-8")
        for part in message.iter_parts():
            del part["MIME-Version"]  # only the top level carries it (RFC 2045 4)
    return message


def _plain(name: str, value: str) -> str:
    if "\r" in value or "\n" in value or "\x00" in value:
        raise InvalidEmail(f"{name} may not contain line breaks", details={"header": name})
    if value.isascii() and len(name) + 2 + max(map(len, value.split(" ")), default=0) > _MAX_LINE:
        raise InvalidEmail(f"{name} has a word too long for one header line", details={"header": name})
    return value


def _message_id(value: str) -> str:
    if not _MESSAGE_ID.fullmatch(value) or len(value) > _MAX_LINE - len("Message-ID: "):
        raise InvalidEmail(
            "message_id must look like <unique@domain> in printable ASCII", details={"message_id": value}
        )
    return value


def mailbox_problem(value: str) -> str | None:
    """Why ``value`` cannot be a From header (one mailbox, printable, no line breaks), or None."""
    try:
        _address("sender", value)
    except InvalidEmail as exc:
        return exc.message
    return None


def mailbox_domain(value: str) -> str:
    """The domain of one mailbox (``Name <user@Example.COM>`` -> ``example.com``), in IDNA form; InvalidEmail."""
    return _address("sender", value).domain.lower().rstrip(".")


def mailbox_name(value: str) -> str:
    """The display name of one mailbox (``Name <user@example.com>`` -> ``Name``); InvalidEmail."""
    return str(_address("sender", value).display_name or "")


def _address(name: str, value: str) -> Address:
    """One mailbox, its domain in IDNA (punycode) form; a non-ASCII local part would need SMTPUTF8."""
    _plain(name, value)
    parsed = POLICY.header_factory("To", value)  # parsed as an address header whatever its name
    addresses: tuple[Address, ...] = tuple(getattr(parsed, "addresses", ()))
    if len(addresses) != 1 or parsed.defects or not addresses[0].username or not addresses[0].domain:
        raise InvalidEmail(
            f"{name} must be one address like 'Name <user@example.com>'", details={name: value}
        )
    address = addresses[0]
    if not address.username.isascii():
        raise InvalidEmail(
            f"{name} has a non-ASCII local part, which needs SMTPUTF8 (not supported)", details={name: value}
        )
    try:
        domain = address.domain.encode("idna").decode("ascii")
    except UnicodeError as exc:
        raise InvalidEmail(f"{name} has an invalid domain", details={name: value}) from exc
    return Address(display_name=address.display_name, username=address.username, domain=domain)


def _uri(name: str, value: str, *, schemes: tuple[str, ...]) -> str:
    scheme = urlsplit(value).scheme.lower() if ":" in value else ""
    ok = scheme in schemes and (scheme == "mailto" or bool(urlsplit(value).netloc))
    if not ok or _URI_FORBIDDEN.search(value) or not value.isascii() or len(value) > _MAX_URI:
        raise InvalidEmail(
            f"{name} must be an absolute {' or '.join(schemes)} URI in ASCII (percent-encoded), "
            f"without spaces, quotes or angle brackets, at most {_MAX_URI} characters",
            details={name: value},
        )
    return value


@functools.lru_cache(maxsize=4096)  # a worker parses the same bounce address for every message
def envelope_address(value: str) -> str:
    """An SMTP envelope address (``MAIL FROM`` / ``RCPT TO``) as a bare ASCII addr-spec, its domain in
    IDNA form; ``""`` is the null sender. ``Name <user@host>`` is accepted and reduced to the address."""
    if value == "":
        return ""
    address = _address("envelope address", value)
    return address.addr_spec
