"""The delivery domain's operations: journeys (store, version, pause), runs, messages, suppressions, rules,
and what the links in messages do (click, unsubscribe, open, view)."""

from __future__ import annotations

import time
from datetime import UTC, datetime
from html import escape
from typing import Any

from sqlalchemy.orm import Session

from offerloop.core.clock import utcnow
from offerloop.core.pages import Page, decode_cursor, page_by_id, page_of
from offerloop.declarative import Document, Problem, content_version, validate
from offerloop.delivery import links, repository, rules, senders, sending
from offerloop.delivery.email.exceptions import EmailNotFound
from offerloop.delivery.email.transport import MaildirTransport, maildir_path_for
from offerloop.delivery.exceptions import (
    BadLink,
    InvalidDeliverySettings,
    JourneyError,
    JourneyNotFound,
    MessageNotFound,
    SuppressionNotFound,
)
from offerloop.delivery.journeys.engine import SEND, message_id
from offerloop.delivery.journeys.loading import journey_from_data, parse_journey
from offerloop.delivery.journeys.spec import all_experiment_keys
from offerloop.delivery.schemas import (
    InboxItem,
    JourneyDetail,
    JourneyIn,
    JourneyRead,
    MessageDetail,
    MessageRead,
    RunRead,
    StepCount,
    SuppressionIn,
    SuppressionRead,
)
from offerloop.experiments import service as experiments_service
from offerloop.identity import service as identity_service
from offerloop.identity.schemas import ConsentUpdate
from offerloop.jobs import queue
from offerloop.models import JourneyVersion, OutboxMessage

# -- journeys -------------------------------------------------------------------------------------------


def _read(row: JourneyVersion) -> JourneyRead:
    return JourneyRead(
        name=row.name, version=row.version, paused=row.paused, category=str(row.definition.get("category", "marketing")),
        trigger=trigger_summary(row.definition.get("trigger")), content_version=row.content_version,
        created_at=row.created_at, definition=row.definition,
    )  # fmt: skip


def trigger_summary(trigger: Any) -> str:
    """A stored trigger in a few words: an event trigger's event name (as before); the other kinds named."""
    if not isinstance(trigger, dict):
        return ""
    if trigger.get("event"):
        return str(trigger["event"])
    if trigger.get("persona"):
        return f"persona entered: {trigger['persona']}"
    if isinstance(trigger.get("entitlement"), dict):
        return f"entitlement granted: {trigger['entitlement'].get('granted', '')}"
    if isinstance(ending := trigger.get("expiring"), dict):
        which = f" {ending['component']}" if ending.get("component") else ""
        return f"{ending.get('what', '')}{which} ending within {ending.get('within', '')}"
    if isinstance(tick := trigger.get("schedule"), dict):
        days = f" on {', '.join(str(d) for d in tick['days'])}" if tick.get("days") else ""
        zone = " (buyer's time)" if tick.get("zone") == "buyer" else ""
        return f"every {tick.get('every', '')}{days} at {tick.get('at', '')}{zone}"
    return ""


def save_journey(
    *, session: Session, workspace_id: str, name: str, body: JourneyIn, now: datetime | None = None
) -> JourneyRead:
    """Store a new version of journey ``name`` (the same content again stores nothing new)."""
    if (body.yaml is None) == (body.definition is None):
        raise JourneyError(["give exactly one of yaml or definition"])
    journey = (
        parse_journey(body.yaml, path=f"{name}.yaml")
        if body.yaml is not None
        else journey_from_data(body.definition)
    )
    if journey.name != name:
        raise JourneyError([Problem("<body>", 1, "name", f"is {journey.name!r}, but the URL names {name!r}")])
    # a branch on an experiment names one of this workspace's (404 experiment_not_found otherwise)
    experiments_service.require(session=session, workspace_id=workspace_id, keys=all_experiment_keys(journey))
    data = journey.model_dump(mode="json", by_alias=True, exclude_none=True)
    version_text = content_version(data)
    latest = repository.journey(session, workspace_id, name, lock=True)  # versions of one journey in turn
    if latest is not None and latest.content_version == version_text:
        return _read(latest)
    row = JourneyVersion(
        workspace_id=workspace_id, name=name, version=(latest.version + 1) if latest else 1, latest=True,
        paused=latest.paused if latest else False, definition=data, content_version=version_text,
        created_at=now or utcnow(),
    )  # fmt: skip
    repository.add_journey_version(session, workspace_id, row)
    return _read(row)


