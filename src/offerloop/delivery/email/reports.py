"""Reading the mail that comes back to the bounce address: delivery status notifications (RFC 3464,
``multipart/report; report-type=delivery-status``), complaint reports (ARF, RFC 5965,
``report-type=feedback-report``) and, minimally, the plain-text bounces some servers still send
("failure notice", "Undelivered Mail Returned to Sender" with an ``x.y.z`` status in the text).

Parsing is pure (the stdlib ``email`` package, nothing stored): :func:`parse` turns raw RFC 5322 bytes into a
:class:`Report` — what happened to which recipient, and how to find the message it is about (the original's
``Message-ID`` in the returned message or headers, and a VERP bounce address carrying the outbox id, signed).
Anything else is refused with :class:`ReportRefused` and a stable code.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from dataclasses import dataclass
from email import policy
from email.message import Message
from email.parser import BytesParser, HeaderParser
from email.utils import getaddresses
from typing import Final, Literal

from offerloop.core.errors import ValidationFailed

# A report is small: the notice, the status fields and the returned message (ours are under 100 KB).
MAX_REPORT_BYTES: Final = 2 * 1024 * 1024

Kind = Literal["hard_bounce", "soft_bounce", "delivered", "complaint"]
Format = Literal["dsn", "arf", "plain"]


class ReportRefused(ValidationFailed):
    """Mail at the bounce address that is not a report this server can apply (the code says why)."""

    code = "not_a_report"


class NotAnEmail(ReportRefused):
    code = "not_an_email"


class MalformedReport(ReportRefused):
    """A report of a known kind that lacks what its RFC requires (status fields, recipients, ...)."""

    code = "malformed_report"


class ReportTooLarge(ReportRefused):
    status_code = 413
    code = "report_too_large"


@dataclass(frozen=True)
class Recipient:
    """One recipient's fate. ``address`` is None when a plain-text bounce does not name it."""

    kind: Kind
    address: str | None
    original: str | None = None  # DSN Original-Recipient (before forwarding/aliasing)
    action: str | None = None  # failed | delayed | delivered | relayed | expanded
    status: str | None = None  # the enhanced status code, x.y.z
    diagnostic: str | None = None  # Diagnostic-Code without its type, or the failure line of a plain bounce
    remote_mta: str | None = None


@dataclass(frozen=True)
class Report:
    format: Format
    recipients: tuple[Recipient, ...]
    message_ids: tuple[str, ...]  # the original's Message-ID (and any other found), best first
    verp: tuple[str, ...]  # addresses the report was delivered to that may carry a VERP token
    reporter: str | None = None  # Reporting-MTA, or the ARF User-Agent
    feedback_type: str | None = None  # ARF: abuse, fraud, virus, other, not-spam


# -- VERP --------------------------------------------------------------------------------------------------

_VERP: Final = re.compile(r"\+(\d{1,19})-([0-9a-f]{20})@", re.IGNORECASE)


def _verp_mac(secret: str, outbox_id: int) -> str:
    # Hex, not base64: some servers lower-case local parts, and 20 hex digits keep the local part under 64.
    return hmac.new(secret.encode(), f"delivery-verp.{outbox_id}".encode(), hashlib.sha256).hexdigest()[:20]


def verp_address(bounce_address: str, outbox_id: int, secret: str) -> str:
    """The envelope sender for one message: ``local+<outbox id>-<mac>@domain`` (``""`` stays the null
    sender). A report delivered to it names its message even when it returns no headers at all."""
    if "@" not in bounce_address:
        return bounce_address
    local, domain = bounce_address.rsplit("@", 1)
    return f"{local}+{outbox_id}-{_verp_mac(secret, outbox_id)}@{domain}"


def verp_outbox_id(addresses: tuple[str, ...], secret: str) -> int | None:
    """The outbox id of the first address carrying a valid VERP token (a forged or foreign one is ignored)."""
    for address in addresses:
        for found in _VERP.finditer(address + "@" if "@" not in address else address):
            outbox_id, mac = int(found.group(1)), found.group(2).lower()
            if outbox_id < 2**63 and hmac.compare_digest(mac, _verp_mac(secret, outbox_id)):
                return outbox_id
    return None


# -- parsing -----------------------------------------------------------------------------------------------

