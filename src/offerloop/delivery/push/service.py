"""Web push: VAPID keys made on first use, buyers' subscriptions, and encrypted sends through pywebpush.

``send`` makes the HTTP requests to the push services itself (one per subscription, bounded by a timeout):
call it from a job, not from a request holding the database's writer for long.
"""

from __future__ import annotations

import hashlib
import re
import time
from dataclasses import dataclass
from datetime import datetime
from email.utils import parseaddr
from http import HTTPStatus
from typing import Any
from urllib.parse import urlsplit

import httpx
import orjson
import requests
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from py_vapid import Vapid
from pywebpush import WebPushException, webpush
from sqlalchemy.orm import Session

from offerloop.core.clock import utcnow
from offerloop.core.ids import new_id
from offerloop.db.uow import Database
from offerloop.delivery.push import repository
from offerloop.delivery.push.exceptions import InvalidSubscription, PushPayloadTooLarge
from offerloop.delivery.push.schemas import (
    PushSendResult,
    PushSubscriptionIn,
    PushSubscriptionRead,
    Unsubscribed,
    Urgency,
    b64url,
)
from offerloop.delivery.webhooks import sender as webhook_sender
from offerloop.delivery.webhooks import targets
from offerloop.delivery.webhooks.exceptions import InvalidTargetUrl
from offerloop.identity import service as identity_service
from offerloop.identity.exceptions import BuyerNotFound
from offerloop.models.delivery_channels import PushSubscription

# RFC 8291 §4: one aes128gcm record of at most 4096 bytes, less its header (86), tag (16) and delimiter (1).
MAX_PAYLOAD_BYTES = 3993
VAPID_EXPIRY_S = 12 * 3600  # RFC 8292 §2: at most 24 hours
_TOPIC = re.compile(r"[A-Za-z0-9_-]{1,32}")  # RFC 8030 §5.4


# A push goes to the buyer's newest subscriptions only: anyone with the public write key can subscribe endpoints
# for an anonymous visitor's id, a buyer's own browser may register many times over the years, and each is a
# request of up to the timeout (a person has a browser or two per device).
MAX_SUBSCRIPTIONS_PER_PUSH = 10


@dataclass(frozen=True)
class PushConfig:
    subject: str = "mailto:push@localhost"
    allow_private: bool = False
    timeout_s: float = 10.0


_config = PushConfig()


def vapid_subject(settings: Any) -> str:
    """The VAPID ``sub`` claim: ``mailto:`` the sender address if one is set, else the public https URL's
    origin, else ``mailto:push@<public host>`` (a contact the push service can reach is best)."""
    mail_from = getattr(settings, "mail_from", None)
    if mail_from:
        address = parseaddr(str(mail_from))[1]
        if "@" in address and address.rsplit("@", 1)[1] not in ("localhost", "localhost.localdomain"):
            return f"mailto:{address}"  # the default no-reply@localhost reaches nobody: not a contact
    parts = urlsplit(settings.public_url)
    if parts.scheme == "https" and parts.hostname and parts.port is None:
        return f"https://{parts.hostname}"
    return f"mailto:push@{parts.hostname or 'localhost'}"


def configure(settings: Any) -> None:
    """Set this process's push configuration from ``Settings``."""
    global _config
    _config = PushConfig(
        subject=vapid_subject(settings), allow_private=settings.webhook_allow_private,
        timeout_s=settings.webhook_timeout_s,
    )  # fmt: skip


def current() -> PushConfig:
    return _config


def endpoint_hash(endpoint: str) -> str:
    return hashlib.sha256(endpoint.encode()).hexdigest()


# --- VAPID ------------------------------------------------------------------------------------------------