def get_journey(*, session: Session, workspace_id: str, name: str) -> JourneyDetail:
    row = repository.journey(session, workspace_id, name)
    if row is None:
        raise JourneyNotFound(f"journey {name!r} does not exist")
    counts = [
        StepCount(state=s, step=st, runs=n) for s, st, n in repository.run_counts(session, workspace_id, name)
    ]
    return JourneyDetail(**_read(row).model_dump(), runs=counts)


def list_journeys(
    *, session: Session, workspace_id: str, limit: int, cursor: str | None
) -> Page[JourneyRead]:
    after = decode_cursor(cursor, types=(str,))
    rows = repository.journeys_page(
        session, workspace_id, limit=limit + 1, before=after[0] if after else None
    )
    return page_of(rows, limit, key=lambda r: (r.name,), item=_read)


def set_paused(*, session: Session, workspace_id: str, name: str, paused: bool) -> JourneyDetail:
    """The kill switch: a paused journey starts no runs and sends nothing; running ones end at their next
    step, and their queued messages are skipped."""
    if not repository.set_paused(session, workspace_id, name, paused):
        raise JourneyNotFound(f"journey {name!r} does not exist")
    if paused:
        repository.skip_queued(session, workspace_id, name, "journey paused (kill switch)")
    return get_journey(session=session, workspace_id=workspace_id, name=name)


def list_runs(
    *, session: Session, workspace_id: str, limit: int, cursor: str | None, journey: str | None = None,
    buyer_id: str | None = None, state: str | None = None,
) -> Page[RunRead]:  # fmt: skip
    before = decode_cursor(cursor, types=(int,))
    rows = repository.runs_page(session, workspace_id, limit=limit + 1, before_id=before[0] if before else None,
                                journey=journey, buyer_id=buyer_id, state=state)  # fmt: skip
    return page_by_id(rows, limit, RunRead)


# -- messages -------------------------------------------------------------------------------------------


def list_messages(
    *, session: Session, workspace_id: str, limit: int, cursor: str | None, buyer_id: str | None = None,
    channel: str | None = None, status: str | None = None, journey: str | None = None,
) -> Page[MessageRead]:  # fmt: skip
    before = decode_cursor(cursor, types=(int,))
    rows = repository.messages_page(session, workspace_id, limit=limit + 1, before_id=before[0] if before else None,
                                    buyer_id=buyer_id, channel=channel, status=status, journey=journey)  # fmt: skip
    return page_by_id(rows, limit, MessageRead)


def get_message(*, session: Session, workspace_id: str, message_id: int) -> MessageDetail:
    row = repository.message(session, workspace_id, message_id)
    if row is None:
        raise MessageNotFound(f"message {message_id} does not exist")
    return MessageDetail.model_validate(row, from_attributes=True)


# -- suppressions and rules -----------------------------------------------------------------------------


def list_suppressions(
    *, session: Session, workspace_id: str, limit: int, cursor: str | None, channel: str | None = None
) -> Page[SuppressionRead]:
    before = decode_cursor(cursor, types=(int,))
    rows = repository.suppressions_page(session, workspace_id, limit=limit + 1,
                                        before_id=before[0] if before else None, channel=channel)  # fmt: skip
    return page_by_id(rows, limit, SuppressionRead)


def add_suppression(*, session: Session, workspace_id: str, body: SuppressionIn) -> SuppressionRead:
    address = repository.suppressed_address(body.channel, body.address.strip())
    repository.suppress(session, {"workspace_id": workspace_id, "channel": body.channel, "address": address,
                                  "scope": body.scope, "reason": body.reason, "created_at": utcnow()})  # fmt: skip
    found = repository.suppression(session, workspace_id, body.channel, address)
    assert found is not None
    return SuppressionRead.model_validate(found, from_attributes=True)


def remove_suppression(*, session: Session, workspace_id: str, suppression_id: int) -> SuppressionRead:
    """Lift a suppression; the row as it was."""
    removed = repository.remove_suppression(session, workspace_id, suppression_id)
    if removed is None:
        raise SuppressionNotFound(f"suppression {suppression_id} does not exist")
    return SuppressionRead.model_validate(removed, from_attributes=True)


def get_rules(*, session: Session, workspace_id: str) -> rules.Rules:
    return sending.workspace_rules(session, workspace_id)


def set_rules(
    *, session: Session, workspace_id: str, data: dict[str, Any], policy: senders.SenderPolicy
) -> rules.Rules:
    """Replace the rules; SenderNotAllowed when ``sender`` is outside the domains the operator allowed."""
    parsed = validate(rules.Rules, Document.of(data), error=InvalidDeliverySettings)
    senders.check(session, workspace_id, parsed.sender, policy)
    repository.save_settings(session, workspace_id, parsed.model_dump(mode="json"), utcnow())
    return parsed


