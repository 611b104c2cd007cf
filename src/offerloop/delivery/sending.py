"""Sending outbox messages: render them, decide whether and when each may go (consent, suppression, caps,
the local send window, the journey's kill switch), hand them to their channel, and record what happened — on
the message and, as events, on the buyer's record.

Exactly once, and where it is not: messages are sent in batches (``delivery.batch``). A batch's messages are
marked ``sending`` and committed before any is handed to its channel, and marked ``sent`` together in one
transaction after the last hand-over. A worker killed between a hand-over and that commit leaves the batch's
messages ``sending``; when their jobs' leases run out they are sent again, each with the same ``Message-ID``
(derived from the outbox key) — at most the messages of one batch that were handed over but not yet recorded
are duplicated (one message when the batch held one), and a receiving system that de-duplicates by
``Message-ID`` (Gmail does) shows each once.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final, Literal
from urllib.parse import urlsplit
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session

from offerloop.delivery import audience, links, repository, rules, templates
from offerloop.delivery.journeys import spec
from offerloop.delivery.links import Links
from offerloop.events import service as events_service
from offerloop.models import JourneyVersion, OutboxMessage

FINAL: Final = frozenset({"sent", "read", "failed", "suppressed", "skipped"})


def mail_domain(public_url: str) -> str:
    return urlsplit(public_url).hostname or "localhost"


# -- rendering --------------------------------------------------------------------------------------------


def render(
    session: Session, workspace_id: str, message_id: int, send: spec.Send, journey: spec.Journey,
    who: audience.Recipient, context: dict[str, Any], link: Links, now: datetime,
) -> dict[str, Any]:  # fmt: skip
    """The queued message's rendered columns for this buyer (a retry re-sends exactly these)."""
    base = {"w": workspace_id, "m": message_id}

    def click(target: Any) -> str:
        safe = links.safe_target(target)
        if safe is None:
            return ""
        return links.url(link.public_url, link.secret, "c", {**base, "u": safe})

    unsubscribe = links.url(link.public_url, link.secret, "u", base)
    sources = (send.subject, send.text, send.html, send.url)
    with_persona = any("persona" in templates.names(source) for source in sources if source is not None)
    features, persona, entitlements = audience.template_facts(
        session, workspace_id, who, now, with_persona=with_persona
    )
    values: dict[str, Any] = {
        "buyer": {"id": who.buyer_id, "user_id": who.user_id, "email": who.email, "traits": who.traits},
        "features": features, "persona": persona, "entitlements": entitlements,
        "event": context.get("event", {}), **context.get("decisions", {}),
        "link": click, "unsubscribe_url": unsubscribe, "journey": journey.name,
    }  # fmt: skip
    subject = templates.render(send.subject, values).strip() if send.subject is not None else None
    body: dict[str, Any] = {"text": templates.render(send.text, values)}
    if send.html is not None:
        body["html"] = templates.render(send.html, values, html=True)
    if send.url is not None:
        body["url"] = click(templates.render(send.url, values).strip())
    if send.event is not None:
        body["event"] = send.event
    body["unsubscribe_url"] = unsubscribe
    if rules.known_zone(context.get("timezone")) is not None:
        body["timezone"] = context["timezone"]  # the trigger event's zone, for the send window (``gate``)
    body["decisions"] = {k: v.get("decision_id") for k, v in context.get("decisions", {}).items()}
    return {
        "subject": " ".join(subject.split())[:998] if subject is not None else None,
        "body": body,
        "recipient": who.email if send.channel == "email" else who.buyer_id,
    }


# -- whether and when ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Gate:
    verdict: Literal["go", "later", "skip", "suppress"]
    reason: str = ""
    when: datetime | None = None


class Reads:
    """The journey versions and workspace rules the gate reads, read once per batch (a pass of one
    transaction: what it read cannot change under it)."""

    def __init__(self, session: Session) -> None:
        self.session = session
        self._journeys: dict[tuple[str, str], JourneyVersion | None] = {}
        self._rules: dict[str, rules.Rules] = {}

    def journey(self, workspace_id: str, name: str) -> JourneyVersion | None:
        if (workspace_id, name) not in self._journeys:
            self._journeys[workspace_id, name] = repository.journey(self.session, workspace_id, name)
        return self._journeys[workspace_id, name]

    def rules(self, workspace_id: str) -> rules.Rules:
        if workspace_id not in self._rules:
            self._rules[workspace_id] = workspace_rules(self.session, workspace_id)
        return self._rules[workspace_id]


def reads_of(session: Session) -> Reads:
    """The transaction's ``Reads`` (a unit of work is one session: a batch of runs or sends shares it)."""
    found = session.info.get(_READS)
    if not isinstance(found, Reads):
        found = session.info[_READS] = Reads(session)
    return found


_READS: Final = "offerloop.delivery.reads"


