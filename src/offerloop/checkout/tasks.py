"""Background jobs of the checkout domain (thin: the job's key names the object, the service acts).

Due work (``checkout.due``; a subscription's own is in ``subscriptions/tasks.py``): each handler is transactional, so what it does and the job's finish commit
together (exactly once), and returns when the object is next due (None: nothing more to do).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from offerloop.checkout import due
from offerloop.checkout import service as checkout_service
from offerloop.jobs.runner import Context, register
from offerloop.models.jobs import Job
from offerloop.telemetry import log

# -- fulfilment: one job per fulfilment task (kind checkout.fulfil, key the task id) ---------------------


def _fulfil_failed(session: Session, job: Job, parked: bool) -> None:
    checkout_service.task_failed(
        session=session, workspace_id=str(job.workspace_id), task_id=int(job.key), attempts=job.attempts,
        error=job.last_error or "", retry_at=job.run_at, gave_up=parked,
    )  # fmt: skip


@register(
    checkout_service.FULFIL_KIND, max_attempts=checkout_service.MAX_ATTEMPTS, backoff_base_s=30.0,
    backoff_cap_s=3600.0, on_fail=_fulfil_failed,
)  # fmt: skip
def fulfil(ctx: Context) -> datetime | None:
    """Deliver one task in the job's transaction: the grant, the task's status and the job's finish commit
    together, so a component is delivered exactly once."""
    assert ctx.session is not None
    task = checkout_service.run_task(
        session=ctx.session, workspace_id=str(ctx.job.workspace_id), task_id=int(ctx.job.key), now=ctx.now
    )
    if task is not None:
        log.info("fulfilment", order_id=task.order_id, component=task.component, status=task.status)
        fulfilled = ctx.deps.get("fulfilled")
        if fulfilled is not None:  # `run_fulfilment` reports what it ran
            fulfilled.append((task.order_id, task.component, task.status))
    return None


# -- due work ---------------------------------------------------------------------------------------


@register(due.HOLD_EXPIRY)
def hold_expiry(ctx: Context) -> datetime | None:
    assert ctx.session is not None and ctx.job.workspace_id is not None
    return checkout_service.hold_expiry_due(
        session=ctx.session,
        workspace_id=ctx.job.workspace_id,
        order_id=due.object_id(ctx.job.key),
        now=ctx.now,
    )


@register(due.SWEEP, max_attempts=1000, backoff_cap_s=due.SWEEP_EVERY_S, every_s=due.SWEEP_EVERY_S)
def sweep(ctx: Context) -> datetime | None:
    assert ctx.session is not None
    full = checkout_service.sweep_due(session=ctx.session) >= checkout_service.SWEEP_LIMIT
    return ctx.now if full else ctx.now + timedelta(seconds=due.SWEEP_EVERY_S)
