"""Validation of one Segment-spec message into an accepted event or a refusal with a reason.

Hand-written rather than a pydantic model: it runs ~20,000 times a second on the ingest path and
each refusal needs its own stable machine-readable code.
"""

from __future__ import annotations

import hashlib
import json
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Final, Literal

import orjson

from offerloop.core.clock import parse_timestamp
from offerloop.core.text import utf8_encodable
from offerloop.events.touchpoints import TouchpointData, extract_touchpoint
from offerloop.identity.service import clean_id

TYPES = frozenset({"identify", "track", "page", "screen", "group", "alias"})
# A JSON \u0000 escape not itself escaped: PostgreSQL's text and jsonb cannot hold a NUL character.
_NUL_ESCAPE = re.compile(rb"(?<!\\)(?:\\\\)*\\u0000")


# Event times a store can hold and read back on every database, after the client's clock skew is corrected.
EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
LATEST = datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)


def has_nul(serialized: bytes) -> bool:
    return b"\\u0000" in serialized and _NUL_ESCAPE.search(serialized) is not None


def escape_nul(text: str) -> str:
    """Text safe for any database: NUL characters become the visible escape \\u0000."""
    return text.replace("\x00", "\\u0000")


MAX_DEPTH = 254  # orjson's limit when it serialises: deeper events cannot be stored as JSON


def dump_deep(value: Any) -> str:
    """JSON text of a value at any depth (no recursion), for keeping what orjson refuses to serialise."""
    out: list[str] = []
    stack: list[Any] = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, _Text):
            out.append(item.text)
        elif isinstance(item, dict):
            parts: list[Any] = [_Text("{")]
            for n, (key, child) in enumerate(item.items()):
                parts += [_Text(("," if n else "") + _leaf(str(key)) + ":"), child]
            parts.append(_Text("}"))
            stack.extend(reversed(parts))
        elif isinstance(item, list):
            parts = [_Text("[")]
            for n, child in enumerate(item):
                parts += ([_Text(",")] if n else []) + [child]
            parts.append(_Text("]"))
            stack.extend(reversed(parts))
        else:
            out.append(_leaf(item))
    return "".join(out)


def _printable(value: Any) -> str | None:
    """A client's messageId as the answer can carry it (a string that is itself storable), else None."""
    if not isinstance(value, str) or len(value) > 255 or not utf8_encodable(value):
        return None
    return value


def _leaf(value: Any) -> str:
    try:
        return orjson.dumps(value).decode()
    except orjson.JSONEncodeError:  # a lone UTF-16 surrogate: the standard encoder escapes it (\\ud83d)
        return json.dumps(value)


def _unencodable(exc: orjson.JSONEncodeError, what: str) -> tuple[str, str]:
    """Why orjson could not serialise an event (or the batch's context): a lone UTF-16 surrogate in a string
    (what a JavaScript client sends when it cuts an emoji in half), or nesting past its limit."""
    if "surrogate" in str(exc):
        return (
            "invalid_characters",
            f"{what} contains a lone UTF-16 surrogate (half of a character), which cannot be stored",
        )
    return "nesting_too_deep", f"{what} is nested deeper than {MAX_DEPTH} levels"


@dataclass(slots=True, frozen=True)
class _Text:
    text: str


_UNSET: Any = object()


