"""Every SQL statement of the console: its users and sessions (the pages read everything else through the
domains' services)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import select
from sqlalchemy.orm import Session

from offerloop.db.scoped import scoped_delete, scoped_select
from offerloop.models import ConsoleSession, ConsoleUser

# A login matches an e-mail in at most this many workspaces (each costs one argon2 verification).
MAX_ACCOUNTS_PER_EMAIL = 5


def add(session: Session, obj: ConsoleUser | ConsoleSession) -> None:
    session.add(obj)
    session.flush()


def user_by_email(session: Session, workspace_id: str, email: str) -> ConsoleUser | None:
    stmt = scoped_select(ConsoleUser, workspace_id).where(ConsoleUser.email == email)
    return session.scalars(stmt).one_or_none()


def users_by_email(session: Session, email: str) -> list[ConsoleUser]:
    """The enabled accounts with this e-mail in any workspace, at most one more than MAX_ACCOUNTS_PER_EMAIL
    (sign-in asks for e-mail and password, and for the workspace only when there are more)."""
    stmt = (
        select(ConsoleUser)
        .where(ConsoleUser.email == email, ConsoleUser.disabled_at.is_(None))
        .order_by(ConsoleUser.created_at, ConsoleUser.id)
        .limit(MAX_ACCOUNTS_PER_EMAIL + 1)
    )
    return list(session.scalars(stmt))


def list_users(session: Session, workspace_id: str) -> list[ConsoleUser]:
    stmt = scoped_select(ConsoleUser, workspace_id).order_by(ConsoleUser.email)
    return list(session.scalars(stmt))


def session_with_user(
    session: Session, token_hash: str, now: datetime
) -> tuple[ConsoleSession, ConsoleUser] | None:
    stmt = (
        select(ConsoleSession, ConsoleUser)
        .join(ConsoleUser, ConsoleUser.id == ConsoleSession.user_id)
        .where(
            ConsoleSession.id == token_hash,
            ConsoleSession.expires_at > now,
            ConsoleUser.disabled_at.is_(None),
            ConsoleUser.workspace_id == ConsoleSession.workspace_id,
        )
    )
    row = session.execute(stmt).one_or_none()
    return None if row is None else (row[0], row[1])


def delete_session(session: Session, workspace_id: str, token_hash: str) -> None:
    session.execute(scoped_delete(ConsoleSession, workspace_id).where(ConsoleSession.id == token_hash))


def delete_expired_sessions(session: Session, workspace_id: str, user_id: str, now: datetime) -> None:
    session.execute(
        scoped_delete(ConsoleSession, workspace_id).where(
            ConsoleSession.user_id == user_id, ConsoleSession.expires_at <= now
        )
    )


def set_password_hash(session: Session, user: ConsoleUser, password_hash: str) -> None:
    user.password_hash = password_hash
    session.flush()
