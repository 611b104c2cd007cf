"""Background jobs of the reports domain: computing one report's snapshot."""

from __future__ import annotations

from datetime import datetime

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