def _vapid(session: Session, workspace_id: str, now: datetime) -> tuple[str, str]:
    """(private PEM, public key) of the workspace, made and stored on first use."""
    row = repository.vapid_key(session, workspace_id)
    if row is None:
        key = ec.generate_private_key(ec.SECP256R1())
        pem = key.private_bytes(
            serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        ).decode()
        public = b64url(
            key.public_key().public_bytes(
                serialization.Encoding.X962, serialization.PublicFormat.UncompressedPoint
            )
        )
        repository.insert_vapid_key(
            session, workspace_id=workspace_id, private_pem=pem, public_key=public, now=now
        )
        row = repository.vapid_key(session, workspace_id)
        assert row is not None
    return row.private_pem, row.public_key


def vapid_public_key(*, session: Session, workspace_id: str, now: datetime | None = None) -> str:
    """The applicationServerKey browsers subscribe with (base64url, uncompressed P-256 point)."""
    return _vapid(session, workspace_id, now or utcnow())[1]


# --- subscriptions ----------------------------------------------------------------------------------------


def _read(row: PushSubscription) -> PushSubscriptionRead:
    return PushSubscriptionRead(
        id=row.id, user_id=row.user_id, anonymous_id=row.anonymous_id, resolved=row.buyer_id is not None,
        verified=row.verified, created_at=row.created_at, updated_at=row.updated_at,
    )  # fmt: skip


def _resolve(
    session: Session, workspace_id: str, user_id: str | None, anonymous_id: str | None
) -> str | None:
    for kind, value in (("user_id", user_id), ("anonymous_id", anonymous_id)):
        if value:
            try:
                return identity_service.find_buyer(
                    session=session, workspace_id=workspace_id, **{kind: value}
                )[0]
            except BuyerNotFound:
                continue
    return None


def subscribe(
    *,
    session: Session,
    workspace_id: str,
    body: PushSubscriptionIn,
    allow_private: bool,
    buyer_id: str | None = None,
    vouched: bool = False,
    now: datetime | None = None,
) -> PushSubscriptionRead:
    """Store (or update: same endpoint) a browser's subscription for the buyer the id names, resolved now if
    the buyer is known, else when something is first sent to them; or, with ``buyer_id`` (a buyer token's,
    checked by the caller), for that buyer, kept by its userId (else an anonymousId) so it follows merges.
    It is verified when the caller vouches for the ids (the secret key) or names the buyer by token; a
    visitor's own anonymousId is not, and receives pushes only while its buyer has no userId."""
    now = now or utcnow()
    endpoint = body.subscription.endpoint
    try:
        targets.check_url(
            endpoint, allow_private=allow_private, schemes=("https", "http") if allow_private else ("https",)
        )
    except InvalidTargetUrl as exc:
        raise InvalidSubscription(f"subscription.endpoint: {exc.message}") from None
    user_id, anonymous_id = body.user_id, body.anonymous_id
    verified = vouched or buyer_id is not None
    if buyer_id is not None:
        buyer = identity_service.get_buyer(session=session, workspace_id=workspace_id, buyer_id=buyer_id)
        if buyer.deleted:
            raise BuyerNotFound(f"buyer {buyer_id} was erased")
        buyer_id = buyer.id
        user_id = next((i.value for i in buyer.identities if i.kind == "user_id"), None)
        anonymous_id = (
            None if user_id else next((i.value for i in buyer.identities if i.kind == "anonymous_id"), None)
        )
    else:
        buyer_id = _resolve(session, workspace_id, user_id, anonymous_id)
    digest = endpoint_hash(endpoint)
    row = repository.subscription_by_hash(session, workspace_id, digest)
    if row is None:
        row = PushSubscription(
            id=new_id("psub"), workspace_id=workspace_id, endpoint=endpoint, endpoint_hash=digest, created_at=now,
        )  # fmt: skip
    row.buyer_id, row.user_id, row.anonymous_id, row.verified = buyer_id, user_id, anonymous_id, verified
    row.p256dh, row.auth = body.subscription.keys.p256dh, body.subscription.keys.auth
    row.updated_at = now
    repository.add(session, row)
    return _read(row)


def unsubscribe(*, session: Session, workspace_id: str, endpoint: str) -> Unsubscribed:
    return Unsubscribed(deleted=repository.delete_by_hash(session, workspace_id, endpoint_hash(endpoint)))


# --- sending ----------------------------------------------------------------------------------------------


