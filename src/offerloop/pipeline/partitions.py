"""Monthly partitions of the log on PostgreSQL: a due job keeps this month's and next month's in place."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import text
from sqlalchemy.orm import Session

from offerloop.core.clock import utcnow
from offerloop.db.uow import Database
from offerloop.jobs import queue
from offerloop.jobs import runner as jobs_runner

KIND = "pipeline:events-partitions"


def month_bounds(year: int, month: int) -> tuple[datetime, datetime]:
    start = datetime(year, month, 1, tzinfo=UTC)
    return start, datetime(year + month // 12, month % 12 + 1, 1, tzinfo=UTC)


def partition_name(start: datetime) -> str:
    return f"events_y{start:%Y}m{start:%m}"


def ensure_month(session: Session, year: int, month: int) -> bool:
    """Create the month's partition if missing (moving any of its rows out of the default partition in the
    same transaction); True when it was created."""
    start, end = month_bounds(year, month)
    name = partition_name(start)
    if session.execute(text("SELECT to_regclass(:n)"), {"n": name}).scalar() is not None:
        return False
    bounds = {"a": start, "b": end}
    # Attaching a range the default partition holds rows of would fail: move them into the new table first.
    session.execute(text("LOCK TABLE events_default IN ACCESS EXCLUSIVE MODE"))
    session.execute(text(f"CREATE TABLE {name} (LIKE events INCLUDING DEFAULTS)"))
    session.execute(
        text(
            f"WITH moved AS (DELETE FROM events_default WHERE received_at >= :a AND received_at < :b RETURNING *) "
            f"INSERT INTO {name} SELECT * FROM moved"
        ),
        bounds,
    )
    session.execute(
        text(
            f"ALTER TABLE events ATTACH PARTITION {name} FOR VALUES FROM ('{start.isoformat()}') TO ('{end.isoformat()}')"
        )
    )
    return True


# A short lease like the consumers' (run_due leases a pass with the longest of its kinds).
@jobs_runner.register(KIND, lease_s=10.0, backoff_base_s=60.0, backoff_cap_s=3600.0)
def _keep_partitions(ctx: jobs_runner.Context) -> datetime | None:
    """This month's and next month's partitions exist; runs again tomorrow."""
    assert ctx.session is not None
    if ctx.session.get_bind().dialect.name == "postgresql":
        now = ctx.now.astimezone(UTC)
        ensure_month(ctx.session, now.year, now.month)
        ensure_month(ctx.session, now.year + now.month // 12, now.month % 12 + 1)
    return ctx.now + timedelta(days=1)


def schedule(db: Database) -> None:
    """Make sure the job exists (idempotent; a queued one keeps its time)."""
    with db.write() as session:
        queue.enqueue(session, kind=KIND, key="events", now=utcnow())
