"""Buyers' sign-in by magic link, and their portal sessions.

A link is a random token mailed through delivery (the workspace's sender, as a transactional message); only
its SHA-256 is stored, it works once and for ``LINK_MINUTES``. Following it starts a server-side session
whose cookie token is new (never one the browser brought: no session fixation); only its SHA-256 is stored,
as for the console's sessions. A session names the buyer who signed in; every request resolves them to the
live buyer (a merged buyer's session follows the survivor; an erased buyer's session opens nothing; a session or
link made while a merge into its buyer stood ends when that merge is undone: the address may be the other side's).
"""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from offerloop.core.clock import utcnow
from offerloop.core.identifiers import normalize_email
from offerloop.delivery import service as delivery_service
from offerloop.identity import service as identity_service
from offerloop.identity.exceptions import BuyerNotFound
from offerloop.identity.schemas import BuyerRead
from offerloop.models import PortalLoginToken, PortalSession
from offerloop.portal import repository
from offerloop.portal.exceptions import InvalidPortalForm, LinkNotValid
from offerloop.portal.schemas import NewPortalSession, SignedInBuyer
from offerloop.workspaces import service as workspace_service

LINK_MINUTES = 15
SESSION_HOURS = 24
# Unused links a buyer may hold at once: more requests send nothing (a mailbox is not flooded, and the
# answer is the same as for an unknown address).
MAX_LIVE_LINKS = 3
MAX_TOKEN_LENGTH = 128
LINK_REFUSED_TEXT = (
    f"This sign-in link is invalid or has expired (a link works once, for {LINK_MINUTES} minutes). "
    "Ask for a new one on the sign-in page."
)
USED_TEXT = "This sign-in link was used. Ask for a new one on the sign-in page if you need it."


