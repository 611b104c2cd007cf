"""Background jobs of the webhook channel: a delivery's scheduled attempts and manual replays.

Not transactional: the request runs outside any transaction (a slow receiver must not hold the database's
writer), between a read that plans it and a write that records it. A scheduled job returns the time of the
next attempt; the job's key is the delivery id.
"""

from __future__ import annotations

from datetime import datetime

from offerloop.delivery.webhooks import sender, service
from offerloop.jobs.runner import Context, register


def _attempt(ctx: Context, trigger: str) -> datetime | None:
    assert ctx.job.workspace_id is not None
    workspace_id, delivery_id = ctx.job.workspace_id, ctx.job.key
    config = ctx.deps.get("webhooks") or sender.current()
    with ctx.db.read() as session:
        plan = service.plan_attempt(
            session=session, workspace_id=workspace_id, delivery_id=delivery_id, trigger=trigger, now=ctx.now
        )
    if plan is None:
        return None
    if isinstance(plan, str):
        with ctx.db.write() as session:
            service.fail_unsent(session=session, workspace_id=workspace_id, delivery_id=delivery_id, reason=plan,
                                now=ctx.now)  # fmt: skip
        return None
    outcome = sender.post(
        plan.url, body=plan.body, secrets=plan.secrets, event_id=plan.event_id,
        timestamp=int(ctx.now.timestamp()), config=config,
    )  # fmt: skip
    with ctx.db.write() as session:
        return service.record_attempt(
            session=session, workspace_id=workspace_id, delivery_id=delivery_id, trigger=trigger, outcome=outcome,
            now=ctx.now,
        )  # fmt: skip


@register(service.SEND, transactional=False, lease_s=120.0)
def send(ctx: Context) -> datetime | None:
    return _attempt(ctx, "schedule")


@register(service.REPLAY, transactional=False, lease_s=120.0)
def replay(ctx: Context) -> datetime | None:
    return _attempt(ctx, "replay")


__all__ = ["replay", "send"]
