"""One webhook HTTP attempt: sign (Stripe's scheme), check the target, POST without following redirects, and
report what came back (status, a bounded excerpt, the duration). No database here.

``exchange`` is the one outgoing request of the delivery channels (webhooks and web push): to the address that
was checked, reading at most a bounded excerpt, and over within the timeout as a whole. httpx's timeouts bound
each read, not the exchange: a receiver trickling one byte of its answer every few seconds would otherwise hold
a worker thread for hours (and outlive the job's lease, so another worker would send the same event again).
"""

from __future__ import annotations

import contextlib
import hashlib
import hmac
import socket
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import httpx

from offerloop.delivery.webhooks import targets
from offerloop.delivery.webhooks.exceptions import InvalidTargetUrl

SIGNATURE_HEADER = "Offerloop-Signature"
EVENT_ID_HEADER = "Offerloop-Event-Id"
USER_AGENT = "offerloop-webhooks/1"
EXCERPT_BYTES = 2048  # read at most this much of an answer
EXCERPT_CHARS = 500  # and keep at most this much of it


@dataclass(frozen=True)
class WebhookConfig:
    """What a process sending webhooks is configured with (from Settings)."""

    allow_private: bool = False
    timeout_s: float = 10.0


_config = WebhookConfig()


def configure(settings: Any) -> None:
    """Set this process's webhook configuration from ``Settings`` (the job runner's handlers read it)."""
    global _config
    _config = WebhookConfig(
        allow_private=settings.webhook_allow_private, timeout_s=settings.webhook_timeout_s
    )


def current() -> WebhookConfig:
    return _config


def signature(secret: str, timestamp: int, body: bytes) -> str:
    """Hex HMAC-SHA256 of ``f"{timestamp}.{body}"`` keyed with the whole secret string (``whsec_…``)."""
    signed = str(timestamp).encode() + b"." + body
    return hmac.new(secret.encode(), signed, hashlib.sha256).hexdigest()


def signature_header(secrets: list[str], timestamp: int, body: bytes) -> str:
    """``t=<unix>,v1=<hex>[,v1=<hex>]``: one ``v1`` per valid secret (two while a rotated one is honoured)."""
    return ",".join([f"t={timestamp}", *(f"v1={signature(s, timestamp, body)}" for s in secrets)])


@dataclass(frozen=True)
class Outcome:
    status_code: int | None
    excerpt: str | None
    error: str | None
    duration_ms: int
    # Refused before sending (the URL or the address it resolves to is not allowed): retrying for three days
    # would only repeat the refusal, so the delivery fails at once with the reason.
    final: bool = False

    @property
    def succeeded(self) -> bool:
        return self.status_code is not None and 200 <= self.status_code < 300


def exchange(
    target: targets.Target, *, body: bytes, headers: Mapping[str, str], timeout_s: float
) -> tuple[int, bytes]:
    """POST ``body`` to the checked address of ``target`` (its name in the Host header and TLS SNI); the status
    and at most ``EXCERPT_BYTES`` of the answer. No redirect is followed, no proxy used. The whole exchange ends
    within ``timeout_s``: at the deadline its socket is shut down and, unless the status line had come,
    ``httpx.TimeoutException`` raised; any other failure is an ``httpx.HTTPError``."""
    expired = threading.Event()
    lock = threading.Lock()
    sockets: list[socket.socket] = []

    def cut(sock: socket.socket) -> None:
        with contextlib.suppress(OSError):  # already closed
            sock.shutdown(socket.SHUT_RDWR)  # wakes a blocked recv; the client then sees the stream end

    def on_deadline() -> None:
        with lock:
            expired.set()
            for sock in sockets:
                cut(sock)

    def trace(event: str, info: dict[str, Any]) -> None:
        if event.endswith(("connect_tcp.complete", "start_tls.complete")):
            sock = info["return_value"].get_extra_info("socket")
            if sock is not None:
                with lock:
                    sockets.append(sock)
                    if expired.is_set():
                        cut(sock)

    extensions: dict[str, Any] = {"trace": trace}
    if target.url.lower().startswith("https:"):
        extensions["sni_hostname"] = target.host
    timer = threading.Timer(timeout_s, on_deadline)
    timer.daemon = True
    timer.start()
    try:
        # trust_env=False: no proxy from the environment may carry the request past the address check.
        with (
            httpx.Client(timeout=timeout_s, follow_redirects=False, trust_env=False) as client,
            client.stream(
                "POST", target.pinned_url(), content=body, headers={"Host": target.host_header(), **headers},
                extensions=extensions,
            ) as response,
        ):  # fmt: skip
            raw = b""
            try:
                for chunk in response.iter_bytes():
                    raw += chunk
                    if len(raw) >= EXCERPT_BYTES:
                        break
            except httpx.HTTPError:
                if not expired.is_set():
                    raise
            # the status came back: the receiver answered, even if the deadline cut the excerpt short
            return response.status_code, raw[:EXCERPT_BYTES]
    except httpx.HTTPError:
        if expired.is_set():
            raise httpx.ReadTimeout("the exchange took longer than the timeout") from None
        raise
    finally:
        timer.cancel()


def post(
    url: str, *, body: bytes, secrets: list[str], event_id: str, timestamp: int, config: WebhookConfig
) -> Outcome:
    """POST ``body`` to ``url`` once. Never raises for what the receiver or the network does."""
    started = time.monotonic()

    def took() -> int:
        return int((time.monotonic() - started) * 1000)

    try:
        target = targets.resolve(url, allow_private=config.allow_private)
    except InvalidTargetUrl as exc:
        return Outcome(None, None, f"refused: {exc.message}"[:EXCERPT_CHARS], took(), final=True)
    headers = {
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        SIGNATURE_HEADER: signature_header(secrets, timestamp, body),
        EVENT_ID_HEADER: event_id,
    }
    try:
        status, raw = exchange(target, body=body, headers=headers, timeout_s=config.timeout_s)
    except httpx.TimeoutException:
        return Outcome(None, None, f"timed out after {config.timeout_s:g}s", took())
    except httpx.HTTPError as exc:
        return Outcome(None, None, f"{type(exc).__name__}: {exc}"[:EXCERPT_CHARS], took())
    excerpt = raw.decode("utf-8", errors="replace")[:EXCERPT_CHARS]
    return Outcome(status, excerpt or None, None, took())