_STATUS: Final = re.compile(r"^\s*([245])\.(\d{1,3})\.(\d{1,3})\b")
_STATUS_IN_TEXT: Final = re.compile(r"(?<![\d.])([45])\.(\d{1,3})\.(\d{1,3})(?![\d.])")
_MESSAGE_ID_LINE: Final = re.compile(r"^\s*Message-ID:\s*(<[^<>\s]{1,250}>)", re.IGNORECASE | re.MULTILINE)
_MESSAGE_ID: Final = re.compile(r"<[^<>\s@]{1,200}@[^<>\s@]{1,200}>")
_ADDRESS: Final = re.compile(
    r"<?([A-Za-z0-9.!#$%&'*+/=?^_`{|}~-]{1,64}@[A-Za-z0-9.-]{1,253}\.[A-Za-z]{2,63})>?"
)
_BOUNCE_SENDERS: Final = ("mailer-daemon", "postmaster", "mail-daemon", "mailerdaemon")
_BOUNCE_SUBJECT: Final = re.compile(
    r"undeliver|returned mail|delivery status notification|delivery (?:has )?fail|mail delivery failed"
    r"|failure notice|non-?delivery|could not be delivered|delivery problem",
    re.IGNORECASE,
)
# A real report has a few parts and recipients; thousands only cost time to read (checked before parsing).
_MOST: Final = {"Content-Type": 200, "Final-Recipient": 100}
_ANY_FIELD: Final = re.compile(rb"(?m)^[!-9;-~]{1,80}:")
_MOST_FIELDS: Final = 5000
_BLANK_LINE: Final = re.compile(rb"(?m)^[ \t]*\r?$")
_MOST_LINES: Final = 40_000
_MOST_BLANK_LINES: Final = 5_000
_MAX_FIELD: Final = 4000  # characters of a field value that are read (an address is at most 320)
_DELIVERED: Final = frozenset({"delivered", "relayed", "expanded"})
# Headers of the report itself naming where it was delivered: the VERP address, if there is one.
_DELIVERED_TO: Final = ("Delivered-To", "X-Original-To", "Envelope-To", "X-Envelope-To", "To")


def parse(raw: bytes) -> Report:
    """The report in ``raw``; :class:`ReportRefused` (code ``not_an_email``, ``not_a_report`` or
    ``malformed_report``) for anything else."""
    if len(raw) > MAX_REPORT_BYTES:
        raise ReportTooLarge(f"the message is {len(raw)} bytes; a report is at most {MAX_REPORT_BYTES}")  # fmt: skip
    for field, most in _MOST.items():
        if len(re.findall(rb"(?im)^" + field.encode() + rb":", raw)) > most:
            raise MalformedReport(f"more than {most} {field} fields: not a report")
    if len(_ANY_FIELD.findall(raw)) > _MOST_FIELDS:
        raise MalformedReport(f"more than {_MOST_FIELDS} header fields: not a report")
    # The stdlib parser slows down more than linearly on very many lines and blank-line blocks.
    if raw.count(b"\n") > _MOST_LINES or len(_BLANK_LINE.findall(raw)) > _MOST_BLANK_LINES:
        raise MalformedReport(
            f"more than {_MOST_LINES} lines or {_MOST_BLANK_LINES} blank lines: not a report"
        )
    try:
        message = BytesParser(policy=policy.compat32).parsebytes(raw)
        return _parse(message)
    except ReportRefused:
        raise
    except RecursionError as exc:
        raise MalformedReport("the message nests its parts too deeply") from exc
    except (ValueError, LookupError, TypeError, AttributeError, IndexError) as exc:
        # The stdlib parser is lenient but its accessors are not, on hostile input: refuse, never crash.
        raise MalformedReport(f"the message cannot be read: {exc}"[:300]) from exc


def _parse(message: Message) -> Report:
    if not message.keys() or not any(message.get(h) for h in ("From", "Date", "Subject", "Content-Type")):
        raise NotAnEmail("this is not an e-mail message (no From, Date, Subject or Content-Type header)")  # fmt: skip
    verp = _delivered_to(message)
    ctype = message.get_content_type()
    param = message.get_param("report-type") if ctype == "multipart/report" else None
    # an RFC 2231 parameter comes as (charset, language, value)
    report_type = str(param[2] if isinstance(param, tuple) else param or "").lower()
    if report_type == "delivery-status":
        return _dsn(message, verp)
    if report_type == "feedback-report":
        return _arf(message, verp)
    return _plain(message, verp)


def _delivered_to(message: Message) -> tuple[str, ...]:
    values = [str(v) for name in _DELIVERED_TO for v in (message.get_all(name) or [])]
    return tuple(dict.fromkeys(a.lower() for _, a in getaddresses(values) if "@" in a))


