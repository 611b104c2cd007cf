"""Background jobs of the assembly domain: rendering a queued artifact version (kind ``assembly.render``)."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from offerloop.assembly import service as assembly_service
from offerloop.assembly.voice import RewriterConfig
from offerloop.config import Settings
from offerloop.jobs import runner
from offerloop.models.jobs import Job
from offerloop.telemetry import log

# Rendering calls the rewriter and takes seconds, so it runs outside a transaction under a lease renewed
# while it works: a killed worker's render is claimed again by another worker once this much time passes.
RENDER_LEASE_S = 30.0
RENDER_MAX_ATTEMPTS = 5


def rewriter_config(settings: Settings) -> RewriterConfig | None:
    """The voice rewriter, when configured (off by default): what a worker process gives its render jobs."""
    if not settings.rewriter_url or not settings.rewriter_model:
        return None
    return RewriterConfig(
        base_url=settings.rewriter_url, model=settings.rewriter_model, api_key=settings.rewriter_api_key,
        timeout_s=settings.rewriter_timeout_s, voice=settings.rewriter_voice,
        max_attempts=settings.rewriter_max_attempts,
        allowed_domains=tuple(d.strip() for d in settings.rewriter_allowed_domains.split(",") if d.strip()),
        concurrency=settings.rewriter_concurrency, artifact_deadline_s=settings.rewriter_artifact_deadline_s,
        breaker_failures=settings.rewriter_breaker_failures, breaker_cooldown_s=settings.rewriter_breaker_cooldown_s,
        cache_size=settings.rewriter_cache_size,
    )  # fmt: skip


def _gave_up(session: Session, job: Job, parked: bool) -> None:
    """A parked render job (it failed every attempt) leaves its version failed, with the reason."""
    if parked:
        artifact_id, version = _version_of(job)
        assembly_service.render_failed(session=session, workspace_id=str(job.workspace_id),
                                       artifact_id=artifact_id, version=version, error=job.last_error or "")  # fmt: skip


def _version_of(job: Job) -> tuple[str, int]:
    artifact_id, _, number = job.key.rpartition(":")
    return artifact_id, int(number)


@runner.register(
    assembly_service.RENDER_KIND, transactional=False, lease_s=RENDER_LEASE_S,
    max_attempts=RENDER_MAX_ATTEMPTS, backoff_base_s=10.0, backoff_cap_s=600.0, on_fail=_gave_up,
)  # fmt: skip
def render(ctx: runner.Context) -> datetime | None:
    """Render the version named by the job's key; a version already rendered (or superseded) is a no-op."""
    artifact_id, version = _version_of(ctx.job)
    with runner.keep_lease(ctx, RENDER_LEASE_S):
        status = assembly_service.render_queued(
            db=ctx.db, workspace_id=str(ctx.job.workspace_id), artifact_id=artifact_id, version=version,
            rewriter=ctx.deps.get("rewriter"),
        )  # fmt: skip
    if status is not None:
        log.info("artifact rendered", artifact_id=artifact_id, version=version, status=status)
        rendered = ctx.deps.get("rendered")
        if rendered is not None:  # `run_pending` reports what it rendered
            rendered.append((artifact_id, version, status))
    return None