class Accepted:
    """A validated event. Its marketing touchpoint is extracted on first use, not on the ingest path."""

    __slots__ = (
        "_touchpoint",
        "anonymous_id",
        "context",
        "group_id",
        "index",
        "message_id",
        "name",
        "original_timestamp",
        "previous_id",
        "properties",
        "sent_at",
        "timestamp",
        "traits",
        "type",
        "user_id",
    )  # fmt: skip

    def __init__(
        self,
        index: int,
        message_id: str,
        type: str,
        name: str | None,
        user_id: str | None,
        anonymous_id: str | None,
        group_id: str | None,
        previous_id: str | None,
        timestamp: datetime,
        original_timestamp: datetime | None,
        sent_at: datetime | None,
        properties: dict[str, Any] | None,
        traits: dict[str, Any] | None,
        context: dict[str, Any] | None,
        touchpoint: TouchpointData | None = _UNSET,
    ) -> None:
        self.index, self.message_id, self.type, self.name = index, message_id, type, name
        self.user_id, self.anonymous_id, self.group_id, self.previous_id = (
            user_id, anonymous_id, group_id, previous_id,
        )  # fmt: skip
        self.timestamp, self.original_timestamp, self.sent_at = timestamp, original_timestamp, sent_at
        self.properties, self.traits, self.context = properties, traits, context
        self._touchpoint = touchpoint

    @property
    def touchpoint(self) -> TouchpointData | None:
        if self._touchpoint is _UNSET:
            self._touchpoint = extract_touchpoint(self.type, self.properties, self.context)
        return self._touchpoint

    def __repr__(self) -> str:
        return f"Accepted(index={self.index}, message_id={self.message_id!r}, type={self.type!r})"


@dataclass(slots=True)
class Refused:
    index: int
    code: str
    message: str
    payload: Any
    message_id: str | None = None
    details: Any = None
    user_id: str | None = None
    anonymous_id: str | None = None
    raw: str | None = None  # set instead of payload when the payload itself cannot be stored


class _Refuse(Exception):
    def __init__(self, code: str, message: str, details: Any = None) -> None:
        super().__init__(message)
        self.code, self.message, self.details = code, message, details


def _id_field(msg: dict[str, Any], key: str) -> str | None:
    value = msg.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise _Refuse("invalid_identifier", f"{key} must be a string", {"field": key})
    if len(str(value)) > 255:
        raise _Refuse("invalid_identifier", f"{key} is longer than 255 characters", {"field": key})
    return clean_id(value)


def _object_field(msg: dict[str, Any], key: str) -> dict[str, Any] | None:
    value = msg.get(key)
    if value is None:
        return None
    if not isinstance(value, dict):
        raise _Refuse(f"invalid_{key}", f"{key} must be a JSON object", {"field": key})
    return value


def _time_field(msg: dict[str, Any], key: str) -> datetime | None:
    value = msg.get(key)
    if value is None:
        return None
    if type(value) is str:
        # The common case (an SDK's ISO-8601 UTC string) parsed directly; anything else takes the full path.
        try:
            parsed = datetime.fromisoformat(value)
            return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
        except (ValueError, OverflowError):
            pass  # parse_timestamp decides, with its own error
    try:
        return parse_timestamp(value)
    except (ValueError, OverflowError, OSError) as exc:
        raise _Refuse(
            "invalid_timestamp",
            f"{key} is not an ISO-8601 timestamp",
            {"field": key, "value": str(value)[:80]},
        ) from exc


def _message_id(msg: dict[str, Any], kind: str) -> str:
    value = msg.get("messageId")
    if value is None or value == "":
        # No id from the client: derive one from the content, so an identical re-send is still a duplicate. The
        # type is part of it: the same body sent to /v1/identify and to /v1/page is two events. (An event that
        # carries its type hashes as it always did; only a body whose type the endpoint implies gets a new id.)
        content = msg if msg.get("type") == kind else {**msg, "type": kind}
        digest = hashlib.sha256(orjson.dumps(content, option=orjson.OPT_SORT_KEYS)).hexdigest()[:32]
        return f"gen-{digest}"
    if isinstance(value, bool) or not isinstance(value, str | int):
        raise _Refuse("invalid_message_id", "messageId must be a string")
    text = str(value).strip()
    if not text or len(text) > 255:
        raise _Refuse("invalid_message_id", "messageId must be 1 to 255 characters")
    return text