def token_hash(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def _outbox_key(link_hash: str) -> str:
    return f"portal-sign-in/{link_hash}"


def workspace_name(*, session: Session, workspace_id: str) -> str:
    """The workspace's name (WorkspaceNotFound, a 404, when there is none by that id)."""
    return workspace_service.get_workspace(session=session, workspace_id=workspace_id).name


def link_url(public_url: str, workspace_id: str, token: str) -> str:
    return f"{public_url.rstrip('/')}/p/{workspace_id}/auth?token={token}"


def checked_address(email: str) -> str:
    """The normalised address, or InvalidPortalForm (its form only: nothing about who buys)."""
    address = normalize_email(email)
    if address is None:
        raise InvalidPortalForm("that is not an e-mail address", details={"field": "email"})
    return address


def request_link(
    *, session: Session, workspace_id: str, email: str, public_url: str, now: datetime | None = None
) -> bool:
    """Mail a sign-in link if ``email`` is an address of a live buyer of the workspace. Whether one was
    sent is returned for tests and logs only: the page answers the same either way."""
    now = now or utcnow()
    name = workspace_name(session=session, workspace_id=workspace_id)
    address = checked_address(email)
    try:
        buyer = identity_service.lookup(session=session, workspace_id=workspace_id, email=address)
    except BuyerNotFound:
        return False
    if buyer.deleted:
        return False
    repository.delete_dead_links(session, workspace_id, buyer.id, now)
    if repository.live_links(session, workspace_id, buyer.id, now) >= MAX_LIVE_LINKS:
        return False
    token = secrets.token_urlsafe(32)
    link_hash = token_hash(token)
    repository.add(session, PortalLoginToken(id=link_hash, workspace_id=workspace_id, buyer_id=buyer.id,
                                             created_at=now, expires_at=now + timedelta(minutes=LINK_MINUTES)))  # fmt: skip
    text = (
        f"Hello,\n\nsomeone (we hope you) asked to sign in to the buyer portal of {name} with this address.\n"
        f"Open this link within {LINK_MINUTES} minutes to sign in; it works once:\n\n"
        f"{link_url(public_url, workspace_id, token)}\n\n"
        "If you did not ask for it, ignore this e-mail: nothing happens without the link.\n"
    )
    delivery_service.queue_email(
        session=session, workspace_id=workspace_id, buyer_id=buyer.id, key=_outbox_key(link_hash),
        recipient=address, subject=f"Your sign-in link for {name}", text=text, public_url=public_url, now=now,
    )  # fmt: skip
    return True


def check_link(*, session: Session, workspace_id: str, token: str, now: datetime | None = None) -> None:
    """LinkNotValid unless ``token`` is a link that would sign in now (unused, unexpired, its buyer live):
    what the confirm page asks before it shows its button. Looking does not use the link."""
    if not token or len(token) > MAX_TOKEN_LENGTH:
        raise LinkNotValid(LINK_REFUSED_TEXT)
    link = repository.link_buyer(session, workspace_id, token_hash(token), now or utcnow())
    if link is None or _live(session, workspace_id, *link) is None:
        raise LinkNotValid(LINK_REFUSED_TEXT)


def sign_in_with_link(
    *, session: Session, workspace_id: str, token: str, previous_token: str = "", now: datetime | None = None
) -> NewPortalSession:
    """Use the link (once) and start a new session for its buyer; the browser's previous session ends."""
    now = now or utcnow()
    refused = LinkNotValid(LINK_REFUSED_TEXT)
    if not token or len(token) > MAX_TOKEN_LENGTH:
        raise refused
    link_hash = token_hash(token)
    link = repository.use_link(session, workspace_id, link_hash, now)
    if link is None:
        raise refused
    buyer = _live(session, workspace_id, *link)
    if buyer is None:
        raise refused
    # the outbox keeps no working secret once the link is used
    delivery_service.replace_email_text(
        session=session, workspace_id=workspace_id, key=_outbox_key(link_hash), text=USED_TEXT
    )
    if previous_token and len(previous_token) <= MAX_TOKEN_LENGTH:
        repository.delete_session(session, workspace_id, token_hash(previous_token))
    repository.delete_expired_sessions(session, workspace_id, buyer.id, now)
    new_token = secrets.token_urlsafe(32)
    expires = now + timedelta(hours=SESSION_HOURS)
    repository.add(session, PortalSession(id=token_hash(new_token), workspace_id=workspace_id, buyer_id=buyer.id,
                                          csrf_token=secrets.token_urlsafe(32), created_at=now, expires_at=expires))  # fmt: skip
    return NewPortalSession(token=new_token, buyer_id=buyer.id, expires_at=expires)


def _live(session: Session, workspace_id: str, buyer_id: str, since: datetime) -> BuyerRead | None:
    """The live buyer a link or session (made at ``since``) opens, or None: erased, or reached through a merge
    undone since (a sign-in with an address then merged into this buyer may be the other buyer's: ended, the
    buyer signs in again and reaches their own record)."""
    try:
        buyer = identity_service.get_buyer(session=session, workspace_id=workspace_id, buyer_id=buyer_id)
    except BuyerNotFound:
        return None
    if buyer.deleted or identity_service.merge_undone_around(
        session=session, workspace_id=workspace_id, buyer_id=buyer.id, at=since
    ):
        return None
    return buyer


def signed_in(
    *, session: Session, workspace_id: str, token: str, now: datetime | None = None
) -> SignedInBuyer | None:
    """Who this cookie's token signs in to this workspace's portal, or None (unknown, expired, another
    workspace's, or their buyer erased)."""
    if not token or len(token) > MAX_TOKEN_LENGTH:
        return None
    row = repository.live_session(session, workspace_id, token_hash(token), now or utcnow())
    if row is None:
        return None
    buyer = _live(session, workspace_id, row.buyer_id, row.created_at)
    if buyer is None:
        return None
    email = next((i.value for i in buyer.identities if i.kind == "email"), None)
    name = buyer.traits.get("name") or buyer.traits.get("first_name")
    return SignedInBuyer(
        workspace_id=workspace_id, workspace_name=workspace_name(session=session, workspace_id=workspace_id),
        buyer_id=buyer.id, email=email, name=str(name)[:200] if name else None, csrf_token=row.csrf_token,
        session_hash=row.id,
    )  # fmt: skip


def sign_out(*, session: Session, workspace_id: str, session_hash: str) -> None:
    repository.delete_session(session, workspace_id, session_hash)