def _unique(values: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(dict.fromkeys(values))


def _part(message: Message, *types: str) -> Message | None:
    for part in message.walk():
        if part.get_content_type() in types and part is not message:
            return part
    return None


def _fields(part: Message) -> list[Message]:
    """The field blocks of a message/delivery-status or message/feedback-report part."""
    payload = part.get_payload()
    if isinstance(payload, list) and all(isinstance(p, Message) for p in payload):
        blocks: list[Message] = [p for p in payload if isinstance(p, Message)]
    else:  # some servers encode the part (base64) or the parser did not split it: read the text
        text = _text(part)
        blocks = [
            HeaderParser(policy=policy.compat32).parsestr(b.strip() + "\n")
            for b in re.split(r"\n\s*\n", text)
        ]
    return [b for b in blocks if b.keys()]


def _text(part: Message) -> str:
    payload = part.get_payload(decode=True)
    if isinstance(payload, bytes):
        charset = part.get_content_charset() or "utf-8"
        try:
            return payload.decode(charset, "replace")
        except LookupError:  # an unknown charset name
            return payload.decode("utf-8", "replace")
    inner = part.get_payload()
    if isinstance(inner, list):
        return "\n".join(str(p) for p in inner)
    return str(inner or "")


def _value(block: Message, name: str) -> str | None:
    value = block.get(name)
    if value is None:
        return None
    text = " ".join(str(value)[:_MAX_FIELD].split())
    return text or None


def _typed(value: str | None) -> str | None:
    """``rfc822; user@example.com`` -> ``user@example.com`` (an address-type or diagnostic-type prefix)."""
    if value is None:
        return None
    head, sep, rest = value.partition(";")
    text = rest.strip() if sep and " " not in head.strip() else value.strip()
    return text or None


def _address(value: str | None) -> str | None:
    text = _typed(value)
    if text is None:
        return None
    found = _ADDRESS.search(text)
    return found.group(1).lower() if found else None


def _original_ids(message: Message) -> tuple[str, ...]:
    """Message-IDs of the returned original: in a message/rfc822 or text/rfc822-headers part, else quoted in
    the text (a plain bounce with the original below a line)."""
    found: list[str] = []
    for part in message.walk():
        ctype = part.get_content_type()
        if ctype == "message/rfc822" and part is not message:
            inner = part.get_payload()
            first = inner[0] if isinstance(inner, list) and inner else None
            if isinstance(first, Message):
                found += _MESSAGE_ID.findall(str(first.get("Message-ID") or ""))
        elif ctype == "text/rfc822-headers":
            found += _MESSAGE_ID.findall(str(HeaderParser().parsestr(_text(part)).get("Message-ID") or ""))
    for part in message.walk():
        if part.get_content_maintype() == "text" and part.get_content_type() != "text/html":
            found += _MESSAGE_ID_LINE.findall(_text(part))
    return tuple(dict.fromkeys(found))


def _inner_senders(message: Message) -> tuple[str, ...]:
    """Return-Path / envelope sender fields inside the report (where a VERP address also shows)."""
    values: list[str] = []
    for part in message.walk():
        ctype = part.get_content_type()
        if ctype == "message/rfc822" and part is not message:
            inner = part.get_payload()
            if isinstance(inner, list) and inner and isinstance(inner[0], Message):
                values += [str(v) for v in inner[0].get_all("Return-Path") or []]
        elif ctype == "text/rfc822-headers":
            values += [str(v) for v in HeaderParser().parsestr(_text(part)).get_all("Return-Path") or []]
    return tuple(a.lower() for _, a in getaddresses(values) if "@" in a)


def _kind(action: str | None, status: str | None) -> Kind:
    klass = status[0] if status else None
    if action in _DELIVERED or (action is None and klass == "2"):
        return "delivered"
    if action == "failed" and klass == "5":
        return "hard_bounce"
    if action in ("failed", "delayed") and klass in ("4", "5"):
        return "soft_bounce"  # a delayed 5.x.x is still being retried: not final
    if action is None and klass in ("4", "5"):
        return "hard_bounce" if klass == "5" else "soft_bounce"
    raise MalformedReport(f"a recipient with action {action!r} and status {status!r} means nothing known")  # fmt: skip


def _status(value: str | None) -> str | None:
    if value is None:
        return None
    found = _STATUS.match(value)
    return ".".join(found.groups()) if found else None


def _dsn(message: Message, verp: tuple[str, ...]) -> Report:
    part = _part(message, "message/delivery-status", "message/global-delivery-status")
    if part is None:
        raise MalformedReport("a delivery-status report without its message/delivery-status part")  # fmt: skip
    blocks = _fields(part)
    if len(blocks) < 2:
        raise MalformedReport("a delivery-status report with no per-recipient fields")
    per_message, recipients = blocks[0], []
    for block in blocks[1:]:
        action = (_value(block, "Action") or "").lower() or None
        status = _status(_value(block, "Status"))
        final = _address(_value(block, "Final-Recipient"))
        if final is None and action is None and status is None:
            continue  # a block of extension fields only
        if final is None:
            raise MalformedReport("a recipient block without a Final-Recipient")
        recipients.append(Recipient(
            kind=_kind(action, status), address=final, original=_address(_value(block, "Original-Recipient")),
            action=action, status=status, diagnostic=_typed(_value(block, "Diagnostic-Code")),
            remote_mta=_typed(_value(block, "Remote-MTA")),
        ))  # fmt: skip
    if not recipients:
        raise MalformedReport("a delivery-status report with no recipient")
    ids = _original_ids(message) + tuple(
        _MESSAGE_ID.findall(_value(per_message, "X-Original-Message-ID") or "")
    )
    return Report(format="dsn", recipients=tuple(recipients), message_ids=tuple(dict.fromkeys(ids)),
                  verp=_unique(verp + _inner_senders(message)), reporter=_typed(_value(per_message, "Reporting-MTA")))  # fmt: skip


def _arf(message: Message, verp: tuple[str, ...]) -> Report:
    part = _part(message, "message/feedback-report")
    blocks = _fields(part) if part is not None else []
    if not blocks or _value(blocks[0], "Feedback-Type") is None:
        raise MalformedReport("a feedback report without its Feedback-Type")
    fields = blocks[0]
    feedback_type = (_value(fields, "Feedback-Type") or "").lower()
    if feedback_type == "not-spam":
        raise ReportRefused("a not-spam feedback report: nothing to suppress")
    mail_from = _address(_value(fields, "Original-Mail-From"))
    recipient = Recipient(kind="complaint", address=_address(_value(fields, "Original-Rcpt-To")),
                          diagnostic=f"feedback-type {feedback_type}")  # fmt: skip
    return Report(format="arf", recipients=(recipient,), message_ids=_original_ids(message),
                  verp=_unique(verp + ((mail_from,) if mail_from else ()) + _inner_senders(message)),
                  reporter=_value(fields, "User-Agent"), feedback_type=feedback_type)  # fmt: skip


def _plain(message: Message, verp: tuple[str, ...]) -> Report:
    sender = (" ".join(a for _, a in getaddresses([str(message.get("From") or "")]))).lower()
    subject = str(message.get("Subject") or "")
    failed_header = message.get("X-Failed-Recipients")
    if not (any(s in sender for s in _BOUNCE_SENDERS) or _BOUNCE_SUBJECT.search(subject) or failed_header):
        if str(message.get("Auto-Submitted") or "").strip().lower().startswith("auto-replied"):
            raise ReportRefused("an automatic reply (out of office or similar), not a delivery report")
        raise ReportRefused("neither a delivery-status nor a feedback report, nor a recognisable bounce")
    text = "\n".join(
        _text(p) for p in message.walk() if p.get_content_type() == "text/plain" and p is not message
    ) or (_text(message) if not message.is_multipart() else "")
    notice = re.split(r"^-{2,}.*(?:below this line|original message|copy of the message).*$", text,
                      maxsplit=1, flags=re.IGNORECASE | re.MULTILINE)[0]  # fmt: skip
    found = _STATUS_IN_TEXT.search(notice)
    if found is None:
        raise ReportRefused("a bounce with no x.y.z status code in its text: it is not applied")
    line = notice[notice.rfind("\n", 0, found.start()) + 1 :].split("\n", 1)[0]
    address = _address(str(failed_header)) if failed_header else None
    if address is None:
        near = _ADDRESS.search(notice[max(0, found.start() - 400) : found.end() + 200])
        address = near.group(1).lower() if near else None
    status = ".".join(found.groups())
    recipient = Recipient(kind="hard_bounce" if status[0] == "5" else "soft_bounce", address=address,
                          action="failed", status=status, diagnostic=" ".join(line.split())[:500] or None)  # fmt: skip
    return Report(format="plain", recipients=(recipient,), message_ids=_original_ids(message),
                  verp=_unique(verp + _inner_senders(message)), reporter=sender or None)  # fmt: skip
