"""What the pipeline is doing: per-consumer checkpoints and lag, parked events and their replay, readiness."""

from __future__ import annotations

import bisect
from datetime import datetime, timedelta

from sqlalchemy import and_, case, func, or_, select
from sqlalchemy.orm import Session

from offerloop.core.clock import utcnow
from offerloop.core.errors import Conflict, NotFound
from offerloop.core.pages import decode_cursor, page_by_id
from offerloop.db.uow import Database
from offerloop.jobs import runner as jobs_runner
from offerloop.models import Event, Job, ParkedEvent
from offerloop.pipeline import checkpoints, log, metrics, runner
from offerloop.pipeline.registry import consumers
from offerloop.pipeline.schemas import ConsumerStatus, ParkedPage, ParkedRead, ParkedReplay, PipelineStatus


class ParkedNotFound(NotFound):
    code = "parked_event_not_found"


class ParkedClosed(Conflict):
    code = "parked_event_closed"


class _Histogram:
    """The log's events of one workspace after the lowest of some thresholds, counted by partition and by the
    interval between consecutive thresholds: one statement, however many consumers and partitions ask.
    Exact for any interval bounded by two of the thresholds."""

    def __init__(self, session: Session, workspace_id: str, thresholds: set[int]) -> None:
        self._t = sorted(thresholds)
        self._n: dict[tuple[int | None, int], int] = {}
        if not self._t:
            return
        # bucket k (1..m): t[k-1] < id <= t[k] (t[m] is +infinity)
        bucket = case(*[(Event.id > t, k + 1) for k, t in reversed(list(enumerate(self._t)))], else_=0)
        rows = session.execute(
            select(Event.part, bucket, func.count())
            .where(Event.workspace_id == workspace_id, Event.id > self._t[0])
            .group_by(Event.part, bucket)
        ).all()
        self._n = {(part, int(k)): int(n) for part, k, n in rows}

    def count(
        self, after: int, *, part: int | None = None, any_part: bool = False, up_to: int | None = None
    ) -> int:
        first = bisect.bisect_left(self._t, after) + 1
        last = len(self._t) if up_to is None else bisect.bisect_left(self._t, up_to)
        return sum(n for (p, k), n in self._n.items() if first <= k <= last and (any_part or p == part))


def lags(session: Session, workspace_id: str) -> dict[str, tuple[int, int]]:
    """Consumer name -> (checkpoint, lag) in a workspace, for every consumer at once. A buyer-stage consumer's
    lag is what the identity stage has not passed yet, plus, in each of its partitions, what it has not
    applied of what the identity stage has; its checkpoint is the lowest of the partitions that are behind."""
    cs = consumers()
    by_kind = {log.kind_of(c.name): c.name for c in cs}
    cursors: dict[str, dict[int, int]] = {c.name: {} for c in cs}
    for kind, key, cursor in checkpoints.cursors(session, workspace_id, list(by_kind)):
        cursors[by_kind[kind]][int(key.rsplit(":", 1)[1])] = int(cursor or 0)
    origin = log.origin(session, workspace_id)
    gates: dict[str, int] = {}
    buyer_gate: int | None = None
    for c in cs:
        if c.stage == "identity":
            gates[c.name] = cursors[c.name].get(log.IDENTITY_PART, origin)
        else:
            if buyer_gate is None:  # every buyer-stage consumer reads up to the identity stage's checkpoint
                gate = runner.gate(session, c, workspace_id)
                buyer_gate = origin if gate is None else gate
            gates[c.name] = buyer_gate
    marks = set(gates.values()) | {
        cursor for c in cs if c.stage == "buyer" for cursor in cursors[c.name].values()
    }
    counts = _Histogram(session, workspace_id, marks)
    out: dict[str, tuple[int, int]] = {}
    for c in cs:
        gate = gates[c.name]
        lag, checkpoint = counts.count(gate, any_part=True), gate
        if c.stage == "buyer":
            for part, cursor in cursors[c.name].items():
                behind = counts.count(cursor, part=part, up_to=gate) if cursor < gate else 0
                if behind:
                    lag += behind
                    checkpoint = min(checkpoint, cursor)
        out[c.name] = (checkpoint, lag)
    return out


def overview(*, session: Session, workspace_id: str) -> PipelineStatus:
    head = log.head(session, workspace_id)
    parked = dict(
        session.execute(
            select(ParkedEvent.consumer, func.count())
            .where(ParkedEvent.workspace_id == workspace_id, ParkedEvent.status == "parked")
            .group_by(ParkedEvent.consumer)
        ).all()
    )
    out = []
    progress_of = lags(session, workspace_id)
    for c in consumers():
        checkpoint, lag = progress_of[c.name]
        out.append(ConsumerStatus(
            name=c.name, stage=c.stage, head_seq=head, checkpoint=checkpoint, lag=lag, parked=int(parked.get(c.name, 0))
        ))  # fmt: skip
    return PipelineStatus(head_seq=head, consumers=out)


