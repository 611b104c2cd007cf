"""Background jobs of the reports domain: computing one report's snapshot, and (recurring) pruning the
snapshots nobody computes or views any more."""

from __future__ import annotations

from datetime import datetime, timedelta

from offerloop.config import Settings
from offerloop.jobs import runner
from offerloop.reports import service as reports_service


@runner.register(
    reports_service.JOB_KIND, transactional=False, lease_s=900.0, max_attempts=3, backoff_base_s=30.0
)
def refresh(ctx: runner.Context) -> datetime | None:
    """Compute the report its payload names and keep the snapshot (a domain error is kept as its result)."""
    params = reports_service.params_of(ctx.job.payload)
    reports_service.compute(
        ctx.db, workspace_id=str(ctx.job.workspace_id), params=params, now=ctx.now, raise_error=False
    )
    return None


@runner.register(
    reports_service.PRUNE_KIND, max_attempts=1000, backoff_cap_s=reports_service.PRUNE_EVERY_S,
    every_s=reports_service.PRUNE_EVERY_S,
)  # fmt: skip
def prune(ctx: runner.Context) -> datetime | None:
    """Transactional: the deletions and the job's next time commit together; a full batch runs again at once."""
    assert ctx.session is not None
    found = ctx.deps.get("settings")
    keep_s = (found if isinstance(found, Settings) else Settings()).report_snapshot_keep_s
    deleted = reports_service.prune(session=ctx.session, now=ctx.now, keep_s=keep_s)
    if deleted >= reports_service.PRUNE_BATCH:
        return ctx.now
    return ctx.now + timedelta(seconds=reports_service.PRUNE_EVERY_S)
