"""Background jobs of the delivery domain: advancing journey runs, and sending outbox messages (in batches)."""

from __future__ import annotations

import threading
from collections.abc import Mapping
from datetime import datetime
from typing import Any, Final

from sqlalchemy.orm import Session

from offerloop.config import Settings
from offerloop.delivery import batch, dispatch, repository, sending
from offerloop.delivery.journeys import engine
from offerloop.delivery.links import Links
from offerloop.jobs.runner import BatchContext, BatchResult, Context, register, register_batch
from offerloop.models import Job
from offerloop.workspaces import service as workspace_service

# The process's mailer, for the settings object it was built from (a new one closes the old connections).
_mailer_lock = threading.Lock()
_current: list[tuple[int, dispatch.Mailer]] = []


# A batch's size bounds what a crash can duplicate (see ``sending``): the messages of one batch handed over
# but not yet recorded. Fifty keep a pass well inside the lease and cost a few statements per message.
SEND_BATCH: Final = 50
RUN_BATCH: Final = 50


def _settings(deps: Mapping[str, Any]) -> Settings:
    found = deps.get("settings")
    return found if isinstance(found, Settings) else Settings()


def links_for(session: Session, settings: Settings) -> Links:
    secret = workspace_service.signing_secret(session=session, configured=settings.secret)
    return Links(public_url=settings.public_url, secret=secret)


def _hold_runs(session: Session, jobs: tuple[Job, ...], deps: Mapping[str, Any]) -> None:
    engine.hold_runs(session, [(job.workspace_id, job.key) for job in jobs if job.workspace_id is not None])


@register(engine.RUN, batch=RUN_BATCH, prepare=_hold_runs)
def run_journey(ctx: Context) -> datetime | None:
    assert ctx.session is not None and ctx.job.workspace_id is not None
    settings = _settings(ctx.deps)
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


@register_batch(engine.SEND, size=SEND_BATCH, lease_s=120.0, max_attempts=10, backoff_base_s=30.0,
                backoff_cap_s=4 * 3600.0, on_fail=_gave_up)  # fmt: skip
def send_messages(ctx: BatchContext) -> BatchResult:
    """Gate, mark ``sending`` and commit; hand over outside any transaction; record the outcomes (a batch)."""
    settings = _settings(ctx.deps)
    return batch.send(ctx.db, ctx.jobs, ctx.now, mailer=lambda: _mailer(settings),
                      links_for=lambda session: links_for(session, settings))  # fmt: skip


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
