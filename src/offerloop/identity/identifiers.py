"""Which identifiers an event carries, normalised, with junk values thrown out."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

# The rules themselves live in core, shared with imports and checkout; re-exported for identity's callers.
from offerloop.core.identifiers import JUNK_VALUES as JUNK_VALUES
from offerloop.core.identifiers import clean_id as clean_id
from offerloop.core.identifiers import is_junk as is_junk
from offerloop.core.identifiers import normalize_email as normalize_email
from offerloop.core.identifiers import normalize_phone as normalize_phone

# dict first: events' JSON objects are dicts, and a check against the Mapping ABC alone costs ~5x.
_MAPPINGS = (dict, Mapping)

# Priority order when an event carries several identifiers: the strongest decides the buyer.
KIND_PRIORITY = (
    "user_id", "email", "phone", "stripe_customer", "tiktok", "instagram", "youtube", "facebook",
    "twitter", "discord", "patreon", "shopify_customer", "anonymous_id",
)  # fmt: skip
_RANK = {kind: i for i, kind in enumerate(KIND_PRIORITY)}
_UNRANKED = len(_RANK) - 1  # an ext:<type> identifier ranks with anonymous_id

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


def profile_traits(traits: Mapping[str, Any] | None, context: Mapping[str, Any] | None) -> dict[str, Any]:
    """The buyer traits an event carries: identify traits over context.traits."""
    out: dict[str, Any] = {}
    ctx_traits = context.get("traits") if isinstance(context, _MAPPINGS) else None
    if isinstance(ctx_traits, _MAPPINGS):
        out.update(ctx_traits)
    if isinstance(traits, _MAPPINGS):
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
    external = context.get("externalIds") if isinstance(context, _MAPPINGS) else None
    if isinstance(external, list):
        for item in external:
            if isinstance(item, _MAPPINGS) and isinstance(item.get("type"), str):
                type_key = item["type"].strip().lower()
                kind = PLATFORM_KEYS.get(type_key) or PLATFORM_KEYS.get(type_key + "_id") or f"ext:{type_key}"
                cleaned = clean_id(item.get("id"))
                if cleaned and len(kind) <= 32:
                    found[(kind, cleaned)] = None
    if anonymous_id:
        found[("anonymous_id", anonymous_id)] = None
    if len(found) < 2:
        return list(found)
    return sorted(found, key=lambda kv: _RANK.get(kv[0], _UNRANKED))
