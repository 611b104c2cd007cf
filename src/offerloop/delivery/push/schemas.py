"""Pydantic I/O of the push channel: the public VAPID key, a browser's subscription, send results."""

from __future__ import annotations

import base64
import binascii
import re
from datetime import datetime
from typing import Any, Literal

from cryptography.hazmat.primitives.asymmetric import ec
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from offerloop.core.identifiers import clean_id

Urgency = Literal["very-low", "low", "normal", "high"]
_B64URL = re.compile(r"^[A-Za-z0-9_-]+={0,2}$")


def b64url_decode(value: str) -> bytes:
    """Bytes of base64url text, padded or not (browsers send it unpadded); ValueError if it is not."""
    if not _B64URL.match(value):
        raise ValueError("must be base64url (A-Z a-z 0-9 - _)")
    try:
        return base64.urlsafe_b64decode(value.rstrip("=") + "=" * (-len(value.rstrip("=")) % 4))
    except (binascii.Error, ValueError):
        raise ValueError("must be base64url") from None


def b64url(raw: bytes) -> str:
    return base64.urlsafe_b64encode(raw).rstrip(b"=").decode()


class VapidPublicKey(BaseModel):
    public_key: str = Field(
        description="The workspace's VAPID public key: an uncompressed P-256 point, base64url, for "
        "`pushManager.subscribe({applicationServerKey})`"
    )


class PushKeys(BaseModel):
    model_config = ConfigDict(extra="ignore")

    p256dh: str = Field(max_length=200, description="The browser's P-256 public key (65 bytes, base64url)")
    auth: str = Field(max_length=100, description="The 16-byte authentication secret, base64url")

    @field_validator("p256dh")
    @classmethod
    def _p256dh(cls, value: str) -> str:
        raw = b64url_decode(value)
        if len(raw) != 65 or raw[0] != 4:
            raise ValueError("must be an uncompressed P-256 point (65 bytes starting with 0x04)")
        try:
            ec.EllipticCurvePublicKey.from_encoded_point(ec.SECP256R1(), raw)
        except ValueError:
            raise ValueError("is not a point on the P-256 curve") from None
        return b64url(raw)

    @field_validator("auth")
    @classmethod
    def _auth(cls, value: str) -> str:
        raw = b64url_decode(value)
        if len(raw) != 16:
            raise ValueError("must be 16 bytes")
        return b64url(raw)


class BrowserSubscription(BaseModel):
    """What ``PushSubscription.toJSON()`` gives in the browser."""

    model_config = ConfigDict(extra="ignore", populate_by_name=True)

    endpoint: str = Field(max_length=2048)
    expiration_time: float | None = Field(default=None, alias="expirationTime")
    keys: PushKeys


class PushSubscriptionIn(BaseModel):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    user_id: str | None = Field(
        default=None, alias="userId", max_length=200,
        description="The buyer's userId: with the secret key only (with the write key, send a token instead)",
    )  # fmt: skip
    anonymous_id: str | None = Field(default=None, alias="anonymousId", max_length=200)
    token: str | None = Field(
        default=None, min_length=1, max_length=4096,
        description="A buyer token from POST /v1/inbox/tokens (your backend mints it with the secret key): the "
        "subscription is that buyer's, whoever the page says it is",
    )  # fmt: skip
    subscription: BrowserSubscription

    @model_validator(mode="after")
    def _someone(self) -> PushSubscriptionIn:
        self.user_id = clean_id(self.user_id) if self.user_id is not None else None
        self.anonymous_id = clean_id(self.anonymous_id) if self.anonymous_id is not None else None
        if not (self.user_id or self.anonymous_id or self.token):
            raise ValueError("give a token, userId or anonymousId (a usable id)")
        if self.token and (self.user_id or self.anonymous_id):
            raise ValueError("give a token or ids, not both: the token names the buyer")
        return self


class PushSubscriptionRead(BaseModel):
    id: str
    user_id: str | None
    anonymous_id: str | None
    resolved: bool = Field(
        description="Whether the id already names a known buyer (else it is resolved later)"
    )
    verified: bool = Field(
        description="Whether the owner was named by the secret key or a buyer token. An unverified (anonymous) "
        "subscription receives pushes only while its buyer has no userId: register again with a buyer token "
        "once the visitor signs in"
    )
    created_at: datetime
    updated_at: datetime


class UnsubscribeIn(BaseModel):
    model_config = ConfigDict(extra="ignore")

    endpoint: str = Field(max_length=2048)


class Unsubscribed(BaseModel):
    deleted: bool


class PushSendIn(BaseModel):
    model_config = ConfigDict(extra="forbid")

    buyer_id: str = Field(max_length=40)
    payload: dict[str, Any] = Field(description="JSON the service worker receives (title, body, url, …)")
    ttl_s: int = Field(default=86400, ge=0, le=28 * 86400)
    urgency: Urgency = "normal"
    topic: str | None = Field(default=None, max_length=32, pattern=r"^[A-Za-z0-9_-]+$")


class PushSendResult(BaseModel):
    subscription_id: str
    status: Literal["sent", "gone", "failed"] = Field(
        description="`gone`: the push service answered 404/410 and the subscription was deleted"
    )
    status_code: int | None = None
    error: str | None = None
