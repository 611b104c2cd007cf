"""What the pipeline is doing: per-consumer checkpoints and lag, parked events and their replay, readiness."""

from __future__ import annotations

from datetime import datetime, timedelta

from sqlalchemy import and_, func, or_, select
from sqlalchemy.orm import Session

from offerloop.core.clock import utcnow
from offerloop.core.errors import Conflict, NotFound
from offerloop.core.pages import decode_cursor, page_by_id
from offerloop.db.uow import Database
from offerloop.jobs import runner as jobs_runner
from offerloop.models import Event, Job, ParkedEvent
from offerloop.pipeline import log, metrics, runner
from offerloop.pipeline.registry import Consumer, consumers
from offerloop.pipeline.schemas import ConsumerStatus, ParkedPage, ParkedRead, ParkedReplay, PipelineStatus


class ParkedNotFound(NotFound):
    code = "parked_event_not_found"


class ParkedClosed(Conflict):
    code = "parked_event_closed"


def _count_after(
    session: Session, workspace_id: str, after: int, part: int | None = None, up_to: int | None = None
) -> int:
    query = (
        select(func.count()).select_from(Event).where(Event.workspace_id == workspace_id, Event.id > after)
    )
    if part is not None:
        query = query.where(Event.part == part)
    if up_to is not None:
        query = query.where(Event.id <= up_to)
    return int(session.scalar(query) or 0)


def progress(session: Session, consumer: Consumer, workspace_id: str) -> tuple[int, int]:
    """(checkpoint, lag) of a consumer in a workspace."""
    kind = log.kind_of(consumer.name)
    rows = session.execute(
        select(Job.key, Job.cursor).where(Job.kind == kind, Job.workspace_id == workspace_id)
    ).all()
    cursors = {int(k.rsplit(":", 1)[1]): int(c or 0) for k, c in rows}
    origin = log.origin(session, workspace_id)
    if consumer.stage == "identity":
        cursor = cursors.get(log.IDENTITY_PART, origin)
        return cursor, _count_after(session, workspace_id, cursor)
    gate = runner.gate(session, consumer, workspace_id)
    gate = origin if gate is None else gate
    lag = _count_after(session, workspace_id, gate)  # not yet through the identity stage
    checkpoint = gate
    for part, cursor in cursors.items():
        behind = _count_after(session, workspace_id, cursor, part=part, up_to=gate)
        if behind:
            lag += behind
            checkpoint = min(checkpoint, cursor)
    return checkpoint, lag


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
    for c in consumers():
        checkpoint, lag = progress(session, c, workspace_id)
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
        for c in consumers():
            total = 0
            for ws in workspaces:
                if ws is not None:
                    total += progress(session, c, ws)[1]
            metrics.LAG.labels(c.name).set(total)
