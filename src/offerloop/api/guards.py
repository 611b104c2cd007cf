"""Pure ASGI middleware that keeps client input from breaking the server, for every route at once.

- ``BodyLimit``: every request body is bounded before it is read — refused by ``Content-Length``, and
  counted while it streams (chunked bodies too) — and a route that needs a key is authenticated before
  its body is read, so an anonymous client cannot make the server buffer anything.
- ``InputGuard``: values no route can store are refused with 422 and a reason before any route sees them:
  NUL characters in the path, query or JSON body (PostgreSQL text cannot hold them), integers outside
  64 bits (no database column can), non-finite numbers and JSON nested deeper than ``MAX_JSON_DEPTH``.
- ``CatchAll``: an unexpected error is answered with a 500 JSON body *and the exception is not re-raised*,
  so the server keeps the keep-alive connection open and the client's next request still works.

The Segment tracking routes bound and check their own input (a bad event is quarantined with its reason,
not the whole batch refused), so the body checks here leave them alone.
"""

from __future__ import annotations

import json
import re
from typing import Any
from urllib.parse import parse_qsl, unquote

import orjson
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from offerloop.core.errors import OfferloopError
from offerloop.core.text import utf8_encodable
from offerloop.telemetry import log
from offerloop.workspaces.auth import PRINCIPAL_SCOPE_KEY, authenticate_request_async

MiB = 1024 * 1024
DEFAULT_BODY_LIMIT = 2 * MiB
# Uploads of creator content (corpus, catalog, theme with a logo) may be larger than an API call.
UPLOAD_BODY_LIMIT = 8 * MiB
UPLOAD_PATHS = frozenset(
    (
        "/v1/content/atoms",
        "/v1/content/sync",
        "/v1/offers/catalog",
        "/v1/theme",
        "/v1/policies",
        "/v1/quizzes",
    )
)
# Tracking reads its body itself with the Segment limits (500 KB a batch) and quarantines per event.
TRACKING_PATHS = frozenset(
    f"/v1/{t}" for t in ("identify", "track", "page", "screen", "group", "alias", "batch")
)
# Routes a client reaches without an API key: a Stripe signature, a signed file link, a quiz form with
# the write key in its URL, a signed link in a message. Everything else under /v1 needs the Authorization
# header before its body.
KEYLESS_PREFIXES = ("/v1/webhooks/stripe", "/v1/files/", "/v1/quizzes/", "/v1/m/")
MAX_JSON_DEPTH = 64
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
_INTEGER = re.compile(r"[+-]?\d+")

Refusal = tuple[int, str, str, Any]


def error_body(code: str, message: str, details: Any = None) -> bytes:
    return orjson.dumps({"error": {"code": code, "message": message, "details": details}})


async def send_error(send: Send, status: int, code: str, message: str, details: Any = None) -> None:
    body = error_body(code, message, details)
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())],
        }
    )
    await send({"type": "http.response.body", "body": body})


def body_limit_for(path: str) -> int | None:
    """The most bytes a route's body may have; None where the route bounds its body itself."""
    if path in TRACKING_PATHS:
        return None
    if path in UPLOAD_PATHS:
        return UPLOAD_BODY_LIMIT
    return DEFAULT_BODY_LIMIT


def _has_body(scope: Scope) -> bool:
    for name, value in scope["headers"]:
        if name == b"content-length":
            return value.strip() not in (b"", b"0")
        if name == b"transfer-encoding":
            return True
    return False


class _TooLarge(Exception):
    pass


