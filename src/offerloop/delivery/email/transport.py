"""Hands a composed message on: to an SMTP server, or (the embedded default) into a Maildir.

Both transports have the same ``send(*, envelope_from, to, message) -> SendResult``; neither raises for
a failed delivery. ``envelope_from`` is the bounce address (``MAIL FROM``, the receiver's Return-Path),
separate from the ``From`` header.

Exactly once is the outbox's job; what a transport guarantees: a connection lost after the message
was handed over (the final ``.`` sent, no reply read) is reported ``transient``, so the outbox sends
it again, with the same ``Message-ID``; the Maildir transport stores one file per ``Message-ID``, so
sending again is a no-op there.
"""

from __future__ import annotations

import hashlib
import os
import smtplib
import ssl
import threading
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from email import policy as email_policy
from email.message import EmailMessage
from email.parser import BytesParser
from pathlib import Path
from types import TracebackType
from typing import Literal, Protocol, Self
from urllib.parse import parse_qs, quote, unquote, urlsplit

from sqlalchemy.engine import make_url

from offerloop.config import Settings
from offerloop.core.errors import ValidationFailed
from offerloop.delivery.email.compose import POLICY, envelope_address
from offerloop.delivery.email.dkim import DkimSigner
from offerloop.delivery.email.exceptions import EmailConfigError, EmailNotFound, InvalidEmail

Status = Literal["sent", "transient", "permanent"]


@dataclass(frozen=True)
class SendResult:
    status: Status
    detail: str
    smtp_code: int | None


class Transport(Protocol):
    def send(self, *, envelope_from: str, to: str, message: EmailMessage) -> SendResult: ...

    def close(self) -> None: ...


def status_for(code: int) -> Status:
    """RFC 5321 4.2.1: 2yz done, 4yz try again later, 5yz do not repeat as is."""
    if 200 <= code < 300:
        return "sent"
    return "permanent" if 500 <= code < 600 else "transient"


def _reply(code: int, text: bytes | str, stage: str) -> SendResult:
    if isinstance(text, bytes):
        text = text.decode("utf-8", "replace")
    return SendResult(status_for(code), f"{code} {' '.join(text.split())} ({stage})", code)


def wire_bytes(message: EmailMessage, signer: DkimSigner | None) -> bytes:
    """The message as sent (CRLF line ends, 7-bit), DKIM-signed when a signer is given."""
    raw = message.as_bytes(policy=POLICY)
    return signer.sign(raw) if signer is not None else raw


class _Failed(Exception):
    def __init__(self, result: SendResult) -> None:
        super().__init__(result.detail)
        self.result = result


Security = Literal["none", "starttls", "tls"]
_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off")


