"""Signed links in messages: click redirects (which record the click and add the journey's UTM tags), the
one-click unsubscribe, and the optional open pixel. A link names its workspace and outbox message; its
signature (HMAC-SHA256 with the server's link-signing secret) makes it unforgeable and untamperable."""

from __future__ import annotations

import base64
import hashlib
import hmac
from dataclasses import dataclass
from typing import Any, Final, Literal
from urllib.parse import parse_qsl, urlencode, urlsplit, urlunsplit

import orjson

from offerloop.delivery.exceptions import BadLink

Kind = Literal["c", "u", "o", "v", "i"]  # click, unsubscribe, open, view in the browser, inbox token


@dataclass(frozen=True)
class Links:
    """What rendering links needs: the public address buyers reach and the link-signing secret."""

    public_url: str
    secret: str


_SIG_BYTES: Final = 16
MAX_TOKEN_CHARS: Final = 4096


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _unb64(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def _mac(secret: str, kind: str, body: str) -> bytes:
    return hmac.new(secret.encode(), f"delivery-{kind}.{body}".encode(), hashlib.sha256).digest()[:_SIG_BYTES]


def token(secret: str, kind: Kind, payload: dict[str, Any]) -> str:
    body = _b64(orjson.dumps(payload))
    return f"{body}.{_b64(_mac(secret, kind, body))}"


def read(secret: str, kind: Kind, text: str) -> dict[str, Any]:
    """The payload of a token this server signed for ``kind``; :class:`BadLink` otherwise."""
    if len(text) > MAX_TOKEN_CHARS or text.count(".") != 1:
        raise BadLink("this link is not valid")
    body, sig = text.split(".")
    try:
        good = hmac.compare_digest(_unb64(sig), _mac(secret, kind, body))
        payload = orjson.loads(_unb64(body)) if good else None
    except (ValueError, orjson.JSONDecodeError):
        payload = None
    if not isinstance(payload, dict):
        raise BadLink("this link is not valid")
    return payload


def url(public_url: str, secret: str, kind: Kind, payload: dict[str, Any]) -> str:
    path = {"c": "click", "u": "unsubscribe", "o": "open", "v": "view"}[kind]
    return f"{public_url.rstrip('/')}/v1/m/{path}/{token(secret, kind, payload)}"


def tagged(target: str, *, medium: str, campaign: str | None, content: str | None) -> str:
    """``target`` with ``utm_source=offerloop``, ``utm_medium``, ``utm_campaign`` (and ``utm_content``) set,
    keeping its other query parameters; tags the creator already put there are kept."""
    parts = urlsplit(target)
    query = dict(parse_qsl(parts.query, keep_blank_values=True))
    tags = {"utm_source": "offerloop", "utm_medium": medium, "utm_campaign": campaign, "utm_content": content}
    for name, value in tags.items():
        if value and name not in query:
            query[name] = value
    return urlunsplit((parts.scheme, parts.netloc, parts.path, urlencode(query), parts.fragment))


def safe_target(target: Any) -> str | None:
    """An absolute http(s) URL a click may redirect to (never javascript:, data: or a relative path)."""
    if not isinstance(target, str) or len(target) > 2048:
        return None
    parts = urlsplit(target.strip())
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return None
    return target.strip()