def _subscriptions(session: Session, workspace_id: str, buyer_id: str) -> list[PushSubscription]:
    buyer = identity_service.get_buyer(session=session, workspace_id=workspace_id, buyer_id=buyer_id)
    user_ids = [i.value for i in buyer.identities if i.kind == "user_id"]
    anonymous_ids = [i.value for i in buyer.identities if i.kind == "anonymous_id"]
    rows = list(
        repository.subscriptions_of(
            session,
            workspace_id,
            buyer_ids=list({buyer_id, buyer.id}),
            user_ids=user_ids,
            anonymous_ids=anonymous_ids,
            # A known buyer's pushes go to devices vouched for under a userId: an anonymous subscription (vouched
            # for or not) may have been merged into this buyer by a write-key identify that anyone can send.
            verified_only=bool(user_ids),
            limit=MAX_SUBSCRIPTIONS_PER_PUSH,
        )
    )
    repository.adopt(session, workspace_id, [r.id for r in rows if r.buyer_id != buyer.id], buyer_id=buyer.id)
    return rows


class _CheckedSession(requests.Session):
    """What pywebpush posts through: webhooks' ``exchange`` to the address that was checked (a DNS answer that
    changes after the check cannot point the request elsewhere), a bounded answer and one deadline for it all."""

    def __init__(self, target: targets.Target, timeout_s: float) -> None:
        super().__init__()
        self.trust_env = False
        self.target, self.timeout_s = target, timeout_s

    def post(self, url: Any, data: Any = None, json: Any = None, **kwargs: Any) -> requests.Response:
        headers = {str(k): str(v) for k, v in (kwargs.get("headers") or {}).items()}
        status, raw = webhook_sender.exchange(self.target, body=bytes(data or b""), headers=headers,
                                              timeout_s=self.timeout_s)  # fmt: skip
        response = requests.Response()
        response.status_code, response.url, response._content = status, str(url), raw
        response.reason = HTTPStatus(status).phrase if status in HTTPStatus._value2member_map_ else ""
        return response


def _push(
    row: PlannedSubscription, *, data: str, vapid: Vapid, subject: str, ttl_s: int, headers: dict[str, str],
    config: PushConfig,
) -> PushSendResult:  # fmt: skip
    try:
        target = targets.resolve(
            row.endpoint, allow_private=config.allow_private,
            schemes=("https", "http") if config.allow_private else ("https",),
        )  # fmt: skip
    except InvalidTargetUrl as exc:
        return PushSendResult(subscription_id=row.id, status="failed", error=f"refused: {exc.message}"[:500])
    parts = urlsplit(row.endpoint)
    claims: dict[str, str | int] = {
        "sub": subject, "aud": f"{parts.scheme}://{parts.netloc}", "exp": int(time.time()) + VAPID_EXPIRY_S,
    }  # fmt: skip
    info = {"endpoint": row.endpoint, "keys": {"p256dh": row.p256dh, "auth": row.auth}}
    with _CheckedSession(target, config.timeout_s) as http:  # a redirect is an answer, never followed
        try:
            response = webpush(
                info, data=data, vapid_private_key=vapid, vapid_claims=claims, content_encoding="aes128gcm",
                timeout=config.timeout_s, ttl=ttl_s, headers=dict(headers), requests_session=http,
            )  # fmt: skip
        except WebPushException as exc:
            code = exc.status_code
            status = "gone" if code in (404, 410) else "failed"
            return PushSendResult(
                subscription_id=row.id, status=status, status_code=code, error=exc.message[:500]
            )
        except httpx.TimeoutException:
            return PushSendResult(
                subscription_id=row.id, status="failed", error=f"timed out after {config.timeout_s:g}s"
            )
        except httpx.HTTPError as exc:
            return PushSendResult(
                subscription_id=row.id, status="failed", error=f"{type(exc).__name__}: {exc}"[:500]
            )
    code = getattr(response, "status_code", None)
    return PushSendResult(subscription_id=row.id, status="sent", status_code=code)


