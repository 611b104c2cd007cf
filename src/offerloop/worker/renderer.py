"""Render workers: threads that claim queued artifact versions and render them.

Queued versions are rows, so the queue survives restarts and is shared by every process on the same
database: `offerloop serve` runs ``render_workers`` threads, and `offerloop worker` adds processes.
Requests that queue a version in this process wake the threads at once (after their commit); versions
queued elsewhere are found by polling every ``poll_s``.
"""

from __future__ import annotations

import threading

from offerloop.assembly import service as assembly_service
from offerloop.assembly.voice import RewriterConfig
from offerloop.config import Settings
from offerloop.db.uow import Database
from offerloop.telemetry import log

_wake = threading.Event()


def wake() -> None:
    """Tell this process's render threads that work was queued (called after a commit)."""
    _wake.set()


def rewriter_config(settings: Settings) -> RewriterConfig | None:
    """The voice rewriter, when configured (off by default)."""
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


class RenderWorkers:
    def __init__(self, db: Database, settings: Settings, *, threads: int = 1, poll_s: float = 0.5) -> None:
        self.db = db
        self.rewriter = rewriter_config(settings)
        self.poll_s = poll_s
        self._stop = threading.Event()
        self._threads = [
            threading.Thread(target=self._loop, name=f"render-{i}", daemon=True) for i in range(threads)
        ]

    def start(self) -> None:
        with self.db.write() as session:
            requeued = assembly_service.requeue_interrupted(session=session)
        if requeued:
            log.info("requeued interrupted renders", count=requeued)
        for t in self._threads:
            t.start()

    def stop(self) -> None:
        self._stop.set()
        _wake.set()
        for t in self._threads:
            t.join(timeout=60)

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                done = assembly_service.render_next(db=self.db, rewriter=self.rewriter)
            except Exception:  # one bad job must not kill the worker; the version records its error
                log.exception("render failed")
                done = None
            if done is None:
                _wake.wait(self.poll_s)
                _wake.clear()
            else:
                log.info("artifact rendered", artifact_id=done[0], version=done[1], status=done[2])
