"""Sending outbox messages a batch at a time: one transaction gates the batch and marks what may go
``sending``; the messages are handed to their channels (e-mail over the worker thread's one kept-open SMTP
connection); one transaction records every outcome and appends the batch's feedback events in one ingestion.

A batch holds at most one message per buyer: the others wait for the next pass, so a frequency cap counts
the message sent before them and a hard bounce suppresses the address before they are gated.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from offerloop.db.uow import Database, after_commit
from offerloop.delivery import audience, dispatch, inbox, repository, senders, sending
from offerloop.delivery.links import Links
from offerloop.models import Job, OutboxMessage

Result = dict[int, datetime | BaseException | None]


class TransientSend(RuntimeError):
    """The channel said try again later: the job retries with backoff, then gives up (failed)."""


@dataclass(frozen=True)
class _Cleared:
    """A message the first transaction let go: its job, and the e-mail to send (None: a web push)."""

    job_id: int
    outbox_id: int
    email: dispatch.Email | None
    who: audience.Recipient | None  # as the gate read it: the feedback event names the buyer the same way


def send(
    db: Database, jobs: Iterable[Job], now: datetime, *, mailer: Callable[[], dispatch.Mailer],
    links_for: Callable[[Session], Links],
) -> Result:  # fmt: skip
    """Send the messages of ``delivery.send`` jobs (keyed by outbox id); per job: None (done), the time to
    try again (a send window, a later pass) or the error it failed with (retried with backoff)."""
    results: Result = {}
    by_workspace: dict[str, list[Job]] = {}
    for job in jobs:
        if job.workspace_id is None:
            results[job.id] = None
        else:
            by_workspace.setdefault(job.workspace_id, []).append(job)
    for workspace_id, group in by_workspace.items():
        results.update(_send_workspace(db, workspace_id, group, now, mailer, links_for))
    return results


def _send_workspace(
    db: Database, workspace_id: str, jobs: list[Job], now: datetime, mailer: Callable[[], dispatch.Mailer],
    links_for: Callable[[Session], Links],
) -> Result:  # fmt: skip
    results: Result = {}
    with db.write() as session:
        cleared = _clear(session, workspace_id, jobs, now, results, mailer, links_for)
    outcomes: dict[int, dispatch.Outcome] = {}
    for message in cleared:
        try:
            if message.email is not None:
                outcomes[message.outbox_id] = mailer().send(message.email)
            else:
                pushed = dispatch.push(db, workspace_id, message.outbox_id)
                if pushed is not None:
                    outcomes[message.outbox_id] = pushed
        except Exception as exc:  # stays ``sending``: its job retries it; the batch's others are recorded
            results[message.job_id] = exc
    if not outcomes:
        return results
    with db.write() as session:
        rows = {r.id: r for r in repository.messages(session, workspace_id, sorted(outcomes), lock=True)}
        events: list[dict[str, Any]] = []
        for message in cleared:
            row, outcome = rows.get(message.outbox_id), outcomes.get(message.outbox_id)
            if row is None or outcome is None:
                continue
            events += record_outcome(session, row, outcome, now, message.who)
            if outcome.status == "transient":
                results[message.job_id] = TransientSend(outcome.detail or "try again later")
        sending.record(session, workspace_id, events)
    return results


def _clear(
    session: Session, workspace_id: str, jobs: list[Job], now: datetime, results: Result,
    mailer: Callable[[], dispatch.Mailer], links_for: Callable[[Session], Links],
) -> list[_Cleared]:  # fmt: skip
    """Gate the batch in one transaction: what may go now is marked ``sending`` (e-mail, push) or handed
    over at once (in-app, webhooks: a write in this transaction)."""
    rows = {
        r.id: r for r in repository.messages(session, workspace_id, [int(j.key) for j in jobs], lock=True)
    }
    reads = sending.reads_of(session)
    buyers: set[str] = set()
    events: list[dict[str, Any]] = []
    cleared: list[_Cleared] = []
    link: Links | None = None
    refused: dict[
        str | None, str | None
    ] = {}  # the workspace's From -> why it may not be used (None: it may)
    for job in jobs:
        row = rows.get(int(job.key))
        results[job.id] = None
        if row is None or row.status in sending.FINAL:
            continue
        if row.buyer_id in buyers:  # the buyer's next message goes in the next pass
            results[job.id] = now
            continue
        buyers.add(row.buyer_id)
        who = audience.recipient(session, workspace_id, row.buyer_id)
        verdict = sending.gate(session, row, who, now, reads)
        if verdict.verdict == "later":
            row.not_before = results[job.id] = verdict.when
            continue
        if verdict.verdict in ("skip", "suppress"):
            row.status = "suppressed" if verdict.verdict == "suppress" else "skipped"
            row.detail = verdict.reason
            continue
        row.attempts += 1
        if row.channel == "email":
            sender = reads.rules(workspace_id).sender
            if sender not in refused:
                refused[sender] = senders.problem(session, workspace_id, sender, mailer().senders)
            if refused[sender] is not None:  # the operator no longer allows this From: it never will go
                outcome = dispatch.Outcome("permanent", f"sender not allowed: {refused[sender]}")
                events += record_outcome(session, row, outcome, now, who)
                continue
            row.status = "sending"
            link = link or links_for(session)
            email = mailer().snapshot(row, sender, link)
            cleared.append(_Cleared(job.id, row.id, email, who))
        elif row.channel == "push":
            row.status = "sending"
            cleared.append(_Cleared(job.id, row.id, None, who))
        else:
            events += record_outcome(session, row, dispatch.deliver_local(session, row), now, who)
    sending.record(session, workspace_id, events)
    return cleared


def record_outcome(
    session: Session, row: OutboxMessage, outcome: dispatch.Outcome, now: datetime,
    who: audience.Recipient | None = None,
) -> list[dict[str, Any]]:  # fmt: skip
    """Record what the channel answered on the message (a hard bounce also suppresses the address); the
    feedback events to append."""
    if outcome.status == "sent":
        row.status, row.sent_at, row.detail = "sent", now, outcome.detail[:2000] or None
        if row.channel == "inapp":
            workspace_id, buyer_id = row.workspace_id, row.buyer_id
            after_commit(session, lambda: inbox.notify(workspace_id, buyer_id))
        return [sending.feedback_event(session, row, "Message Sent", {}, "sent", who=who)]
    if outcome.status == "permanent":
        row.status, row.detail = "failed", outcome.detail[:2000]
        reason = {"reason": outcome.detail[:200]}
        if outcome.bounce and row.recipient:
            repository.suppress(session, {"workspace_id": row.workspace_id, "channel": row.channel,
                                          "address": row.recipient, "scope": "all",
                                          "reason": f"hard bounce: {outcome.detail}"[:200], "created_at": now})  # fmt: skip
            return [sending.feedback_event(session, row, "Message Bounced", reason, "bounced", who=who)]
        return [sending.feedback_event(session, row, "Message Failed", reason, "failed", who=who)]
    row.status, row.detail = "queued", outcome.detail[:2000]
    return []