@dataclass(frozen=True)
class PlannedSubscription:
    """What a push to one subscription needs, read before the requests (which hold no transaction)."""

    id: str
    endpoint: str
    p256dh: str
    auth: str


@dataclass(frozen=True)
class PushPlan:
    """A push to every subscription of a buyer, read and checked in one transaction; ``post`` sends it with none
    (a push service is the buyer's choice and may take its time: SQLite's writer must not wait for it)."""

    workspace_id: str
    subscriptions: tuple[PlannedSubscription, ...]
    data: str
    vapid_pem: str
    ttl_s: int
    headers: dict[str, str]


def plan(
    session: Session, *, workspace_id: str, buyer_id: str, payload: dict[str, Any], ttl_s: int,
    urgency: Urgency = "normal", topic: str | None = None, now: datetime | None = None,
) -> PushPlan:  # fmt: skip
    """Check a push of ``payload`` (JSON, encrypted per subscription with aes128gcm) and read the buyer's
    subscriptions and the workspace's VAPID key. ``urgency`` and ``topic`` (a replacement key, up to 32 base64url
    characters) are RFC 8030's headers; ``ttl_s`` how long the push service keeps the message for an offline
    browser."""
    now = now or utcnow()
    data = orjson.dumps(payload).decode()
    if len(data.encode()) > MAX_PAYLOAD_BYTES:
        raise PushPayloadTooLarge(f"a push payload is at most {MAX_PAYLOAD_BYTES} bytes of JSON")
    if topic is not None and not _TOPIC.fullmatch(topic):
        raise InvalidSubscription("topic must be 1 to 32 base64url characters")
    if ttl_s < 0:
        raise ValueError("ttl_s must be >= 0")
    rows = _subscriptions(session, workspace_id, buyer_id)
    subscriptions = tuple(PlannedSubscription(r.id, r.endpoint, r.p256dh, r.auth) for r in rows)
    pem = _vapid(session, workspace_id, now)[0] if subscriptions else ""
    headers = {"Urgency": urgency, **({"Topic": topic} if topic else {})}
    return PushPlan(workspace_id, subscriptions, data, pem, ttl_s, headers)


def post(planned: PushPlan, *, config: PushConfig | None = None) -> list[PushSendResult]:
    """Send the planned push to each subscription (no database here)."""
    config = config or _config
    if not planned.subscriptions:
        return []
    vapid = Vapid.from_pem(planned.vapid_pem.encode())
    each = {"data": planned.data, "vapid": vapid, "subject": config.subject, "ttl_s": planned.ttl_s,
            "headers": planned.headers, "config": config}  # fmt: skip
    return [_push(row, **each) for row in planned.subscriptions]


def record(
    session: Session, planned: PushPlan, results: list[PushSendResult], now: datetime | None = None
) -> None:
    """Delete the subscriptions the push service said are gone (404, 410); note when the others were sent to."""
    now = now or utcnow()
    for result in results:
        if result.status == "gone":
            repository.delete_subscription(session, planned.workspace_id, result.subscription_id)
        elif result.status == "sent":
            repository.mark_sent(session, planned.workspace_id, result.subscription_id, now=now)


def send(
    db: Database, *, workspace_id: str, buyer_id: str, payload: dict[str, Any], ttl_s: int,
    urgency: Urgency = "normal", topic: str | None = None, now: datetime | None = None,
    config: PushConfig | None = None,
) -> list[PushSendResult]:  # fmt: skip
    """Push ``payload`` to every subscription of the buyer: ``plan`` and ``record`` in a transaction each, the
    requests between them in none. A subscription the push service answers 404 or 410 for is deleted."""
    with db.write() as session:  # a write: the VAPID key is made on first use, subscriptions adopted
        planned = plan(session, workspace_id=workspace_id, buyer_id=buyer_id, payload=payload, ttl_s=ttl_s,
                       urgency=urgency, topic=topic, now=now)  # fmt: skip
    results = post(planned, config=config)
    if results:
        with db.write() as session:
            record(session, planned, results, now)
    return results
