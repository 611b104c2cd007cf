"""Handing a message to its channel: e-mail (SMTP or the embedded Maildir), outgoing webhooks, web push, and
the in-app inbox. Each answers sent, transient (try again later) or permanent (with the reason)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

from sqlalchemy.orm import Session

from offerloop.config import Settings
from offerloop.db.uow import Database
from offerloop.delivery import repository
from offerloop.delivery.email.compose import build_message
from offerloop.delivery.email.exceptions import EmailTooLarge, InvalidEmail
from offerloop.delivery.email.reports import verp_address
from offerloop.delivery.email.transport import envelope_sender, transport_for
from offerloop.delivery.links import Links, url
from offerloop.delivery.push import service as push_service
from offerloop.delivery.senders import SenderPolicy
from offerloop.delivery.webhooks import service as webhooks_service
from offerloop.models import OutboxMessage

Status = Literal["sent", "transient", "permanent"]


@dataclass(frozen=True)
class Outcome:
    status: Status
    detail: str = ""
    bounce: bool = False  # a permanent refusal of the address itself (5xx to RCPT): suppress it


@dataclass(frozen=True)
class Email:
    """A snapshot of an e-mail to send, taken in the transaction that marked it ``sending``."""

    sender: str
    bounce_address: str
    to: str
    subject: str
    text: str
    html: str | None
    message_id: str
    unsubscribe_url: str | None
    web_version_url: str


class Mailer:
    """The configured e-mail transport (built once per process from the settings)."""

    def __init__(self, settings: Settings) -> None:
        self.settings = settings
        self.transport = transport_for(settings)
        self.senders = SenderPolicy.of(settings)

    def snapshot(self, row: OutboxMessage, sender: str | None, link: Links) -> Email:
        base = {"w": row.workspace_id, "m": row.id}
        sender = sender or self.settings.mail_from
        bounce = envelope_sender(self.settings)
        if self.settings.verp_enabled:
            # The envelope sender names this message, signed: a bounce to it is matched without trusting
            # anything else the bounce says (see feedback: with VERP on, nothing else is trusted).
            bounce = verp_address(bounce, row.id, link.secret)
        return Email(
            sender=sender, bounce_address=bounce, to=row.recipient or "", subject=row.subject or "",
            text=str(row.body.get("text", "")), html=row.body.get("html"), message_id=row.message_id,
            unsubscribe_url=row.body.get("unsubscribe_url") if row.category == "marketing" else None,
            web_version_url=url(link.public_url, link.secret, "v", base),
        )  # fmt: skip

    def send(self, email: Email) -> Outcome:
        try:
            message = build_message(
                sender=email.sender, to=email.to, subject=email.subject, text=email.text, html=email.html,
                message_id=email.message_id, unsubscribe_url=email.unsubscribe_url, unsubscribe_mailto=None,
                web_version_url=email.web_version_url,
            )  # fmt: skip
        except (InvalidEmail, EmailTooLarge) as exc:  # the same message will never build: do not retry
            return Outcome("permanent", f"cannot build the e-mail: {exc.message}")
        result = self.transport.send(envelope_from=email.bounce_address, to=email.to, message=message)
        code = result.smtp_code
        if result.status == "sent":
            return Outcome("sent", result.detail)
        # A hard bounce: the server refused the recipient address itself (not the content, not us).
        bounce = (
            result.status == "permanent" and code in (550, 551, 553) and result.detail.endswith("(RCPT TO)")
        )
        return Outcome(result.status, f"{code} {result.detail}" if code else result.detail, bounce)


def deliver_local(session: Session, row: OutboxMessage) -> Outcome:
    """Channels whose hand-over is a database write in this transaction (in-app, webhooks: their own
    deliveries, retries and log)."""
    if row.channel == "inapp":
        return Outcome("sent", "in the buyer's inbox")
    if row.channel == "webhook":
        payload: dict[str, Any] = {
            "journey": row.journey, "step": row.step, "buyer_id": row.buyer_id, "message_id": row.message_id,
            "subject": row.subject, "text": row.body.get("text"), "decisions": row.body.get("decisions", {}),
        }  # fmt: skip
        try:
            found = webhooks_service.deliver(
                session, workspace_id=row.workspace_id, event_type=str(row.body.get("event") or "journey.message"),
                payload=payload, idempotency_key=row.message_id,
            )  # fmt: skip
        except ValueError as exc:  # queued before the journey's bounds: it fails alone, not its whole batch
            return Outcome("permanent", f"cannot queue the webhook: {exc}")
        if not found:
            return Outcome("permanent", "no enabled webhook endpoint takes this event")
        return Outcome("sent", f"queued to {len(found)} webhook endpoint(s)")
    return Outcome("permanent", f"unknown channel {row.channel}")


def push(db: Database, workspace_id: str, outbox_id: int) -> Outcome | None:
    """Web push to every subscription of the message's buyer, in transactions of its own around the requests
    (none is held while a push service answers); None when the message is gone."""
    with db.write() as session:
        row = repository.message(session, workspace_id, outbox_id)
        if row is None:
            return None
        planned = push_service.plan(
            session, workspace_id=workspace_id, buyer_id=row.buyer_id,
            payload={"title": row.subject or "", "body": row.body.get("text", ""), "url": row.body.get("url"),
                     "outbox_id": row.id},
            ttl_s=86400, urgency="normal",
        )  # fmt: skip
    results = push_service.post(planned)
    if results:
        with db.write() as session:
            push_service.record(session, planned, results)
    if not results:
        return Outcome("permanent", "the buyer has no push subscription")
    if any(r.status == "sent" for r in results):
        return Outcome("sent", f"pushed to {sum(r.status == 'sent' for r in results)} subscription(s)")
    if all(r.status == "gone" for r in results):
        return Outcome("permanent", "every push subscription of the buyer is gone")
    return Outcome("transient", "; ".join(r.error or str(r.status_code) for r in results)[:500])
