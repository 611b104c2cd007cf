"""The background threads of a process: what `offerloop serve` and `offerloop worker` both start."""

from __future__ import annotations

from typing import Protocol

from offerloop.assembly.tasks import rewriter_config
from offerloop.config import Settings
from offerloop.db.uow import Database
from offerloop.decisions import service as decisions_service
from offerloop.delivery.push import service as push_service
from offerloop.delivery.webhooks import sender as webhook_sender
from offerloop.jobs.runner import Runner
from offerloop.pipeline import runner as pipeline_runner
from offerloop.worker import registry


class Background(Protocol):
    def start(self) -> None: ...
    def stop(self) -> None: ...


def prepare(settings: Settings) -> None:
    """Register every consumer and job kind, configured from ``settings`` (idempotent)."""
    registry.load()
    pipeline_runner.configure(settings)
    decisions_service.configure_learning(interval_s=settings.learn_interval_s)
    webhook_sender.configure(settings)
    push_service.configure(settings)


def pools(
    db: Database,
    settings: Settings,
    *,
    consumer_threads: int,
    job_threads: int,
    name: str = "jobs",
    serving: bool = True,
) -> list[Background]:
    """Two pools over the one jobs mechanism: consumer threads keep the log's lag near zero, job threads
    run renders, fulfilment, learning and due work — so a slow render never holds up an event. ``serving``:
    the process also answers requests."""
    out: list[Background] = []
    if consumer_threads:
        out.append(pipeline_runner.PipelineWorkers(db, threads=consumer_threads, serving=serving))
    if job_threads:
        jobs = Runner(
            db, threads=job_threads, poll_s=settings.worker_poll_s, clock=settings.job_clock(),
            only=pipeline_runner.other_kinds(), deps={"rewriter": rewriter_config(settings), "settings": settings}, name=name,
        )  # fmt: skip
        out.append(jobs)
    return out