def allow_sender_domain(*, session: Session, workspace_id: str, domain: str) -> tuple[str, bool]:
    """Let the workspace send From ``domain`` and its subdomains; (the domain, whether it is new)."""
    return senders.allow(session, workspace_id, domain, utcnow())


def deny_sender_domain(*, session: Session, workspace_id: str, domain: str) -> tuple[str, bool]:
    """Withdraw a sender domain: the workspace's queued e-mail From it fails with the reason."""
    return senders.deny(session, workspace_id, domain)


def sender_domains(*, session: Session, workspace_id: str) -> list[str]:
    return senders.allowed(session, workspace_id)


# -- what links in messages do ----------------------------------------------------------------------------


def _linked(
    session: Session, secret: str, kind: links.Kind, token: str
) -> tuple[OutboxMessage, dict[str, Any]]:
    payload = links.read(secret, kind, token)
    workspace_id, outbox_id = payload.get("w"), payload.get("m")
    if not isinstance(workspace_id, str) or not isinstance(outbox_id, int) or not workspace_id:
        raise BadLink("this link is not valid")
    row = repository.message(session, workspace_id, outbox_id)
    if row is None:
        raise BadLink("this link no longer leads anywhere")
    return row, payload


def click(*, session: Session, secret: str, token: str) -> str:
    """Record the click as an event (with the journey as its campaign) and give the tagged target URL."""
    row, payload = _linked(session, secret, "c", token)
    target = links.safe_target(payload.get("u"))
    if target is None:
        raise BadLink("this link is not valid")
    tagged = links.tagged(target, medium=row.channel, campaign=row.journey, content=row.step)
    digest = content_version({"u": target})[:16]
    sending.feedback(session, row, "Message Clicked", {"url": target}, f"click-{digest}",
                     context={"campaign": sending.campaign(row), "page": {"url": tagged}})  # fmt: skip
    return tagged


def opened(*, session: Session, secret: str, token: str) -> None:
    row, _ = _linked(session, secret, "o", token)
    sending.feedback(session, row, "Message Opened", {}, "opened")


def view(*, session: Session, secret: str, token: str) -> str:
    """The message in the browser (the web version long e-mails link to)."""
    row, _ = _linked(session, secret, "v", token)
    html = row.body.get("html")
    if isinstance(html, str):
        return html
    return f"<!doctype html><meta charset=utf-8><pre>{escape(str(row.body.get('text', '')))}</pre>"


def check_unsubscribe_link(*, secret: str, token: str) -> None:
    """Refuse a forged unsubscribe link before showing its page (BadLink)."""
    links.read(secret, "u", token)


def unsubscribe(*, session: Session, secret: str, token: str, now: datetime | None = None) -> OutboxMessage:
    """One-click unsubscribe (RFC 8058): no more marketing on this channel to this address; the buyer's
    marketing consent is withdrawn and the event recorded. Idempotent."""
    row, _ = _linked(session, secret, "u", token)
    if row.channel == "email" and row.recipient is None:
        return row  # its buyer was erased: nothing is sent to them, and nothing about them is recorded again
    now = now or utcnow()
    address = row.recipient or row.buyer_id
    repository.suppress(session, {"workspace_id": row.workspace_id, "channel": row.channel, "address": address,
                                  "scope": "marketing", "reason": f"unsubscribed from {row.journey or 'a message'}",
                                  "created_at": now})  # fmt: skip
    identity_service.set_consent(session=session, workspace_id=row.workspace_id, buyer_id=row.buyer_id,
                                 consent=ConsentUpdate(marketing=False), actor="buyer:unsubscribe")  # fmt: skip
    sending.feedback(session, row, "Unsubscribed", {}, "unsubscribed")
    return row


# -- one-off transactional e-mail ----------------------------------------------------------------------------


def queue_email(
    *, session: Session, workspace_id: str, buyer_id: str, key: str, recipient: str, subject: str, text: str,
    public_url: str, now: datetime | None = None,
) -> int | None:  # fmt: skip
    """Queue one transactional e-mail (no journey: a sign-in link, a notice) to ``recipient``, an address of
    the buyer; it goes through the outbox like a journey's message (the workspace's sender, suppressions,
    retries, feedback events). ``key`` is unique per workspace: the outbox id, or None when already queued."""
    now = now or utcnow()
    key = key[:255]
    row_id = repository.add_message(session, {
        "workspace_id": workspace_id, "key": key, "run_id": None, "journey": None, "step": None,
        "buyer_id": buyer_id, "channel": "email", "category": "transactional", "status": "queued",
        "message_id": message_id(workspace_id, key, sending.mail_domain(public_url)), "recipient": recipient,
        "subject": " ".join(subject.split())[:998], "body": {"text": text}, "attempts": 0, "created_at": now,
    })  # fmt: skip
    if row_id is not None:
        queue.enqueue(session, kind=SEND, key=str(row_id), workspace_id=workspace_id, run_at=now, now=now)
    return row_id