class SmtpTransport:
    """An SMTP client that keeps one connection per thread open across sends (reconnecting when the
    server dropped it) and closes them all in ``close``. ``repr`` never shows the password."""

    def __init__(
        self,
        *,
        host: str,
        port: int,
        security: Security = "none",
        username: str | None = None,
        password: str | None = None,
        timeout: float = 10.0,
        ssl_context: ssl.SSLContext | None = None,
        signer: DkimSigner | None = None,
        local_hostname: str | None = None,
    ) -> None:
        if (username is None) != (password is None):
            raise EmailConfigError("SMTP authentication needs both a user name and a password")
        self.host = host
        self.port = port
        self.security: Security = security
        self.username = username
        self._password = password
        self.timeout = timeout
        self.ssl_context = ssl_context or ssl.create_default_context()
        self.signer = signer
        self.local_hostname = local_hostname
        self._lock = threading.Lock()
        self._connections: dict[int, smtplib.SMTP] = {}

    @classmethod
    def from_url(
        cls,
        url: str,
        *,
        timeout: float = 10.0,
        ca_file: str | None = None,
        verify: bool = True,
        signer: DkimSigner | None = None,
    ) -> SmtpTransport:
        """``smtp://[user:pass@]host[:port][?starttls=true]`` (port 25) or ``smtps://…`` (implicit TLS,
        port 465). User and password are percent-decoded. ``?ca_file=`` and ``?verify=false`` may also be
        given in the URL (a private CA; verification off is for tests against a self-signed server)."""
        parts = urlsplit(url)
        if parts.scheme not in ("smtp", "smtps") or not parts.hostname:
            raise EmailConfigError("the SMTP URL must look like smtp://user:pass@host:587?starttls=true")
        query = {key: values[-1] for key, values in parse_qs(parts.query, keep_blank_values=True).items()}
        unknown = set(query) - {"starttls", "ca_file", "verify"}
        if unknown:
            raise EmailConfigError(f"unknown SMTP URL parameters: {', '.join(sorted(unknown))}")
        starttls = _flag(query.get("starttls", "false"), "starttls")
        verify = verify and _flag(query.get("verify", "true"), "verify")
        if parts.scheme == "smtps" and starttls:
            raise EmailConfigError("smtps:// is TLS from the start; starttls=true is for smtp://")
        try:
            port = parts.port or (465 if parts.scheme == "smtps" else 25)
        except ValueError as exc:
            raise EmailConfigError("the SMTP URL has an invalid port") from exc
        context = ssl.create_default_context(cafile=query.get("ca_file", ca_file))
        if not verify:
            context.check_hostname = False
            context.verify_mode = ssl.CERT_NONE
        return cls(
            host=parts.hostname,
            port=port,
            security="tls" if parts.scheme == "smtps" else "starttls" if starttls else "none",
            username=unquote(parts.username) if parts.username is not None else None,
            password=unquote(parts.password or "") if parts.username is not None else None,
            timeout=timeout,
            ssl_context=context,
            signer=signer,
        )

    def __repr__(self) -> str:
        user = f"{quote(self.username, safe='')}:***@" if self.username is not None else ""
        scheme = "smtps" if self.security == "tls" else "smtp"
        tls = "?starttls=true" if self.security == "starttls" else ""
        return f"SmtpTransport('{scheme}://{user}{self.host}:{self.port}{tls}')"

    def __enter__(self) -> Self:
        return self

    def __exit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    def send(self, *, envelope_from: str, to: str, message: EmailMessage) -> SendResult:
        try:
            sender, recipient = envelope_address(envelope_from), envelope_address(to)
            if not recipient:
                raise InvalidEmail("the recipient is empty")
        except InvalidEmail as exc:
            return SendResult("permanent", f"invalid envelope address: {exc.message}", None)
        raw = wire_bytes(message, self.signer)
        for attempt in (1, 2):
            try:
                connection, reused = self._connection()
                return self._transaction(connection, sender, recipient, raw, retry=reused and attempt == 1)
            except _Failed as failed:
                return failed.result
            except _Stale:
                continue  # the server closed an idle connection: one fresh attempt
        raise AssertionError("unreachable")  # pragma: no cover

    def close(self) -> None:
        """Quit every thread's connection (call once the threads that send have stopped)."""
        with self._lock:
            connections, self._connections = list(self._connections.values()), {}
        for connection in connections:
            _quit(connection)

    def _connection(self) -> tuple[smtplib.SMTP, bool]:
        ident = threading.get_ident()
        with self._lock:
            existing = self._connections.get(ident)
        if existing is not None:
            return existing, True
        connection = self._connect()
        with self._lock:
            self._connections[ident] = connection
        return connection, False

    def _drop(self) -> None:
        with self._lock:
            connection = self._connections.pop(threading.get_ident(), None)
        if connection is not None:
            _quit(connection)

    def _connect(self) -> smtplib.SMTP:
        connection: smtplib.SMTP | None = None
        try:
            if self.security == "tls":
                connection = smtplib.SMTP_SSL(
                    self.host,
                    self.port,
                    local_hostname=self.local_hostname,
                    timeout=self.timeout,
                    context=self.ssl_context,
                )
            else:
                connection = smtplib.SMTP(
                    self.host, self.port, local_hostname=self.local_hostname, timeout=self.timeout
                )
            connection.ehlo()
            if self.security == "starttls":
                if not connection.has_extn("starttls"):
                    raise _Failed(SendResult("transient", "the server does not offer STARTTLS", None))
                connection.starttls(context=self.ssl_context)
                connection.ehlo()
            if self.username is not None and self._password is not None:
                if not connection.has_extn("auth"):
                    raise _Failed(SendResult("transient", "the server does not offer AUTH here", None))
                connection.login(self.username, self._password)
            return connection
        except BaseException as exc:
            if connection is not None:
                _quit(connection)
            if isinstance(exc, _Failed):
                raise
            if isinstance(exc, smtplib.SMTPResponseException):
                raise _Failed(_reply(exc.smtp_code, exc.smtp_error, "connect")) from exc
            if isinstance(exc, (smtplib.SMTPException, OSError)):
                raise _Failed(SendResult("transient", f"cannot connect: {_describe(exc)}", None)) from exc
            raise

    def _transaction(
        self, connection: smtplib.SMTP, sender: str, recipient: str, raw: bytes, *, retry: bool
    ) -> SendResult:
        stage = "MAIL FROM"
        try:
            try:
                code, text = connection.mail(sender)
            except (smtplib.SMTPServerDisconnected, OSError):
                if retry:
                    self._drop()
                    raise _Stale() from None
                raise
            if code == 250:
                stage = "RCPT TO"
                code, text = connection.rcpt(recipient)
            if code in (250, 251):
                stage = "DATA"
                code, text = connection.data(raw)
            if code == 421:
                self._drop()  # the server is closing the connection
            elif code >= 300:
                self._reset(connection)
            return _reply(code, text, stage)
        except smtplib.SMTPResponseException as exc:
            self._reset(connection)
            return _reply(exc.smtp_code, exc.smtp_error, stage)
        except (smtplib.SMTPException, OSError) as exc:
            self._drop()
            # After DATA the server may have taken the message: the outbox's retry re-sends it at most once.
            return SendResult("transient", f"connection lost at {stage}: {_describe(exc)}", None)

    def _reset(self, connection: smtplib.SMTP) -> None:
        try:
            code, _ = connection.rset()
            if code != 250:
                self._drop()
        except (smtplib.SMTPException, OSError):
            self._drop()


