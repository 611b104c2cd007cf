"""The buyer behind a checkout, and the events checkout and subscriptions put on the buyer's record."""

from __future__ import annotations

from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from offerloop.checkout.exceptions import CheckoutError
from offerloop.core.clock import utcnow
from offerloop.core.ids import new_id
from offerloop.events import service as event_service
from offerloop.identity import service as identity_service
from offerloop.identity.exceptions import BuyerNotFound


def ingest(session: Session, workspace_id: str, messages: list[dict[str, Any]]) -> None:
    refused = event_service.record_server_events(session, workspace_id, messages)
    if refused:
        raise CheckoutError(f"the buyer event was refused: {refused[0].message}", code="event_refused")


def buyer_for(
    *, session: Session, workspace_id: str, user_id: str | None = None, anonymous_id: str | None = None,
    email: str | None = None,
) -> str:  # fmt: skip
    """The buyer behind the identifiers, identified now if we never saw them (an identify event)."""
    given = {k: v for k, v in {"user_id": user_id, "anonymous_id": anonymous_id, "email": email}.items() if v}
    if not given:
        raise CheckoutError("give user_id, anonymous_id or email", code="buyer_required")
    known = _known_buyer(session, workspace_id, given)
    if known is not None:
        return known
    message: dict[str, Any] = {"type": "identify", "traits": {"email": email} if email else {}}
    if user_id:
        message["userId"] = user_id
    if anonymous_id:
        message["anonymousId"] = anonymous_id
    if not user_id and not anonymous_id:
        # An e-mail alone is an e-mail identifier, never a userId: the account that later identifies with its
        # own userId and this e-mail is then the same buyer (identity merges on e-mail), not a conflict. The
        # spec wants an anonymousId on an identify without a userId: a fresh one, this checkout's device.
        message["anonymousId"] = anonymous_id = new_id("anon")
    message["messageId"] = new_id("msg")
    ingest(session, workspace_id, [message])  # the record of it, for the consumers like any identify
    # Identities are written through the driver (COPY on PostgreSQL): its own IntegrityError, not SQLAlchemy's.
    duplicate = (IntegrityError, session.get_bind().dialect.loaded_dbapi.IntegrityError)
    try:
        with session.begin_nested():
            return identity_service.identify_now(
                session=session, workspace_id=workspace_id, message_id=message["messageId"],
                user_id=message.get("userId"), anonymous_id=anonymous_id, traits=message["traits"], at=utcnow(),
            )  # fmt: skip
    except duplicate:
        # The identity consumer (or another request) stored these identifiers first and has committed: that
        # buyer is this one. Each statement reads what is committed, so the lookup sees it now.
        known = _known_buyer(session, workspace_id, given)
        if known is None:
            raise
        return known


def _known_buyer(session: Session, workspace_id: str, given: dict[str, str]) -> str | None:
    for kind, value in given.items():
        try:
            return identity_service.lookup(session=session, workspace_id=workspace_id, **{kind: value}).id
        except BuyerNotFound:
            continue
    return None


def event(
    session: Session, workspace_id: str, buyer_id: str, name: str, props: dict[str, Any], message_id: str
) -> None:
    """Append a track event (``name``, ``props``) to the buyer's record, stored once by ``message_id``."""
    ingest(session, workspace_id, [track(session, workspace_id, buyer_id, name, props, message_id)])


def track(
    session: Session, workspace_id: str, buyer_id: str, name: str, props: dict[str, Any], message_id: str
) -> dict[str, Any]:
    """A track message on the buyer's record (under the identifier ingestion resolves back to them)."""
    return event_service.buyer_track(session, workspace_id, buyer_id, name, props, message_id)
