"""Background jobs of the delivery domain: advancing a journey run, and sending one outbox message."""

from __future__ import annotations

import threading
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from offerloop.config import Settings
from offerloop.db.uow import after_commit
from offerloop.delivery import audience, dispatch, inbox, repository, sending
from offerloop.delivery.journeys import engine
from offerloop.delivery.links import Links
from offerloop.jobs.runner import Context, register
from offerloop.models import Job
from offerloop.workspaces import service as workspace_service

# The process's mailer, for the settings object it was built from (a new one closes the old connections).
_mailer_lock = threading.Lock()
_current: list[tuple[int, dispatch.Mailer]] = []


class TransientSend(RuntimeError):
    """The channel said try again later: the job retries with backoff, then gives up (failed)."""


def _settings(ctx: Context) -> Settings:
    found = ctx.deps.get("settings")
    return found if isinstance(found, Settings) else Settings()


def links_for(session: Session, settings: Settings) -> Links:
    secret = workspace_service.signing_secret(session=session, configured=settings.secret)
    return Links(public_url=settings.public_url, secret=secret)


@register(engine.RUN)
def run_journey(ctx: Context) -> datetime | None:
    assert ctx.session is not None and ctx.job.workspace_id is not None
    settings = _settings(ctx)
    return engine.advance(ctx.session, ctx.job.workspace_id, int(ctx.job.key), ctx.now,
                          links_for(ctx.session, settings), settings.holdout_share)  # fmt: skip


def _gave_up(session: Session, job: Job, parked: bool) -> None:
    if not parked or job.workspace_id is None:
        return
    row = repository.message(session, job.workspace_id, int(job.key))
    if row is not None and row.status not in sending.FINAL:
        row.status, row.detail = (
            "failed",
            f"gave up after {job.attempts} attempts: {job.last_error or ''}"[:2000],
        )
        sending.feedback(session, row, "Message Failed", {"reason": row.detail[:200]}, "failed")


@register(engine.SEND, transactional=False, lease_s=120.0, max_attempts=10, backoff_base_s=30.0,
          backoff_cap_s=4 * 3600.0, on_fail=_gave_up)  # fmt: skip
def send_message(ctx: Context) -> datetime | None:
    """Check, mark ``sending`` and commit; hand over outside any transaction; record the outcome."""
    assert ctx.job.workspace_id is not None
    workspace_id, outbox_id, now, settings = ctx.job.workspace_id, int(ctx.job.key), ctx.now, _settings(ctx)
    email: dispatch.Email | None = None
    outcome: dispatch.Outcome | None = None
    with ctx.db.write() as session:
        row = repository.message(session, workspace_id, outbox_id, lock=True)
        if row is None or row.status in sending.FINAL:
            return None
        who = audience.recipient(session, workspace_id, row.buyer_id)
        verdict = sending.gate(session, row, who, now)
        if verdict.verdict == "later":
            row.not_before = verdict.when
            return verdict.when
        if verdict.verdict in ("skip", "suppress"):
            row.status = "suppressed" if verdict.verdict == "suppress" else "skipped"
            row.detail = verdict.reason
            return None
        row.attempts += 1
        if row.channel in ("email", "push"):
            row.status = "sending"
            if row.channel == "email":
                rules = sending.workspace_rules(session, workspace_id)
                email = _mailer(settings).snapshot(row, rules.sender, links_for(session, settings))
        else:
            outcome = dispatch.deliver_local(session, row)
            _record(session, row, outcome, now)
    if outcome is None:
        if email is not None:
            outcome = _mailer(settings).send(email)
        else:
            with ctx.db.write() as session:
                row = repository.message(session, workspace_id, outbox_id)
                outcome = dispatch.push(session, row) if row is not None else None
        with ctx.db.write() as session:
            row = repository.message(session, workspace_id, outbox_id, lock=True)
            if row is not None and outcome is not None:
                _record(session, row, outcome, now)
    if outcome is not None and outcome.status == "transient":
        raise TransientSend(outcome.detail or "try again later")
    return None


def close_mailers() -> None:
    """Close the SMTP connections this process keeps open (a worker stopping, a test ending)."""
    with _mailer_lock:
        for _, mailer in _current:
            mailer.transport.close()
        _current.clear()


def _mailer(settings: Settings) -> dispatch.Mailer:
    with _mailer_lock:
        if _current and _current[0][0] == id(settings):
            return _current[0][1]
    close_mailers()
    mailer = dispatch.Mailer(settings)
    with _mailer_lock:
        _current.append((id(settings), mailer))
    return mailer


def _record(session: Session, row: Any, outcome: dispatch.Outcome, now: datetime) -> None:
    if outcome.status == "sent":
        row.status, row.sent_at, row.detail = "sent", now, outcome.detail[:2000] or None
        sending.feedback(session, row, "Message Sent", {}, "sent")
        if row.channel == "inapp":
            workspace_id, buyer_id = row.workspace_id, row.buyer_id
            after_commit(session, lambda: inbox.notify(workspace_id, buyer_id))
    elif outcome.status == "permanent":
        row.status, row.detail = "failed", outcome.detail[:2000]
        if outcome.bounce and row.recipient:
            repository.suppress(session, {"workspace_id": row.workspace_id, "channel": row.channel,
                                          "address": row.recipient, "scope": "all",
                                          "reason": f"hard bounce: {outcome.detail}"[:200], "created_at": now})  # fmt: skip
            sending.feedback(session, row, "Message Bounced", {"reason": outcome.detail[:200]}, "bounced")
        else:
            sending.feedback(session, row, "Message Failed", {"reason": outcome.detail[:200]}, "failed")
    else:
        row.status, row.detail = "queued", outcome.detail[:2000]