def gate(
    session: Session, row: OutboxMessage, who: audience.Recipient | None, now: datetime,
    reads: Reads | None = None,
) -> Gate:  # fmt: skip
    """Whether the message may go now. Transactional messages skip consent, caps and quiet hours."""
    if who is None or who.deleted:
        return Gate("skip", "buyer deleted")
    reads = reads or reads_of(session)
    latest = reads.journey(row.workspace_id, row.journey) if row.journey is not None else None
    if latest is not None and latest.paused:
        return Gate("skip", "journey paused (kill switch)")
    # The e-mail goes to the address rendered when it was queued (``Mailer.snapshot``): that is the one whose
    # suppression counts, not the buyer's address now (changed while the message waited for its window).
    address = row.recipient if row.channel == "email" else who.buyer_id
    if not address:
        return Gate("skip", "no e-mail address")
    suppressed = repository.suppression(session, row.workspace_id, row.channel, address)
    if suppressed is not None and (suppressed.scope == "all" or row.category == "marketing"):
        return Gate("suppress", f"suppressed: {suppressed.reason}")
    if row.category != "marketing":
        return Gate("go")
    if who.marketing_consent is not True:
        return Gate("skip", "no marketing consent")
    settings = reads.rules(row.workspace_id)
    cap = settings.caps.get(row.channel)  # type: ignore[call-overload]
    if cap is not None and _count(session, row, now, cap.per, row.channel) >= cap.max:
        return Gate("skip", f"frequency cap: {cap.max} {row.channel} per {cap.per:g}s")
    overall = settings.overall_cap
    if overall is not None and _count(session, row, now, overall.per, None) >= overall.max:
        return Gate("skip", f"frequency cap: {overall.max} messages per {overall.per:g}s")
    window = settings.send_window
    if latest is not None and latest.definition.get("send_window"):
        window = spec.Window.model_validate(latest.definition["send_window"])
    tz = buyer_zone(session, row.workspace_id, who, (row.body or {}).get("timezone"))
    opens = rules.window_opens(now, window, tz)
    if opens is not None:
        return Gate("later", "outside the send window", opens)
    return Gate("go")


def buyer_zone(session: Session, workspace_id: str, who: audience.Recipient, event_zone: Any) -> ZoneInfo:
    """The buyer's zone: the trait ``timezone``, else the trigger event's ``context.timezone`` (``event_zone``),
    else the workspace's ``default_timezone`` — each only if it names a zone this server knows."""
    return (
        rules.known_zone(who.timezone)
        or rules.known_zone(event_zone)
        or rules.zone(reads_of(session).rules(workspace_id).default_timezone)
    )


def _count(session: Session, row: OutboxMessage, now: datetime, per: float, channel: str | None) -> int:
    since = now - timedelta(seconds=per)
    return repository.sent_since(
        session, row.workspace_id, row.buyer_id, since, channel=channel, category="marketing"
    )


def workspace_rules(session: Session, workspace_id: str) -> rules.Rules:
    stored = repository.settings(session, workspace_id)
    return rules.Rules.model_validate(stored.settings) if stored is not None else rules.DEFAULT_RULES


# -- recording ----------------------------------------------------------------------------------------------


def feedback_event(session: Session, row: OutboxMessage, name: str, extra: dict[str, Any], suffix: str,
                   context: dict[str, Any] | None = None, who: audience.Recipient | None = None) -> dict[str, Any]:  # fmt: skip
    """The event on the buyer's record about this message (sent, bounced, clicked, ...), keyed to be stored
    once; append it with ``record`` (a batch appends all of its events in one call). ``who``: the buyer as
    read in this transaction, if it was."""
    props = {"channel": row.channel, "journey": row.journey, "step": row.step, "message_id": row.message_id,
             "outbox_id": row.id, "category": row.category, **extra}  # fmt: skip
    return events_service.buyer_track(
        session, row.workspace_id, row.buyer_id, name, props, f"delivery-{row.id}-{suffix}"[:200], context,
        buyer=who.record if who is not None else None,
    )  # fmt: skip


def record(session: Session, workspace_id: str, events: list[dict[str, Any]]) -> None:
    """Append feedback events of one workspace to the log, in one ingestion."""
    if events:
        events_service.record_server_events(session, workspace_id, events)


def feedback(session: Session, row: OutboxMessage, name: str, extra: dict[str, Any], suffix: str,
             context: dict[str, Any] | None = None) -> None:  # fmt: skip
    """An event on the buyer's record about this message, appended now."""
    record(session, row.workspace_id, [feedback_event(session, row, name, extra, suffix, context)])


def campaign(row: OutboxMessage) -> dict[str, Any]:
    """The Segment ``context.campaign`` of a click: attribution sees offerloop's own channels as touches."""
    return {
        "source": "offerloop",
        "medium": row.channel,
        "name": row.journey or "message",
        "content": row.step,
    }
