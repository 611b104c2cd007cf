"""The buyer as delivery sees them: where to reach them, what they agreed to, their zone, and the facts a
journey's conditions and templates read. Everything through the other domains' services."""

from __future__ import annotations

from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from offerloop.entitlements import service as entitlements_service
from offerloop.features import service as features_service
from offerloop.identity import service as identity_service
from offerloop.identity.exceptions import BuyerNotFound
from offerloop.identity.schemas import BuyerRead
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
    record: BuyerRead | None = field(
        default=None, compare=False, repr=False
    )  # as read: feedback events reuse it


def recipient(session: Session, workspace_id: str, buyer_id: str) -> Recipient | None:
    """The buyer (or whom they were merged into), or None if there is no such buyer."""
    try:
        buyer = identity_service.contact(session=session, workspace_id=workspace_id, buyer_id=buyer_id)
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
        deleted=buyer.deleted, record=buyer,
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


class Lazy(Mapping[str, Any]):
    """A mapping loaded on first use: a template that never reads ``features`` costs no features read."""

    def __init__(self, load: Callable[[], Mapping[str, Any]]) -> None:
        self._load: Callable[[], Mapping[str, Any]] | None = load
        self._data: Mapping[str, Any] = {}

    def _get(self) -> Mapping[str, Any]:
        if self._load is not None:
            self._data, self._load = self._load(), None
        return self._data

    def __getitem__(self, key: str) -> Any:
        return self._get()[key]

    def __iter__(self) -> Iterator[str]:
        return iter(self._get())

    def __len__(self) -> int:
        return len(self._get())


def template_facts(
    session: Session, workspace_id: str, who: Recipient, now: datetime, *, with_persona: bool = True
) -> tuple[Mapping[str, Any], str | None, Lazy]:
    """``features`` (read lazily), ``persona`` (read only ``with_persona``: a template that names it) and
    ``entitlements`` (lazily) for a message template."""
    persona = (
        persona_service.brief(session=session, workspace_id=workspace_id, buyer_id=who.buyer_id)
        if with_persona
        else None
    )
    features = Lazy(lambda: features_service.read(session=session, workspace_id=workspace_id,
                                                  buyer_id=who.buyer_id, now=now))  # fmt: skip
    entitled = Lazy(lambda: {k: True for k in sorted(entitlements_service.active_keys(
        session=session, workspace_id=workspace_id, buyer_id=who.buyer_id, now=now))})  # fmt: skip
    return features, (persona["name"] if persona else None), entitled
