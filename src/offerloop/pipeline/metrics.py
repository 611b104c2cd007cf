"""The pipeline's Prometheus metrics: lag, throughput, parked events and step durations per consumer."""

from __future__ import annotations

from prometheus_client import Counter, Gauge, Histogram

LAG = Gauge("offerloop_consumer_lag_events", "Events appended but not yet done by the consumer", ["consumer"])
PROCESSED = Counter("offerloop_consumer_processed_total", "Events the consumer has done", ["consumer"])
PARKED = Counter(
    "offerloop_consumer_parked_total", "Events the consumer parked after repeated failures", ["consumer"]
)
STEP_SECONDS = Histogram(
    "offerloop_consumer_step_seconds",
    "Time of one consumer step (up to the batch size of one partition, with its checkpoint)",
    ["consumer"],
    buckets=(0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 10.0),
)
READ_AHEAD = Counter(
    "offerloop_consumer_read_ahead_total",
    "Steps read (and prepared) before their write transaction: used, or stale (read again in the transaction)",
    ["outcome"],
)
HEAD = Gauge("offerloop_pipeline_head_seq", "The last sequence number appended to the log")


def stepped(consumer: str, done: int, parked: int, seconds: float) -> None:
    """Record a committed step."""
    if done:
        PROCESSED.labels(consumer).inc(done)
    if parked:
        PARKED.labels(consumer).inc(parked)
    STEP_SECONDS.labels(consumer).observe(seconds)


def read_ahead(outcome: str) -> None:
    READ_AHEAD.labels(outcome).inc()
