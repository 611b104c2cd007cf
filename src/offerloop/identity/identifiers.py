"""Which identifiers an event carries, normalised, with junk values thrown out."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

# Values that SDKs and forms send when they have no real id; never treat them as an identity.
JUNK_VALUES = frozenset(
    {
        "", "null", "none", "nil", "undefined", "nan", "anonymous", "anon", "unknown", "guest",
        "0", "-1", "false", "true", "[object object]", "n/a", "na", "test", "user", "id",
        "{}", "[]", "<nil>", "(null)",
    }
)  # fmt: skip
_ALL_ZERO_UUID = re.compile(r"^[0-]+$")
_EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")

# Priority order when an event carries several identifiers: the strongest decides the buyer.
KIND_PRIORITY = (
    "user_id", "email", "phone", "stripe_customer", "tiktok", "instagram", "youtube", "facebook",
    "twitter", "discord", "patreon", "shopify_customer", "anonymous_id",
)  # fmt: skip

# Trait keys (and context.externalIds types) that name a platform identity.
PLATFORM_KEYS = {
    "stripe_customer_id": "stripe_customer",
    "stripecustomerid": "stripe_customer",
    "tiktok_id": "tiktok",
    "tiktokid": "tiktok",
    "instagram_id": "instagram",
    "instagramid": "instagram",
    "youtube_id": "youtube",
    "facebook_id": "facebook",
    "twitter_id": "twitter",
    "discord_id": "discord",
    "patreon_id": "patreon",
    "shopify_customer_id": "shopify_customer",
}


def is_junk(value: object) -> bool:
    if value is None:
        return True
    if not isinstance(value, str | int) or isinstance(value, bool):
        return True
    text = str(value).strip().lower()
    return text in JUNK_VALUES or bool(_ALL_ZERO_UUID.match(text))


def clean_id(value: object) -> str | None:
    """A usable id as a string, or None for absent/junk values. Numbers are accepted as ids."""
    if is_junk(value):
        return None
    text = str(value).strip()
    return text if len(text) <= 255 else None


def normalize_email(value: object) -> str | None:
    if not isinstance(value, str):
        return None
    text = value.strip().lower()
    return text if _EMAIL.match(text) and len(text) <= 320 else None


def normalize_phone(value: object) -> str | None:
    """E.164-ish: keep a leading + and the digits; fewer than 7 digits is not a phone number."""
    if not isinstance(value, str | int) or isinstance(value, bool):
        return None
    text = str(value).strip()
    digits = re.sub(r"\D", "", text)
    if text.startswith("00"):
        digits = digits[2:]
        text = "+" + digits
    if len(digits) < 7 or len(digits) > 15 or set(digits) == {"0"}:
        return None
    return ("+" if text.startswith("+") else "") + digits


def profile_traits(traits: Mapping[str, Any] | None, context: Mapping[str, Any] | None) -> dict[str, Any]:
    """The buyer traits an event carries: identify traits over context.traits."""
    out: dict[str, Any] = {}
    ctx_traits = context.get("traits") if isinstance(context, Mapping) else None
    if isinstance(ctx_traits, Mapping):
        out.update(ctx_traits)
    if isinstance(traits, Mapping):
        out.update(traits)
    return out


def extract(
    *,
    user_id: str | None,
    anonymous_id: str | None,
    traits: Mapping[str, Any],
    context: Mapping[str, Any] | None,
) -> list[tuple[str, str]]:
    """All identifiers of one event as (kind, value), strongest first, without duplicates."""
    found: dict[tuple[str, str], None] = {}
    if user_id:
        found[("user_id", user_id)] = None
    email = normalize_email(traits.get("email"))
    if email:
        found[("email", email)] = None
    phone = normalize_phone(traits.get("phone"))
    if phone:
        found[("phone", phone)] = None
    for key, value in traits.items():
        kind = PLATFORM_KEYS.get(key.lower())
        if kind:
            cleaned = clean_id(value)
            if cleaned:
                found[(kind, cleaned)] = None
    external = context.get("externalIds") if isinstance(context, Mapping) else None
    if isinstance(external, list):
        for item in external:
            if isinstance(item, Mapping) and isinstance(item.get("type"), str):
                type_key = item["type"].strip().lower()
                kind = PLATFORM_KEYS.get(type_key) or PLATFORM_KEYS.get(type_key + "_id") or f"ext:{type_key}"
                cleaned = clean_id(item.get("id"))
                if cleaned and len(kind) <= 32:
                    found[(kind, cleaned)] = None
    if anonymous_id:
        found[("anonymous_id", anonymous_id)] = None
    rank = {kind: i for i, kind in enumerate(KIND_PRIORITY)}
    return sorted(found, key=lambda kv: rank.get(kv[0], len(rank) - 1))