class BodyLimit:
    """Refuse bodies over the route's limit (413) and unauthenticated bodies (401) before reading them."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        path: str = scope["path"]
        if not _has_body(scope):
            await self.app(scope, receive, send)
            return
        limit = body_limit_for(path)
        length = dict(scope["headers"]).get(b"content-length")
        if length is not None and limit is not None:
            if not length.strip().isdigit():
                await send_error(send, 400, "invalid_content_length", "Content-Length must be a number")
                return
            if int(length) > limit:
                await send_error(send, 413, "body_too_large", f"request body is {int(length)} bytes; "
                                 f"the limit is {limit}", {"limit": limit})  # fmt: skip
                return
        if path.startswith("/v1/") and not path.startswith(KEYLESS_PREFIXES):
            try:
                # Kept for the route's own key dependency: the same header, authenticated once.
                scope[PRINCIPAL_SCOPE_KEY] = await authenticate_request_async(Request(scope))
            except OfferloopError as exc:
                await send_error(send, exc.status_code, exc.code, exc.message, exc.details)
                return
        if limit is None:  # the route reads and bounds its body itself
            await self.app(scope, receive, send)
            return
        received = 0
        started = False

        async def counted() -> Message:
            nonlocal received
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    raise _TooLarge
            return message

        async def tracked(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, counted, tracked)
        except _TooLarge:
            if started:
                raise
            await send_error(send, 413, "body_too_large", f"request body exceeds {limit} bytes",
                             {"limit": limit})  # fmt: skip


class _Invalid(Exception):
    def __init__(self, reason: str, message: str, where: str) -> None:
        super().__init__(message)
        self.reason, self.message, self.where = reason, message, where


def _refuse_constant(text: str) -> None:
    raise _Invalid("number_out_of_range", f"{text} is not a JSON number", "body")


# The body is checked before any route authenticates it (a webhook's signature, a form's key), so the
# check runs at C speed: one parse without Python hooks, then regular expressions over the body with its
# strings blanked out (what is left is numbers, literals, brackets and punctuation).
# A JSON string, written as an "unrolled loop" (runs of plain characters, then one escape at a time): the
# plain alternation `(?:[^"\\]|\\.)*` steps the engine once per character and took 5 ms on a 100 kB body.
_STRING = re.compile(rb'"[^"\\]*(?:\\.[^"\\]*)*"', re.DOTALL)
_NUL_ESCAPE = re.compile(rb"(?<!\\)(?:\\\\)*\\u0000")
# Numbers that might not fit: 19 or more digits (int64 holds 18 safely), or a 3-digit exponent.
_LONG_NUMBER = re.compile(rb"-?\d{19,}(?:\.\d+)?(?:[eE][+-]?\d+)?|-?\d+(?:\.\d+)?[eE][+-]?\d{3,}")
# What every match of _LONG_NUMBER contains: a cheap search first, the full pattern only where it finds one.
_MAYBE_LONG = re.compile(rb"\d{19}|[eE][+-]?\d{3}")
_NOT_BRACKETS = bytes(b for b in range(256) if b not in b"[]{}")


def _too_deep(shape: bytes) -> bool:
    """Whether the brackets nest deeper than MAX_JSON_DEPTH: each pass removes the innermost pairs."""
    shape = shape.translate(None, _NOT_BRACKETS)
    for _ in range(MAX_JSON_DEPTH):
        if not shape:
            return False
        shape = shape.replace(b"[]", b"").replace(b"{}", b"")
    return bool(shape)


def check_body(body: bytes) -> None:
    if b"\x00" in body:
        raise _Invalid("nul_character", "the body contains a NUL byte", "body")
    try:
        orjson.loads(body)  # strict JSON: what it accepts has no NaN or Infinity and integers within 64 bits
    except orjson.JSONDecodeError:
        # what orjson refuses, the standard parser tells apart: NaN/Infinity, deep nesting, huge integers, or
        # not JSON at all
        try:
            parsed = json.loads(body, parse_constant=_refuse_constant)  # only NaN and Infinity reach Python
        except RecursionError:
            raise _Invalid(
                "nesting_too_deep", f"JSON is nested deeper than {MAX_JSON_DEPTH} levels", "body"
            ) from None
        except ValueError:
            return  # not JSON (or not UTF-8): the route answers that with its own 422
        if _lone_surrogate(parsed):
            # "\\ud83d" alone (a JavaScript client cutting an emoji in half): no database can store it as UTF-8
            message = "the body contains a lone UTF-16 surrogate (half of a character)"
            raise _Invalid("lone_surrogate", message, "body") from None
    if b"\\u0000" in body and _NUL_ESCAPE.search(body):
        raise _Invalid("nul_character", "the body contains a NUL character (\\u0000)", "body")
    shape = _STRING.sub(b'""', body)
    for match in _LONG_NUMBER.finditer(shape) if _MAYBE_LONG.search(shape) else ():
        text = match.group().decode()
        if any(c in text for c in ".eE"):
            if float(text) in (float("inf"), float("-inf")):
                raise _Invalid("number_out_of_range", f"number {text[:40]} is too large", "body")
        elif not _fits_int64(text):
            raise _Invalid("integer_out_of_range", f"integer {text[:40]} is outside 64 bits", "body")
    if _too_deep(shape):
        raise _Invalid("nesting_too_deep", f"JSON is nested deeper than {MAX_JSON_DEPTH} levels", "body")


def _lone_surrogate(parsed: Any) -> bool:
    """Whether a parsed body holds a string (a key or a value) with a surrogate outside a pair, which UTF-8
    cannot encode. Walked without recursion; only bodies orjson refused come here."""
    stack = [parsed]
    while stack:
        item = stack.pop()
        if isinstance(item, dict):
            stack.extend(item.keys())
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)
        elif isinstance(item, str) and not utf8_encodable(item):
            return True
    return False


def _fits_int64(text: str) -> bool:
    """Whether an integer literal is within 64 bits, decided from its length first: Python refuses to convert
    a literal of more than 4,300 digits (a ValueError, which was a 500 on any route)."""
    digits = text.strip().lstrip("+-").lstrip("0")
    return len(digits) <= 19 and INT64_MIN <= int(text) <= INT64_MAX


def _out_of_range(value: str) -> bool:
    # the stripped text is what is checked and converted: str.strip() removes characters int() does not accept
    # as blanks (an \x1f before a digit was a ValueError, a 500: found by schemathesis)
    text = value.strip()
    return _INTEGER.fullmatch(text) is not None and not _fits_int64(text)


def check_target(scope: Scope) -> None:
    """NUL characters anywhere in the path or query string; integers outside 64 bits in a parameter the
    route declares as an integer (a long numeric *string*, such as a user id, is left alone)."""
    path: str = scope["path"]
    if "\x00" in path:
        raise _Invalid("nul_character", "the path contains a NUL character", "path")
    query = scope.get("query_string", b"").decode("latin-1")
    if "%00" in query or "\x00" in unquote(query):
        raise _Invalid("nul_character", "the query string contains a NUL character", "query")
    big_query = {name for name, value in parse_qsl(query, keep_blank_values=True) if _out_of_range(value)}
    if not big_query and not any(_out_of_range(part) for part in path.split("/")):
        return
    for method, pattern, in_query, in_path in _integer_parameters(scope.get("app")):
        match = pattern.fullmatch(path)
        if method != scope["method"] or match is None:
            continue
        if big_query & in_query:
            name = sorted(big_query & in_query)[0]
            raise _Invalid(
                "integer_out_of_range", f"query parameter {name[:40]!r} is outside 64 bits", "query"
            )
        if any(_out_of_range(match.group(name)) for name in in_path):
            raise _Invalid("integer_out_of_range", "a path parameter is outside 64 bits", "path")


_IntegerParams = list[tuple[str, re.Pattern[str], set[str], set[str]]]


def _integer_parameters(app: Any) -> _IntegerParams:
    """(method, path pattern, integer query parameters, integer path parameters) of every operation,
    read once from the app's OpenAPI schema."""
    cached: _IntegerParams | None = getattr(getattr(app, "state", None), "integer_parameters", None)
    if cached is not None or app is None or not hasattr(app, "openapi"):
        return cached or []
    found: _IntegerParams = []
    for template, operations in app.openapi().get("paths", {}).items():
        pattern = re.compile(re.sub(r"\\{(\w+)\\}", r"(?P<\1>[^/]+)", re.escape(template)))
        for method, operation in operations.items():
            params = [p for p in operation.get("parameters", []) if _is_integer(p.get("schema", {}))]
            in_query = {p["name"] for p in params if p["in"] == "query"}
            in_path = {p["name"] for p in params if p["in"] == "path"}
            if in_query or in_path:
                found.append((method.upper(), pattern, in_query, in_path))
    app.state.integer_parameters = found
    return found


