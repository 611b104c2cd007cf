"""Every SQL statement of the portal: its sign-in links and sessions (everything else is read and changed
through the domains' services)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import func
from sqlalchemy.orm import Session

from offerloop.db.scoped import scoped_delete, scoped_select, scoped_update
from offerloop.models import PortalLoginToken, PortalSession


def add(session: Session, obj: PortalLoginToken | PortalSession) -> None:
    session.add(obj)
    session.flush()


def live_links(session: Session, workspace_id: str, buyer_id: str, now: datetime) -> int:
    """How many of the buyer's links could still be used."""
    stmt = scoped_select(PortalLoginToken, workspace_id, func.count()).where(
        PortalLoginToken.buyer_id == buyer_id,
        PortalLoginToken.used_at.is_(None),
        PortalLoginToken.expires_at > now,
    )
    return int(session.execute(stmt).scalar_one())


def delete_dead_links(session: Session, workspace_id: str, buyer_id: str, now: datetime) -> None:
    session.execute(
        scoped_delete(PortalLoginToken, workspace_id).where(
            PortalLoginToken.buyer_id == buyer_id,
            (PortalLoginToken.expires_at <= now) | PortalLoginToken.used_at.is_not(None),
        )
    )


def link_buyer(
    session: Session, workspace_id: str, token_hash: str, now: datetime
) -> tuple[str, datetime] | None:
    """(the buyer the link is for, when it was asked for) if it is unused and unexpired (read only: looking does
    not use it), or None."""
    stmt = scoped_select(
        PortalLoginToken, workspace_id, PortalLoginToken.buyer_id, PortalLoginToken.created_at
    ).where(
        PortalLoginToken.id == token_hash,
        PortalLoginToken.used_at.is_(None),
        PortalLoginToken.expires_at > now,
    )
    found = session.execute(stmt).one_or_none()
    return None if found is None else (found[0], found[1])


def use_link(
    session: Session, workspace_id: str, token_hash: str, now: datetime
) -> tuple[str, datetime] | None:
    """Mark the link used if it is unused and unexpired, in one conditional statement (two clicks racing:
    one wins); (the buyer it was for, when it was asked for), or None."""
    stmt = (
        scoped_update(PortalLoginToken, workspace_id)
        .where(
            PortalLoginToken.id == token_hash,
            PortalLoginToken.used_at.is_(None),
            PortalLoginToken.expires_at > now,
        )
        .values(used_at=now)
        .returning(PortalLoginToken.buyer_id, PortalLoginToken.created_at)
    )
    found = session.execute(stmt).one_or_none()
    return None if found is None else (found[0], found[1])


def live_session(session: Session, workspace_id: str, token_hash: str, now: datetime) -> PortalSession | None:
    stmt = scoped_select(PortalSession, workspace_id).where(
        PortalSession.id == token_hash, PortalSession.expires_at > now
    )
    return session.scalars(stmt).one_or_none()


def delete_session(session: Session, workspace_id: str, token_hash: str) -> None:
    session.execute(scoped_delete(PortalSession, workspace_id).where(PortalSession.id == token_hash))


def delete_expired_sessions(session: Session, workspace_id: str, buyer_id: str, now: datetime) -> None:
    session.execute(
        scoped_delete(PortalSession, workspace_id).where(
            PortalSession.buyer_id == buyer_id, PortalSession.expires_at <= now
        )
    )
