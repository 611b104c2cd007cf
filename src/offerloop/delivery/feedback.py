"""Applying what comes back about sent e-mail (delivery/email/reports.py parses it) to the buyer's record:

- a **hard bounce** (DSN ``Action: failed``, status 5.x.x) suppresses the address for every message and
  records ``Message Bounced``;
- a **soft bounce** (``delayed``, or ``failed`` with 4.x.x) records ``Message Deferred``; when the last
  ``SOFT_BOUNCE_LIMIT`` e-mails handed over to the address all soft-bounced (none of them delivered), the
  address is suppressed for every message as well;
- a **complaint** (ARF) suppresses marketing to the address, withdraws the buyer's marketing consent (as an
  unsubscribe does) and records ``Message Complained``; transactional mail still goes;
- a **delivery notice** (``delivered``/``relayed``) records ``Message Delivered``.

Each report is stored once per (message, kind, recipient) and each event once per message, so the same
report delivered twice — or a DSN for a message that already bounced at send time — changes nothing more.
"""

from __future__ import annotations

import contextlib
from datetime import datetime
from typing import Any, Final, Literal

from pydantic import BaseModel, ConfigDict
from sqlalchemy.orm import Session

from offerloop.core.clock import utcnow
from offerloop.core.errors import NotFound
from offerloop.core.pages import Page, decode_cursor, page_by_id
from offerloop.delivery import feedback_repository as repo
from offerloop.delivery import repository, sending
from offerloop.delivery.email import reports
from offerloop.delivery.email.reports import Kind, MalformedReport
from offerloop.identity import service as identity_service
from offerloop.identity.exceptions import BuyerNotFound
from offerloop.identity.schemas import ConsentUpdate
from offerloop.models import OutboxMessage
from offerloop.workspaces import service as workspace_service

# Three soft bounces in a row: a full mailbox or a dead domain for a week of mail, not one bad afternoon
# (each DSN already stands for a day or more of retries by the sending server).
SOFT_BOUNCE_LIMIT: Final = 3
# A report names at most this many candidate Message-IDs worth looking up.
_MAX_CANDIDATES: Final = 5

EVENTS: Final[dict[str, tuple[str, str]]] = {
    "hard_bounce": ("Message Bounced", "bounced"),
    "soft_bounce": ("Message Deferred", "deferred"),
    "delivered": ("Message Delivered", "delivered"),
    "complaint": ("Message Complained", "complained"),
}


class ReportMessageNotFound(NotFound):
    """The report names no e-mail of this workspace (or of any, for the CLI)."""

    code = "report_message_not_found"


class ReportNotSigned(reports.ReportRefused):
    """With VERP on, a report that does not come to (or name) a message's signed bounce address: its
    Message-ID alone proves nothing, since every recipient of the message knows it."""

    code = "report_not_signed"


class ReportOutcome(BaseModel):
    kind: Kind
    recipient: str
    reported_recipient: str | None
    action: str | None
    status: str | None
    diagnostic: str | None
    applied: bool  # False: the same report was applied before, nothing changed
    event: str | None
    suppressed: Literal["all", "marketing"] | None


class ReportApplied(BaseModel):
    format: reports.Format
    matched_by: Literal["verp", "message_id"]
    outbox_id: int
    message_id: str
    buyer_id: str
    journey: str | None
    outcomes: list[ReportOutcome]


class ReportRead(BaseModel):
    model_config = ConfigDict(from_attributes=True)
    id: int
    outbox_id: int
    buyer_id: str
    kind: Kind
    recipient: str
    format: reports.Format
    action: str | None
    status: str | None
    diagnostic: str | None
    reporter: str | None
    received_at: datetime


def receive(
    *, session: Session, raw: bytes, secret: str, workspace_id: str | None, verp: bool,
    now: datetime | None = None,
) -> tuple[str, ReportApplied]:  # fmt: skip
    """Parse and apply one raw report; (its workspace, what was done). ReportRefused, ReportMessageNotFound."""
    return apply(session=session, report=reports.parse(raw), secret=secret, workspace_id=workspace_id,
                 verp=verp, now=now)  # fmt: skip


def apply(
    *, session: Session, report: reports.Report, secret: str, workspace_id: str | None, verp: bool,
    now: datetime | None = None,
) -> tuple[str, ReportApplied]:  # fmt: skip
    """``verp``: the server sends with VERP (``Settings.verp_enabled``), so only a report carrying a
    message's signed bounce address is applied; one naming only a Message-ID is ReportNotSigned."""
    now = now or utcnow()
    row, matched_by = _find(session, report, secret, workspace_id, verp)
    outcomes = [_apply_one(session, row, report, r, now) for r in _about(report, row)]
    return row.workspace_id, ReportApplied(
        format=report.format, matched_by=matched_by, outbox_id=row.id, message_id=row.message_id,
        buyer_id=row.buyer_id, journey=row.journey, outcomes=outcomes,
    )  # fmt: skip


def list_reports(
    *, session: Session, workspace_id: str, limit: int, cursor: str | None, kind: str | None = None,
    recipient: str | None = None,
) -> Page[ReportRead]:  # fmt: skip
    before = decode_cursor(cursor, types=(int,))
    rows = repo.reports_page(session, workspace_id, limit=limit + 1, before_id=before[0] if before else None,
                             kind=kind, recipient=recipient)  # fmt: skip
    return page_by_id(rows, limit, ReportRead)