def _is_integer(schema: dict[str, Any]) -> bool:
    if schema.get("type") == "integer":
        return True
    return any(_is_integer(option) for option in schema.get("anyOf", []) + schema.get("oneOf", []))


class InputGuard:
    """Refuse (422, with a reason) values no route can store, before any route reads them."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        try:
            check_target(scope)
        except _Invalid as bad:
            await self._refuse(send, bad)
            return
        if scope["path"] in TRACKING_PATHS or not _has_body(scope):
            await self.app(scope, receive, send)
            return
        kind = _content_type(scope)
        is_form = kind == b"application/x-www-form-urlencoded"
        if not (is_form or kind in (b"", b"application/json") or kind.endswith(b"+json")):
            await self.app(scope, receive, send)
            return
        chunks: list[bytes] = []
        while True:
            message = await receive()
            if message["type"] == "http.disconnect":
                return
            chunks.append(message.get("body", b""))
            if not message.get("more_body", False):
                break
        body = b"".join(chunks)
        try:
            if is_form:
                if b"%00" in body or b"\x00" in body:
                    raise _Invalid("nul_character", "the form contains a NUL character", "body")
            else:
                check_body(body)
        except _Invalid as bad:
            await self._refuse(send, bad)
            return
        replayed = False

        async def replay() -> Message:
            nonlocal replayed
            if not replayed:
                replayed = True
                return {"type": "http.request", "body": body, "more_body": False}
            return await receive()

        await self.app(scope, replay, send)

    @staticmethod
    async def _refuse(send: Send, bad: _Invalid) -> None:
        await send_error(send, 422, "invalid_input", bad.message, {"reason": bad.reason, "in": bad.where})


def _content_type(scope: Scope) -> bytes:
    """The media type, lower case; empty when absent (FastAPI then reads the body as JSON)."""
    for name, value in scope["headers"]:
        if name == b"content-type":
            return bytes(value.split(b";", 1)[0].strip().lower())
    return b""


class CatchAll:
    """Outermost of ours: an unexpected error becomes a logged 500 and the connection stays usable."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = False

        async def tracked(message: Message) -> None:
            nonlocal started
            started = started or message["type"] == "http.response.start"
            await send(message)

        try:
            await self.app(scope, receive, tracked)
        except Exception:
            log.exception("unhandled error", path=scope["path"])
            if started:
                raise  # half a response is out: only closing the connection tells the client
            await send_error(send, 500, "internal_error", "an unexpected error occurred; it has been logged")
