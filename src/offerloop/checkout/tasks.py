"""Background jobs of the checkout domain."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from offerloop.checkout import service as checkout_service
from offerloop.jobs import runner
from offerloop.models.jobs import Job
from offerloop.telemetry import log

# -- fulfilment: one job per fulfilment task (kind checkout.fulfil, key the task id) ---------------------


def _fulfil_failed(session: Session, job: Job, parked: bool) -> None:
    checkout_service.task_failed(
        session=session, workspace_id=str(job.workspace_id), task_id=int(job.key), attempts=job.attempts,
        error=job.last_error or "", retry_at=job.run_at, gave_up=parked,
    )  # fmt: skip


@runner.register(
    checkout_service.FULFIL_KIND, max_attempts=checkout_service.MAX_ATTEMPTS, backoff_base_s=30.0,
    backoff_cap_s=3600.0, on_fail=_fulfil_failed,
)  # fmt: skip
def fulfil(ctx: runner.Context) -> datetime | None:
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
