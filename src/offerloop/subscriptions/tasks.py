"""Background jobs of the subscriptions domain: a manual subscription's period end and payment retry.

Each handler is transactional (what it does and the job's finish commit together) and returns when the
subscription is next due (None: nothing more to do). The job kinds and keys are ``checkout.due``'s.
"""

from __future__ import annotations

from datetime import datetime

from offerloop.checkout import due
from offerloop.jobs.runner import Context, register
from offerloop.subscriptions import service


@register(due.PERIOD_END)
def period_end(ctx: Context) -> datetime | None:
    assert ctx.session is not None and ctx.job.workspace_id is not None
    return service.period_end_due(session=ctx.session, workspace_id=ctx.job.workspace_id,
                                  subscription_id=due.object_id(ctx.job.key), now=ctx.now)  # fmt: skip


@register(due.PAYMENT_RETRY)
def payment_retry(ctx: Context) -> datetime | None:
    assert ctx.session is not None and ctx.job.workspace_id is not None
    return service.payment_retry_due(session=ctx.session, workspace_id=ctx.job.workspace_id,
                                     subscription_id=due.object_id(ctx.job.key), now=ctx.now)  # fmt: skip
