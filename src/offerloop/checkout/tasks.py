"""Background jobs of the checkout domain (thin: the job's key names the object, the service acts).

Due work (``checkout.due``): each handler is transactional, so what it does and the job's finish commit
together (exactly once), and returns when the object is next due (None: nothing more to do).
"""

from __future__ import annotations

from datetime import datetime, timedelta

from offerloop.checkout import due
from offerloop.checkout import service as checkout_service
from offerloop.jobs.runner import Context, register

# -- due work ---------------------------------------------------------------------------------------


@register(due.PERIOD_END)
def period_end(ctx: Context) -> datetime | None:
    assert ctx.session is not None and ctx.job.workspace_id is not None
    return checkout_service.period_end_due(
        session=ctx.session,
        workspace_id=ctx.job.workspace_id,
        subscription_id=due.object_id(ctx.job.key),
        now=ctx.now,
    )


@register(due.PAYMENT_RETRY)
def payment_retry(ctx: Context) -> datetime | None:
    assert ctx.session is not None and ctx.job.workspace_id is not None
    return checkout_service.payment_retry_due(
        session=ctx.session,
        workspace_id=ctx.job.workspace_id,
        subscription_id=due.object_id(ctx.job.key),
        now=ctx.now,
    )


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