def validate(
    raw: Any,
    *,
    index: int,
    received_at: datetime,
    serialized: bytes,
    max_bytes: int,
    implied_type: str | None = None,
    batch_sent_at: datetime | None = None,
    batch_context: dict[str, Any] | None = None,
) -> Accepted | Refused:
    if has_nul(serialized):
        message = "the event contains a NUL character (\\u0000), which cannot be stored"
        # Kept as escaped text instead of JSON: nothing is lost, and any database can hold it.
        return Refused(index, "invalid_characters", message, None, raw=escape_nul(serialized.decode()))
    if not isinstance(raw, dict):
        return Refused(index, "invalid_message", "each event must be a JSON object", raw)
    user_hint = raw.get("userId") if isinstance(raw.get("userId"), str) else None
    anon_hint = raw.get("anonymousId") if isinstance(raw.get("anonymousId"), str) else None
    mid_hint = raw.get("messageId") if isinstance(raw.get("messageId"), str) else None
    try:
        size = len(serialized)
        if size > max_bytes:
            raise _Refuse(
                "event_too_large",
                f"event is {size} bytes; the limit is {max_bytes} bytes",
                {"size": size, "limit": max_bytes},
            )
        kind = raw.get("type")
        if implied_type is not None:
            if kind is None:
                kind = implied_type
            elif kind != implied_type:
                raise _Refuse("type_mismatch", f"type {kind!r} sent to the /v1/{implied_type} endpoint")
        if kind is None:
            raise _Refuse("missing_type", "type is required (identify, track, page, screen, group or alias)")
        if not isinstance(kind, str) or kind not in TYPES:  # a dict or list is unhashable: never a type
            raise _Refuse("unknown_type", f"unknown type {str(kind)[:40]!r}", {"allowed": sorted(TYPES)})
        message_id = _message_id(raw, kind)
        user_id = _id_field(raw, "userId")
        anonymous_id = _id_field(raw, "anonymousId")
        previous_id = _id_field(raw, "previousId") if kind == "alias" else None
        group_id = _id_field(raw, "groupId") if kind == "group" else None
        if kind == "alias":
            if not user_id or not previous_id:
                raise _Refuse("missing_identity", "alias needs a usable userId and previousId")
        elif not user_id and not anonymous_id:
            raise _Refuse(
                "missing_identity",
                "a usable userId or anonymousId is required (junk values such as 'null' are ignored)",
                {"userId": raw.get("userId"), "anonymousId": raw.get("anonymousId")},
            )
        if kind == "group" and not group_id:
            raise _Refuse("missing_group_id", "group needs a usable groupId")
        name: str | None = None
        if kind == "track":
            event = raw.get("event")
            if not isinstance(event, str) or not event.strip():
                raise _Refuse("missing_event_name", "track needs an event name")
            if len(event) > 255:
                raise _Refuse("invalid_event_name", "event name is longer than 255 characters")
            name = event.strip()
        elif kind in ("page", "screen"):
            page_name = raw.get("name")
            if page_name is not None and not isinstance(page_name, str):
                raise _Refuse("invalid_name", "name must be a string")
            name = page_name[:255] if page_name else None
        properties = _object_field(raw, "properties")
        traits = _object_field(raw, "traits")
        context = _object_field(raw, "context")
        if batch_context:
            context = {**batch_context, **(context or {})}
        timestamp = _time_field(raw, "timestamp")
        original = _time_field(raw, "originalTimestamp") or timestamp
        sent_at = _time_field(raw, "sentAt") or batch_sent_at
    except _Refuse as refusal:
        return Refused(
            index, refusal.code, refusal.message, raw, mid_hint, refusal.details, user_hint, anon_hint
        )
    try:
        if original is not None and sent_at is not None:
            # The client's clock may be off: trust only the gap it measured between the event and the send.
            corrected = received_at - (sent_at - original)
        else:
            corrected = original or received_at
        if not EARLIEST <= corrected <= LATEST:
            raise OverflowError
    except OverflowError:
        message = "the event time, corrected for the client's clock, is outside 1970-01-01 .. 9999-12-31"
        details = {"timestamp": str(raw.get("timestamp"))[:80], "sentAt": str(raw.get("sentAt"))[:80]}
        return Refused(index, "timestamp_out_of_range", message, raw, mid_hint, details, user_hint, anon_hint)
    return Accepted(
        index=index,
        message_id=message_id,
        type=kind,
        name=name,
        user_id=user_id,
        anonymous_id=anonymous_id,
        group_id=group_id,
        previous_id=previous_id,
        timestamp=corrected,
        original_timestamp=original,
        sent_at=sent_at,
        properties=properties,
        traits=traits,
        context=context,
    )


