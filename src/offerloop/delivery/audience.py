"""The buyer as delivery sees them: where to reach them, what they agreed to, their zone, and the facts a
journey's conditions and templates read. Everything through the other domains' services."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from offerloop.entitlements import service as entitlements_service
from offerloop.features import service as features_service
from offerloop.identity import service as identity_service
from offerloop.identity.exceptions import BuyerNotFound
from offerloop.personas import service as persona_service


@dataclass(frozen=True)
class Recipient:
    buyer_id: str
    user_id: str | None
    email: str | None
    traits: dict[str, Any]
    marketing_consent: bool | None
    timezone: str | None
    deleted: bool


def recipient(session: Session, workspace_id: str, buyer_id: str) -> Recipient | None:
    """The buyer (or whom they were merged into), or None if there is no such buyer."""
    try:
        buyer = identity_service.get_buyer(session=session, workspace_id=workspace_id, buyer_id=buyer_id)
    except BuyerNotFound:
        return None
    traits = buyer.traits or {}
    email = traits.get("email") if isinstance(traits.get("email"), str) else None
    if not email:
        email = next((i.value for i in buyer.identities if i.kind == "email"), None)
    tz = traits.get("timezone")
    return Recipient(
        buyer_id=buyer.id, user_id=buyer.user_id, email=email, traits=dict(traits),
        marketing_consent=buyer.consent.marketing, timezone=tz if isinstance(tz, str) else None,
        deleted=buyer.deleted,
    )  # fmt: skip


def facts(
    session: Session, workspace_id: str, who: Recipient, properties: dict[str, Any] | None, now: datetime
) -> dict[str, Any]:
    """What a journey's conditions read (roots traits, features, persona, entitlements, properties)."""
    persona = persona_service.brief(session=session, workspace_id=workspace_id, buyer_id=who.buyer_id)
    return {
        "traits": who.traits,
        "features": features_service.read(
            session=session, workspace_id=workspace_id, buyer_id=who.buyer_id, now=now
        ),
        "persona": persona["name"] if persona else None,
        "entitlements": sorted(
            entitlements_service.active_keys(
                session=session, workspace_id=workspace_id, buyer_id=who.buyer_id, now=now
            )
        ),
        "properties": properties or {},
    }