class _Stale(Exception):
    pass


def _quit(connection: smtplib.SMTP) -> None:
    try:
        connection.quit()
    except (smtplib.SMTPException, OSError):
        connection.close()


def _describe(exc: BaseException) -> str:
    return f"{type(exc).__name__}: {exc}" if str(exc) else type(exc).__name__


def _flag(value: str, name: str) -> bool:
    if value.lower() in _TRUE:
        return True
    if value.lower() in _FALSE:
        return False
    raise EmailConfigError(f"the SMTP URL parameter {name} must be true or false, not {value!r}")


@dataclass(frozen=True)
class StoredEmail:
    """One message in the Maildir, as listed: its key and the headers a list shows."""

    key: str
    message_id: str
    envelope_from: str
    to: str
    sender: str
    subject: str
    delivered_at: datetime
    size: int


@dataclass(frozen=True)
class StoredMessage:
    email: StoredEmail
    raw: bytes

    def message(self) -> EmailMessage:
        parsed = BytesParser(policy=email_policy.default).parsebytes(self.raw)
        assert isinstance(parsed, EmailMessage)
        return parsed


MAX_PAGE = 500


class MaildirTransport:
    """Delivers into a Maildir (``new/``, ``cur/``, ``tmp/``), the embedded default for demo and
    development; ``list``/``get`` read it back for the API.

    Idempotent by ``Message-ID``: a message's file is named by a hash of its Message-ID and linked into
    ``new/`` atomically, so sending the same Message-ID again (a retry, a second process) stores nothing
    and reports ``sent``. A ``Return-Path`` and ``Delivered-To`` header record the envelope, as a mail
    delivery agent writes them.
    """

    def __init__(self, path: str | Path, *, signer: DkimSigner | None = None) -> None:
        self.path = Path(path)
        self.signer = signer
        try:
            for sub in ("tmp", "new", "cur"):
                (self.path / sub).mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise EmailConfigError(f"cannot create the Maildir at {str(self.path)!r}: {exc}") from exc

    def __repr__(self) -> str:
        return f"MaildirTransport({str(self.path)!r})"

    @staticmethod
    def key_for(message_id: str) -> str:
        return hashlib.sha256(message_id.strip().encode("utf-8")).hexdigest()[:32]

    def send(self, *, envelope_from: str, to: str, message: EmailMessage) -> SendResult:
        message_id = message.get("Message-ID")
        if not message_id:
            return SendResult("permanent", "the message has no Message-ID", None)
        try:
            sender, recipient = envelope_address(envelope_from), envelope_address(to)
            if not recipient:
                raise InvalidEmail("the recipient is empty")
        except InvalidEmail as exc:
            return SendResult("permanent", f"invalid envelope address: {exc.message}", None)
        key = self.key_for(str(message_id))
        if self._path_of(key) is not None:
            return SendResult("sent", f"already in the Maildir as {key} (same Message-ID)", None)
        trace = f"Return-Path: <{sender}>\r\nDelivered-To: {recipient}\r\n".encode("ascii")
        data = trace + wire_bytes(message, self.signer)
        temporary = self.path / "tmp" / f"{key}.{uuid.uuid4().hex}"
        try:
            with open(temporary, "xb") as file:
                file.write(data)
                file.flush()
                os.fsync(file.fileno())
            try:
                os.link(temporary, self.path / "new" / key)
            except FileExistsError:
                return SendResult("sent", f"already in the Maildir as {key} (same Message-ID)", None)
            finally:
                temporary.unlink()
        except OSError as exc:
            return SendResult("transient", f"cannot write to the Maildir: {_describe(exc)}", None)
        return SendResult("sent", f"delivered to the Maildir as {key}", None)

    def close(self) -> None:
        """Nothing is held open between sends."""

    def list(self, *, limit: int = 50, before: str | None = None) -> list[StoredEmail]:
        """Newest first; ``before`` is the key of the last message of the previous page."""
        if not 1 <= limit <= MAX_PAGE:
            raise ValidationFailed(f"limit must be between 1 and {MAX_PAGE}", details={"limit": limit})
        entries = sorted(self._entries(), reverse=True)
        if before is not None:
            cursor = next((entry for entry in entries if entry[1] == before), None)
            if cursor is None:
                raise EmailNotFound(f"no message {before!r} in the Maildir", details={"before": before})
            entries = [entry for entry in entries if entry < cursor]
        out: list[StoredEmail] = []
        for _, key, path in entries:
            if len(out) == limit:
                break
            stored = self._read(key, path)
            if stored is not None:  # moved or removed meanwhile
                out.append(stored.email)
        return out

    def get(self, key: str) -> StoredMessage:
        path = self._path_of(key)
        stored = self._read(key, path) if path is not None else None
        if stored is None:
            raise EmailNotFound(f"no message {key!r} in the Maildir", details={"key": key})
        return stored

    def discard(self, key: str) -> bool:
        """Remove a captured message (its buyer was erased); True if there was one."""
        path = self._path_of(key)
        if path is None:
            return False
        path.unlink(missing_ok=True)
        return True

    def _entries(self) -> Iterator[tuple[int, str, Path]]:
        for sub in ("new", "cur"):
            with os.scandir(self.path / sub) as scan:
                for entry in scan:
                    key = entry.name.split(":", 1)[0]
                    if _is_key(key):
                        try:
                            yield entry.stat().st_mtime_ns, key, Path(entry.path)
                        except FileNotFoundError:
                            continue

    def _path_of(self, key: str) -> Path | None:
        if not _is_key(key):
            return None
        new = self.path / "new" / key
        if new.exists():
            return new
        # A mail client that read the message moved it to cur/ with its flags after a colon.
        with os.scandir(self.path / "cur") as scan:
            for entry in scan:
                if entry.name.split(":", 1)[0] == key:
                    return Path(entry.path)
        return None

    def _read(self, key: str, path: Path) -> StoredMessage | None:
        try:
            raw = path.read_bytes()
            mtime_ns = path.stat().st_mtime_ns
        except FileNotFoundError:
            return None
        head = BytesParser(policy=email_policy.default).parsebytes(raw, headersonly=True)
        return StoredMessage(
            email=StoredEmail(
                key=key,
                message_id=str(head.get("Message-ID", "")),
                envelope_from=str(head.get("Return-Path", "")).strip().removeprefix("<").removesuffix(">"),
                to=str(head.get("To", "")),
                sender=str(head.get("From", "")),
                subject=str(head.get("Subject", "")),
                delivered_at=datetime.fromtimestamp(mtime_ns / 1e9, UTC),
                size=len(raw),
            ),
            raw=raw,
        )