def _unstorable(context: dict[str, Any]) -> tuple[str, str] | None:
    """Why a batch-level context (merged into each event) cannot be stored, or None."""
    try:
        serialized = orjson.dumps(context)
    except orjson.JSONEncodeError as exc:
        return _unencodable(exc, "the batch's context")
    if has_nul(serialized):
        return (
            "invalid_characters",
            "the batch's context contains a NUL character (\\u0000), which cannot be stored",
        )
    return None


@dataclass(slots=True)
class PreparedBatch:
    """A batch validated without touching the database (done before the write lock is taken)."""

    received_at: datetime
    count: int
    accepted: list[Accepted]
    refused: list[Refused]


def prepare_batch(
    messages: list[Any],
    *,
    received_at: datetime,
    max_event_bytes: int,
    implied_type: str | None = None,
    batch_sent_at: datetime | None = None,
    batch_context: dict[str, Any] | None = None,
    origin: Origin = "client",
) -> PreparedBatch:
    """Validate a batch; each accepted event's ``context.offerloop.origin`` says who sent it, set here only:
    "server" (offerloop itself: orders, subscriptions, messages), "creator" (a secret key, an import) — a
    client's (write key) own ``context.offerloop`` is dropped, so it cannot pass for either."""
    batch = PreparedBatch(received_at=received_at, count=len(messages), accepted=[], refused=[])
    context_problem = _unstorable(batch_context) if batch_context else None
    for i, raw in enumerate(messages):
        problem = context_problem
        serialized = b""
        if problem is None:
            try:
                serialized = orjson.dumps(raw)
            except orjson.JSONEncodeError as exc:
                problem = _unencodable(exc, "the event")
        if problem is not None:
            # Refused, and kept as text (with the batch's context when that is what cannot be stored).
            kept = {"context": batch_context, "event": raw} if problem is context_problem else raw
            hint = raw.get("messageId") if isinstance(raw, dict) else None
            batch.refused.append(Refused(i, problem[0], problem[1], None, message_id=_printable(hint),
                                         raw=escape_nul(dump_deep(kept))))  # fmt: skip
            continue
        outcome = validate(
            raw,
            index=i,
            received_at=received_at,
            serialized=serialized,
            max_bytes=max_event_bytes,
            implied_type=implied_type,
            batch_sent_at=batch_sent_at,
            batch_context=batch_context,
        )
        if isinstance(outcome, Accepted):
            _mark_origin(outcome, origin)
            batch.accepted.append(outcome)
        else:
            batch.refused.append(outcome)
    return batch


Origin = Literal["client", "creator", "server"]
ORIGIN_KEY: Final = "offerloop"  # context.offerloop.origin


def _mark_origin(event: Accepted, origin: Origin) -> None:
    context = event.context
    if origin == "client":
        if context and ORIGIN_KEY in context:
            event.context = {k: v for k, v in context.items() if k != ORIGIN_KEY}
        return
    event.context = {**(context or {}), ORIGIN_KEY: {"origin": origin}}


def origin_of(context: dict[str, Any] | None) -> Origin:
    """Who sent a stored event (see :func:`prepare_batch`)."""
    marked = (context or {}).get(ORIGIN_KEY)
    found = marked.get("origin") if isinstance(marked, dict) else None
    return found if found in ("creator", "server") else "client"
