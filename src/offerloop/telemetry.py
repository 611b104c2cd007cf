"""Prometheus metrics and structured logging shared by the entrypoints and the domains."""

from __future__ import annotations

import logging
import sys

import structlog
from prometheus_client import Counter, Histogram

EVENTS = Counter("offerloop_events_total", "Events received, by outcome", ["outcome"])
MERGES = Counter("offerloop_identity_merges_total", "Buyers merged by identity resolution")
CONFLICTS = Counter("offerloop_identity_conflicts_total", "Merges refused between two identified buyers")
REQUEST_SECONDS = Histogram(
    "offerloop_http_request_duration_seconds",
    "HTTP request latency",
    ["method", "route", "status"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0),
)
INGEST_BATCH_SECONDS = Histogram(
    "offerloop_ingest_batch_seconds",
    "Time to validate, resolve and commit one ingest request",
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1.0),
)


class _StderrLogger:
    """Writes each line to ``sys.stderr`` as it is at that moment (a CLI run in-process, or a test runner,
    may swap and close the stream it was configured with)."""

    def msg(self, message: str) -> None:
        print(message, file=sys.stderr, flush=True)

    log = debug = info = warn = warning = error = critical = exception = fatal = failure = err = msg


class _StderrLoggerFactory:
    def __call__(self, *args: object) -> _StderrLogger:
        return _StderrLogger()


def configure_logging(level: str = "INFO", json: bool = True) -> None:
    """JSON lines on stderr (or a readable console format when json=False)."""
    logging.basicConfig(format="%(message)s", stream=sys.stderr, level=level.upper(), force=True)
    logging.getLogger("alembic").setLevel(logging.WARNING)
    renderer: structlog.types.Processor = (
        structlog.processors.JSONRenderer() if json else structlog.dev.ConsoleRenderer(colors=False)
    )
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level.upper())),
        logger_factory=_StderrLoggerFactory(),
        cache_logger_on_first_use=True,
    )


log = structlog.get_logger("offerloop")