def list_parked(
    *, session: Session, workspace_id: str, status: str | None, limit: int, cursor: str | None = None
) -> ParkedPage:
    after = decode_cursor(cursor, types=(int,))
    query = select(ParkedEvent).where(ParkedEvent.workspace_id == workspace_id)
    if status:
        query = query.where(ParkedEvent.status == status)
    if after is not None:
        query = query.where(ParkedEvent.id < after[0])
    rows = list(session.scalars(query.order_by(ParkedEvent.id.desc()).limit(limit + 1)))
    return ParkedPage(**dict(page_by_id(rows, limit, ParkedRead)))


def replay(*, session: Session, workspace_id: str, parked_id: int) -> ParkedReplay:
    """Run the consumer on the parked event again; it stays parked (with the new error) if it fails."""
    row = session.scalars(
        select(ParkedEvent)
        .where(ParkedEvent.workspace_id == workspace_id, ParkedEvent.id == parked_id)
        .with_for_update()
    ).one_or_none()
    if row is None:
        raise ParkedNotFound(f"parked event {parked_id} does not exist in this workspace")
    if row.status != "parked":
        raise ParkedClosed(f"parked event {parked_id} is already {row.status}")
    savepoint = session.begin_nested()
    try:
        runner.replay(session, row)
        session.flush()
        savepoint.commit()
    except Exception as exc:  # the consumer failed again: keep it parked, with the reason
        savepoint.rollback()
        row.attempts += 1
        row.error = f"{type(exc).__name__}: {exc}"[:4000]
        return ParkedReplay(id=row.id, status="parked", error=row.error)
    return ParkedReplay(id=row.id, status="replayed")


def stuck(db: Database, now: datetime | None = None) -> list[str]:
    """Consumers that are stuck: lag and no progress for ``stuck_s``, or a lease expired that long ago
    with nobody taking over."""
    now = now or utcnow()
    limit = now - timedelta(seconds=runner.config.stuck_s)
    names = {log.kind_of(c.name): c for c in consumers()}
    if not names:
        return []
    out: set[str] = set()
    # A step that keeps failing touches its row at every attempt: "no progress" is then read from its
    # failures in a row (backing off: run_at past the failure's updated_at), not from updated_at.
    failing = and_(
        Job.state == "queued", Job.last_error.is_not(None), Job.attempts > 1, Job.run_at > Job.updated_at
    )
    with db.read() as session:
        stale = session.scalars(
            select(Job).where(
                Job.kind.in_(list(names)), or_(Job.updated_at < limit, failing), Job.state != "parked"
            )
        ).all()
        for job in stale:
            c = names[job.kind]
            if job.lease_until is not None and job.lease_until < limit:
                out.add(c.name)
                continue
            if job.updated_at >= limit and _failing_s(job) < runner.config.stuck_s:
                continue
            if job.workspace_id is None or (job.state == "queued" and job.payload and job.run_at > now):
                continue  # waiting for a retry's backoff is progress of its own kind
            gate = runner.gate(session, c, job.workspace_id)
            part = None if c.stage == "identity" else int(job.key.rsplit(":", 1)[1])
            if log.pending(session, job.workspace_id, after=int(job.cursor or 0), up_to=gate, part=part):
                out.add(c.name)
    return sorted(out)


def _failing_s(job: Job) -> float:
    """The least time a checkpoint row has been failing, from its failures in a row: the backoffs between them
    at their shortest (the spread takes up to 20 % off each)."""
    kind = jobs_runner.kinds().get(job.kind)
    if kind is None or not job.attempts or job.last_error is None:
        return 0.0
    waits = [min(kind.backoff_cap_s, kind.backoff_base_s * 2.0**i) for i in range(min(job.attempts - 1, 64))]
    return 0.8 * (sum(waits) + max(0, job.attempts - 1 - 64) * kind.backoff_cap_s)


def refresh_metrics(db: Database) -> None:
    """Set the gauges (lag per consumer over every workspace, the head) before a scrape."""
    with db.read() as session:
        metrics.HEAD.set(int(session.scalar(select(func.max(Event.id))) or 0))
        workspaces = list(
            session.scalars(select(Job.workspace_id).where(Job.kind.like("consumer:%")).distinct())
        )
        totals = {c.name: 0 for c in consumers()}
        for ws in workspaces:
            if ws is not None:
                for name, (_, lag) in lags(session, ws).items():
                    totals[name] += lag
        for name, total in totals.items():
            metrics.LAG.labels(name).set(total)
