"""One webhook HTTP attempt: sign (Stripe's scheme), check the target, POST without following redirects, and
report what came back (status, a bounded excerpt, the duration). No database here."""

from __future__ import annotations

import hashlib
import hmac
import time
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
        "Host": target.host_header(),
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        SIGNATURE_HEADER: signature_header(secrets, timestamp, body),
        EVENT_ID_HEADER: event_id,
    }
    extensions = {"sni_hostname": target.host} if url.lower().startswith("https:") else {}
    try:
        # trust_env=False: no proxy from the environment may carry the request past the address check.
        with (
            httpx.Client(timeout=config.timeout_s, follow_redirects=False, trust_env=False) as client,
            client.stream(
                "POST", target.pinned_url(), content=body, headers=headers, extensions=extensions
            ) as response,
        ):
            raw = b""
            for chunk in response.iter_bytes():
                raw += chunk
                if len(raw) >= EXCERPT_BYTES:
                    break
            excerpt = raw[:EXCERPT_BYTES].decode("utf-8", errors="replace")[:EXCERPT_CHARS]
            return Outcome(response.status_code, excerpt or None, None, took())
    except httpx.TimeoutException:
        return Outcome(None, None, f"timed out after {config.timeout_s:g}s", took())
    except httpx.HTTPError as exc:
        return Outcome(None, None, f"{type(exc).__name__}: {exc}"[:EXCERPT_CHARS], took())