def _is_key(value: str) -> bool:
    return len(value) == 32 and all(c in "0123456789abcdef" for c in value)


def signer_for(settings: Settings) -> DkimSigner | None:
    """The DKIM signer the settings describe: all three of selector, domain and key path, or none."""
    parts = (settings.dkim_selector, settings.dkim_domain, settings.dkim_private_key_path)
    if all(part is None for part in parts):
        return None
    if (
        settings.dkim_selector is None
        or settings.dkim_domain is None
        or settings.dkim_private_key_path is None
    ):
        raise EmailConfigError(
            "DKIM signing needs OFFERLOOP_DKIM_SELECTOR, OFFERLOOP_DKIM_DOMAIN and OFFERLOOP_DKIM_PRIVATE_KEY_PATH"
        )
    return DkimSigner.from_file(
        settings.dkim_private_key_path, selector=settings.dkim_selector, domain=settings.dkim_domain
    )


def maildir_path_for(settings: Settings) -> Path:
    """``maildir_path`` if set; else ``maildir`` beside a SQLite database file; else ``./maildir``."""
    if settings.maildir_path:
        return Path(settings.maildir_path)
    if settings.is_sqlite:
        database = make_url(settings.database_url).database
        if database and database != ":memory:" and not database.startswith("file:"):
            return Path(database).parent / "maildir"
    return Path("maildir")


def envelope_sender(settings: Settings) -> str:
    """The bounce address: ``bounce_address``, else the address in ``mail_from``."""
    return envelope_address(settings.bounce_address or settings.mail_from)


def transport_for(settings: Settings) -> SmtpTransport | MaildirTransport:
    """SMTP when ``smtp_url`` is set, else the Maildir; DKIM-signing either when configured."""
    signer = signer_for(settings)
    if settings.smtp_url:
        return SmtpTransport.from_url(settings.smtp_url, timeout=settings.smtp_timeout_s, signer=signer)
    return MaildirTransport(maildir_path_for(settings), signer=signer)