def replace_email_text(*, session: Session, workspace_id: str, key: str, text: str) -> None:
    """Replace the kept text of a queued one-off e-mail (a sign-in link once used: the outbox keeps no
    working secret)."""
    row = repository.message_by_key(session, workspace_id, key[:255])
    if row is not None:
        row.body = {**row.body, "text": text}
        session.flush()


# -- the in-app inbox ---------------------------------------------------------------------------------------


def inbox_token(secret: str, workspace_id: str, buyer_id: str, ttl_s: int) -> tuple[str, datetime]:
    expires = int(time.time()) + ttl_s
    return links.token(secret, "i", {"w": workspace_id, "b": buyer_id, "x": expires}), datetime.fromtimestamp(
        expires, UTC
    )


def inbox_owner(secret: str, token: str) -> tuple[str, str]:
    """(workspace, buyer) of a valid, unexpired inbox token."""
    workspace_id, buyer_id, _ = inbox_grant(secret, token)
    return workspace_id, buyer_id


def inbox_grant(secret: str, token: str) -> tuple[str, str, int]:
    """(workspace, buyer, expiry in epoch seconds) of a valid, unexpired inbox token."""
    payload = links.read(secret, "i", token)
    workspace_id, buyer_id, expires = payload.get("w"), payload.get("b"), payload.get("x")
    if not (isinstance(workspace_id, str) and isinstance(buyer_id, str) and isinstance(expires, int)):
        raise BadLink("this inbox token is not valid")
    if expires < time.time():
        raise BadLink("this inbox token has expired", code="token_expired")
    return workspace_id, buyer_id, expires


def _item(row: OutboxMessage) -> InboxItem:
    return InboxItem(id=row.id, title=row.subject, text=str(row.body.get("text", "")), url=row.body.get("url"),
                     journey=row.journey, sent_at=row.sent_at, read_at=row.read_at)  # fmt: skip


def inbox(
    *, session: Session, workspace_id: str, buyer_id: str, limit: int, cursor: str | None, unread: bool
) -> Page[InboxItem]:
    before = decode_cursor(cursor, types=(int,))
    rows = repository.inbox(session, workspace_id, _inbox_of(session, workspace_id, buyer_id), limit=limit + 1,
                            before_id=before[0] if before else None, unread=unread)  # fmt: skip
    return page_of(rows, limit, key=lambda r: (r.id,), item=_item)


def _inbox_of(session: Session, workspace_id: str, buyer_id: str) -> tuple[str, ...]:
    """The buyers whose in-app messages are this token's: its buyer's survivor and everyone merged into it (a run
    keeps the buyer it started for, and a token minted before a merge names the buyer merged away)."""
    return identity_service.survivor_lineage(session=session, workspace_id=workspace_id, buyer_id=buyer_id)


def inbox_since(*, session: Session, workspace_id: str, buyer_id: str, after_id: int) -> list[InboxItem]:
    family = _inbox_of(session, workspace_id, buyer_id)
    return [_item(r) for r in repository.inbox_after(session, workspace_id, family, after_id)]


def mark_read(*, session: Session, workspace_id: str, buyer_id: str, message_id: int) -> InboxItem:
    row = repository.message(session, workspace_id, message_id)
    if (
        row is None
        or row.buyer_id not in _inbox_of(session, workspace_id, buyer_id)
        or row.channel != "inapp"
    ):
        raise MessageNotFound(f"message {message_id} does not exist")
    if row.read_at is None:
        row.read_at, row.status = utcnow(), "read"
        sending.feedback(session, row, "Message Opened", {}, "opened")
    return _item(row)


def captured(settings: Any, message: MessageRead) -> bytes:
    """The bytes of an e-mail the embedded Maildir captured (EmailNotFound when SMTP is configured or the
    message has not been sent). The capture of an erased buyer's message (its address erased from the outbox)
    is deleted on sight and never served."""
    if settings.smtp_url:
        raise EmailNotFound("e-mail goes to an SMTP server here; nothing is captured")
    box = MaildirTransport(maildir_path_for(settings))
    key = MaildirTransport.key_for(message.message_id)
    if message.recipient is None:
        box.discard(key)
        raise EmailNotFound("the buyer of this message was erased: its e-mail is not kept")
    return box.get(key).raw
