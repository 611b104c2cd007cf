"""Team members and sessions of the console: create a user, sign in, resolve a session, sign out.

Sessions are rows on the server, not signed cookies: signing out, disabling a user or changing a role ends
or changes every session at once (a signed cookie stays valid until it expires, whoever holds a copy), and
the cookie is a random token whose SHA-256 is the row's key, so a copy of the table opens no session. A
console page reads its session by primary key (one indexed lookup), which a signed cookie would save only
at the price of revocation.
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from offerloop.console import passwords, repository
from offerloop.console.exceptions import BadCredentials, InvalidUser, UserExists, WorkspaceNeeded
from offerloop.console.schemas import ROLES, NewSession, Role, SignedIn, UserRead
from offerloop.core.clock import utcnow
from offerloop.core.identifiers import normalize_email
from offerloop.core.ids import new_id
from offerloop.models import ConsoleSession, ConsoleUser
from offerloop.workspaces import service as workspace_service

SESSION_HOURS = 12


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _read(user: ConsoleUser) -> UserRead:
    return UserRead(
        id=user.id, workspace_id=user.workspace_id, email=user.email, role=user.role,
        created_at=user.created_at,
    )  # fmt: skip


def _email(value: str) -> str:
    email = normalize_email(value)
    if email is None:
        raise InvalidUser("not an e-mail address", details={"field": "email"})
    return email


def check_password(password: str) -> None:
    if not passwords.MIN_LENGTH <= len(password) <= passwords.MAX_LENGTH:
        raise InvalidUser(
            f"a password has {passwords.MIN_LENGTH} to {passwords.MAX_LENGTH} characters",
            details={"field": "password", "min": passwords.MIN_LENGTH, "max": passwords.MAX_LENGTH},
        )


def create_user(*, session: Session, workspace_id: str, email: str, role: str, password: str) -> UserRead:
    """A new team member of the workspace (the e-mail is unique within it)."""
    workspace_service.get_workspace(session=session, workspace_id=workspace_id)
    address = _email(email)
    if role not in ROLES:
        raise InvalidUser(f"role must be one of {', '.join(ROLES)}", details={"field": "role"})
    check_password(password)
    if repository.user_by_email(session, workspace_id, address) is not None:
        raise UserExists(f"{address} is already a user of workspace {workspace_id}")
    user = ConsoleUser(
        id=new_id("usr"), workspace_id=workspace_id, email=address, role=role,
        password_hash=passwords.hash_password(password), created_at=utcnow(),
    )  # fmt: skip
    repository.add(session, user)
    workspace_service.audit(
        session, workspace_id, actor="cli", action="user.created", target_type="user", target_id=user.id,
        details={"email": address, "role": role},
    )  # fmt: skip
    return _read(user)


def list_users(*, session: Session, workspace_id: str) -> list[UserRead]:
    return [_read(u) for u in repository.list_users(session, workspace_id)]


def sign_in(
    *, session: Session, email: str, password: str, hours: float = SESSION_HOURS, now: datetime | None = None,
    workspace_id: str | None = None,
) -> NewSession:  # fmt: skip
    """A new session for the account this e-mail and password open (in ``workspace_id`` when given);
    BadCredentials otherwise (the same answer, and about the same time, for an unknown e-mail and a wrong
    password). An e-mail with accounts in more than MAX_ACCOUNTS_PER_EMAIL workspaces must name one."""
    now = now or utcnow()
    address = normalize_email(email)
    if address and workspace_id:
        one = repository.user_by_email(session, workspace_id, address)
        accounts = [one] if one is not None and one.disabled_at is None else []
    else:
        accounts = repository.users_by_email(session, address) if address else []
    if len(accounts) > repository.MAX_ACCOUNTS_PER_EMAIL:
        raise WorkspaceNeeded(
            "this e-mail has accounts in several workspaces: give the workspace id too",
            details={"field": "workspace"},
        )
    if len(password) > passwords.MAX_LENGTH:
        accounts = []
    matched = None
    candidates: list[ConsoleUser | None] = [*accounts] or [None]  # None: spend a verification anyway
    for user in candidates:
        if passwords.verify(user.password_hash if user else None, password[: passwords.MAX_LENGTH]) and user:
            matched = user
            break
    if matched is None:
        raise BadCredentials("the e-mail or the password is wrong")
    if passwords.needs_rehash(matched.password_hash):
        repository.set_password_hash(session, matched, passwords.hash_password(password))
    repository.delete_expired_sessions(session, matched.workspace_id, matched.id, now)
    token = secrets.token_urlsafe(32)
    row = ConsoleSession(
        id=token_hash(token), user_id=matched.id, workspace_id=matched.workspace_id,
        csrf_token=secrets.token_urlsafe(32), created_at=now, expires_at=now + timedelta(hours=hours),
    )  # fmt: skip
    repository.add(session, row)
    return NewSession(token=token, signed_in=_signed_in(row, matched), expires_at=row.expires_at)


def _signed_in(row: ConsoleSession, user: ConsoleUser) -> SignedIn:
    role: Role = user.role  # type: ignore[assignment]
    return SignedIn(
        user_id=user.id, workspace_id=user.workspace_id, email=user.email, role=role,
        csrf_token=row.csrf_token, session_hash=row.id,
    )  # fmt: skip


def signed_in(*, session: Session, token: str, now: datetime | None = None) -> SignedIn | None:
    """Who this cookie's token signs in, or None (unknown, expired, or its user disabled)."""
    if not token or len(token) > 128:
        return None
    found = repository.session_with_user(session, token_hash(token), now or utcnow())
    return None if found is None else _signed_in(*found)


def sign_out(*, session: Session, workspace_id: str, session_hash: str) -> None:
    repository.delete_session(session, workspace_id, session_hash)
