"""Downloads and re-opens of a generated asset, as events on the buyer's record.

Each use of a signed download link within half an hour is one open: its event's ``messageId`` is derived
from the link's signature and the half hour, so range requests, retries and reloads of the same link are
stored once (ingestion keeps a ``messageId`` once per workspace) while a long-lived link (the e-mail
summary's) used again later is a re-open; HEAD requests or range requests that do not start at byte 0 record
nothing. A buyer who asks for a new link and opens it again re-opens the asset: the event says whether it
is their first open of this artifact. Recorded through the events service, so features, rewards, journeys
and analytics see it like any other event.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any, Final

from sqlalchemy.orm import Session

from offerloop.assembly import repository
from offerloop.assembly.review import OPEN_WINDOW_S, open_message_id
from offerloop.core.clock import utcnow
from offerloop.core.errors import OfferloopError
from offerloop.events import service as event_service
from offerloop.identity import service as identity_service

EVENT: Final = "Artifact Downloaded"


def byte_range(header: str | None, size: int) -> tuple[int, int] | None:
    """The one byte range a Range header asks for, as (first, last); None to send the whole file (no header,
    several ranges, or a header we do not read); (-1, -1) when it cannot be satisfied (416)."""
    if not header or not header.strip().lower().startswith("bytes=") or "," in header:
        return None
    first, _, last = header.strip()[6:].strip().partition("-")
    try:
        if first == "":
            length = int(last)
            return (max(size - length, 0), size - 1) if length > 0 and size else (-1, -1)
        start = int(first)
        end = min(int(last), size - 1) if last else size - 1
    except ValueError:
        return None
    if start < 0 or start >= size or end < start:
        return (-1, -1)
    return start, end


def counts_as_open(method: str, span: tuple[int, int] | None) -> bool:
    """A GET of the whole file, or of a range from byte 0 (a viewer's first request); not HEAD, not later chunks."""
    return method.upper() == "GET" and (span is None or span[0] == 0)


def record_open(
    *, session: Session, artifact_id: str, version: int, fmt: str, sig: str, max_event_bytes: int = 64 * 1024
) -> str | None:
    """Record one open of a downloaded file on its buyer's record; returns the event's status (accepted,
    duplicate) or None when there is no live buyer to record it on."""
    # Opens of one artifact are recorded one at a time (the row lock), so exactly one of them is the first.
    artifact = repository.artifact_for_signed_link(session, artifact_id, lock=True)
    if artifact is None:
        return None
    workspace_id = artifact.workspace_id
    try:
        buyer = identity_service.get_buyer(
            session=session, workspace_id=workspace_id, buyer_id=artifact.buyer_id
        )
    except OfferloopError:
        return None
    if buyer.deleted:  # an erased buyer gets no new personal data
        return None
    now = utcnow()
    message_id = open_message_id(sig, now.timestamp())
    earlier = identity_service.latest_event(
        session=session,
        workspace_id=workspace_id,
        buyer_id=buyer.id,
        name=EVENT,
        where={"artifact_id": artifact_id},
    )
    if (  # the same link used again within half an hour of its last recorded open: the same open
        earlier is not None
        and earlier.message_id == open_message_id(sig, now.timestamp() - OPEN_WINDOW_S)
        and now - earlier.timestamp < timedelta(seconds=OPEN_WINDOW_S)
    ):
        return "duplicate"
    first = earlier is None or earlier.message_id == message_id
    message: dict[str, Any] = {
        "type": "track", "event": EVENT, "messageId": message_id, "timestamp": now.isoformat(),
        "properties": {"artifact_id": artifact_id, "version": version, "format": fmt, "policy_id": artifact.policy_id,
                       "first_open": first, "open": "first" if first else "reopen"},
    }  # fmt: skip
    anonymous = next((i.value for i in buyer.identities if i.kind == "anonymous_id"), None)
    if buyer.user_id:
        message["userId"] = buyer.user_id
    elif anonymous:
        message["anonymousId"] = anonymous
    else:  # a buyer known only by e-mail or phone: ingestion resolves them by that identifier as user id
        message["userId"] = next((i.value for i in buyer.identities), buyer.id)
    batch = event_service.prepare_batch(
        [message], received_at=now, max_event_bytes=max_event_bytes, origin="server"
    )
    result = event_service.ingest(session=session, workspace_id=workspace_id, batch=batch, quarantine=False)
    return result.items[0].status if result.items else None