def _find(
    session: Session, report: reports.Report, secret: str, workspace_id: str | None, verp: bool
) -> tuple[OutboxMessage, Literal["verp", "message_id"]]:
    """The message a report names: in ``workspace_id``, or — the operator's CLI reading the bounce mailbox,
    before any workspace is known — in each workspace in turn (a self-hosted server has a few; every lookup
    is one indexed query that leads with the workspace, as the sharding rules want)."""
    if workspace_id is not None:
        spaces = [workspace_id]
    else:
        spaces = [w.id for w in workspace_service.list_workspaces(session=session)]
    outbox_id = reports.verp_outbox_id(report.verp, secret)
    if verp and outbox_id is None:
        raise ReportNotSigned(
            "this server sends with VERP: a report is applied only when it comes to a message's signed bounce "
            "address (bounces+<id>-<signature>@…); one that names only a Message-ID could be forged by anyone "
            "who received the message",
            details={"message_ids": list(report.message_ids[:_MAX_CANDIDATES])},
        )
    for space in spaces:
        if outbox_id is not None:
            row = repo.message_for_report(session, space, outbox_id=outbox_id)
            if row is not None and row.recipient:
                return row, "verp"
        for message_id in () if verp else report.message_ids[:_MAX_CANDIDATES]:
            row = repo.message_for_report(session, space, message_id=message_id)
            if row is not None and row.recipient:
                return row, "message_id"
    # The same answer whether the message is another workspace's or nobody's: nothing is revealed.
    raise ReportMessageNotFound(
        "the report names no e-mail sent from this workspace (no known Message-ID or bounce address)",
        details={"message_ids": list(report.message_ids[:_MAX_CANDIDATES])},
    )


def _about(report: reports.Report, row: OutboxMessage) -> list[reports.Recipient]:
    """The report's recipients that are this message's: by address (final or original recipient); a
    single recipient under another address is this message's too (forwarded, or redacted by a complaint
    loop)."""
    address = (row.recipient or "").lower()
    matching = [r for r in report.recipients if address in (r.address, r.original)]
    if matching:
        return matching[:1]
    if len(report.recipients) == 1:
        return list(report.recipients)
    raise MalformedReport("none of the report's recipients is the recipient of the message it names")


def _apply_one(
    session: Session, row: OutboxMessage, report: reports.Report, found: reports.Recipient, now: datetime
) -> ReportOutcome:
    address = row.recipient or ""
    diagnostic = found.diagnostic[:500] if found.diagnostic else None
    new = repo.add_report(session, {
        "workspace_id": row.workspace_id, "outbox_id": row.id, "buyer_id": row.buyer_id, "kind": found.kind,
        "recipient": address, "format": report.format, "action": found.action, "status": found.status,
        "diagnostic": diagnostic, "reporter": (report.reporter or "")[:255] or None, "received_at": now,
    })  # fmt: skip
    name, suffix = EVENTS[found.kind]
    outcome: dict[str, Any] = {
        "kind": found.kind, "recipient": address, "reported_recipient": found.address, "action": found.action,
        "status": found.status, "diagnostic": diagnostic, "applied": new is not None, "event": name,
        "suppressed": None,
    }  # fmt: skip
    if new is None:
        return ReportOutcome(**outcome)
    reason = " ".join(p for p in (found.status, found.diagnostic) if p) or found.kind
    props: dict[str, Any] = {"reason": reason[:200], "status": found.status, "report": report.format}
    if found.kind == "hard_bounce":
        _suppress(session, row, "all", f"hard bounce: {reason}", now)
        outcome["suppressed"] = "all"
        props["bounce_type"] = "hard"
    elif found.kind == "soft_bounce":
        props["action"] = found.action
        if _soft_streak(session, row, now):
            _suppress(session, row, "all", f"{SOFT_BOUNCE_LIMIT} soft bounces in a row, last: {reason}", now)
            outcome["suppressed"] = "all"
    elif found.kind == "complaint":
        _suppress(session, row, "marketing", f"complaint ({report.feedback_type or 'abuse'})", now)
        outcome["suppressed"] = "marketing"
        props["feedback_type"] = report.feedback_type
        with contextlib.suppress(BuyerNotFound):  # an erased buyer: the address is suppressed all the same
            identity_service.set_consent(session=session, workspace_id=row.workspace_id, buyer_id=row.buyer_id,
                                         consent=ConsentUpdate(marketing=False), actor="buyer:complaint")  # fmt: skip
    try:
        sending.feedback(session, row, name, props, suffix)
    except BuyerNotFound:
        outcome["event"] = None  # an erased buyer gets no new events
    return ReportOutcome(**outcome)


def _suppress(session: Session, row: OutboxMessage, scope: str, reason: str, now: datetime) -> None:
    repository.suppress(session, {"workspace_id": row.workspace_id, "channel": "email",
                                  "address": row.recipient, "scope": scope, "reason": reason[:200],
                                  "created_at": now})  # fmt: skip


def _soft_streak(session: Session, row: OutboxMessage, now: datetime) -> bool:
    """Whether the last SOFT_BOUNCE_LIMIT e-mails handed over to the address, up to this one, all
    soft-bounced and none was reported delivered (a message that went through breaks the streak)."""
    until = row.sent_at or now
    ids = repo.last_sent_to(
        session, row.workspace_id, row.buyer_id, row.recipient or "", until, SOFT_BOUNCE_LIMIT
    )
    if len(ids) < SOFT_BOUNCE_LIMIT:
        return False
    kinds = repo.report_kinds(session, row.workspace_id, ids)
    return all("soft_bounce" in kinds.get(i, set()) and "delivered" not in kinds.get(i, set()) for i in ids)
