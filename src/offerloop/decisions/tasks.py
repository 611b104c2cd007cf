"""Background jobs of the decisions domain: closing outcome windows and learning, per placement."""

from __future__ import annotations

from datetime import datetime

from offerloop.decisions import service as decisions_service
from offerloop.jobs import runner
from offerloop.telemetry import log


@runner.register(decisions_service.CLOSE_KIND, backoff_base_s=30.0)
def close_windows(ctx: runner.Context) -> datetime | None:
    """Default rewards for the workspace's ended windows; runs again at the next window's end."""
    assert ctx.session is not None
    return decisions_service.close_due_windows(
        session=ctx.session, workspace_id=str(ctx.job.workspace_id), now=ctx.now
    )


@runner.register(decisions_service.LEARN_KIND, lease_s=300.0, backoff_base_s=30.0)
def learn(ctx: runner.Context) -> datetime | None:
    """Train one placement's policy on its new rewards (the job key is its one writer)."""
    assert ctx.session is not None
    workspace_id, _, placement = ctx.job.key.partition(":")
    result = decisions_service.learn(session=ctx.session, workspace_id=workspace_id, placement=placement)
    log.info("learned", workspace_id=workspace_id, placement=placement, **result)
    return None
