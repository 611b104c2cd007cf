"""Heavy reports behind a snapshot: a view computes the report itself while that is cheap (the last computation
of that kind took at most ``inline_s``, or, never computed, the workspace is small) and so always shows the
store as it is; otherwise it shows the last snapshot with when it was computed, and — when that is older than
``max_age_s`` or missing — queues one background job to compute it again (one per report: the job's key).
Errors the computation raises (a domain error: not enough purchases to fit) are kept and shown like a result.

Unlike most services these take the ``Database``: a computation runs its own read transactions (after
applying the workspace's acknowledged events, as the reports' endpoints do) and stores its snapshot in a short
write transaction of its own, so a slow report never holds SQLite's writer."""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from pydantic import BaseModel, TypeAdapter, ValidationError
from sqlalchemy.orm import Session

from offerloop import pipeline
from offerloop.analytics import ltv as ltv_service
from offerloop.analytics import service as analytics_service
from offerloop.analytics import velocity as velocity_service
from offerloop.analytics.ltv_schemas import LTVOptions, LTVRead
from offerloop.analytics.schemas import Cohorts, Velocity
from offerloop.attribution import service as attribution_service
from offerloop.core.clock import utcnow
from offerloop.core.errors import OfferloopError
from offerloop.db.uow import Database
from offerloop.decisions import service as decisions_service
from offerloop.decisions.evaluation_schemas import EvaluationReport
from offerloop.identity import service as identity_service
from offerloop.jobs import queue
from offerloop.personas import service as persona_service
from offerloop.personas.schemas import PersonaTimeline
from offerloop.reports import repository
from offerloop.reports.exceptions import BadReport, StoredError, TooManyReports
from offerloop.reports.schemas import (
    AnyParams,
    AttributionPair,
    AttributionParams,
    CohortParams,
    EvaluationParams,
    LTVParams,
    Params,
    PersonaTimelineParams,
    VelocityParams,
)

JOB_KIND = "reports.refresh"
# Never computed in this workspace: computed on view below this many buyers (a bounded count decides).
INLINE_BUYERS = 20_000
# Reports one workspace may have queued or computing at once: a team member clicking through every period and
# model of a large store cannot fill the workers with hours of fits.
MAX_QUEUED = 16
PRUNE_KIND = "reports.prune"  # recurring: delete snapshots neither computed nor viewed for the keep setting
PRUNE_EVERY_S = 3600.0
PRUNE_BATCH = 1000  # snapshots one pass deletes (a full pass runs again at once)
# A view shown a snapshot marks it (viewed_at) when its last computation or mark is older than this: at most
# one write an hour per snapshot, so a snapshot viewed within the keep window (>= 2 h) is never pruned.
VIEW_MARK_S = 3600.0
PARAMS: TypeAdapter[Params] = TypeAdapter(AnyParams)


@dataclass(frozen=True)
class Report:
    """What a view shows: the result (None while its first computation is queued), when it was computed and
    in how long, whether a refresh is queued or running, and whether it was computed for this view."""

    body: Any = None
    computed_at: datetime | None = None
    compute_s: float | None = None
    refreshing: bool = False
    inline: bool = False


def _velocity(db: Database, workspace_id: str, p: VelocityParams, now: datetime) -> Velocity:
    with db.read() as session:
        return velocity_service.velocity(session=session, workspace_id=workspace_id, now=now)


def _personas(db: Database, workspace_id: str, p: PersonaTimelineParams, now: datetime) -> PersonaTimeline:
    with db.read() as session:
        return persona_service.timeline(
            session=session, workspace_id=workspace_id, periods=p.periods, bucket=p.bucket, today=now.date()
        )


def _evaluation(db: Database, workspace_id: str, p: EvaluationParams, now: datetime) -> EvaluationReport:
    with db.read() as session:
        report = decisions_service.evaluate(
            session=session,
            workspace_id=workspace_id,
            placement=p.placement,
            since=now - timedelta(days=p.days),
        )
    return EvaluationReport.model_validate(report)


def _attribution(db: Database, workspace_id: str, p: AttributionParams, now: datetime) -> AttributionPair:
    lo, hi = attribution_service.period(p.start, p.end, today=now.date())
    definition = attribution_service.Definition.parse(None, None)
    pipeline.catch_up(db, workspace_id=workspace_id)  # touches and purchases of every acknowledged event
    with db.read() as session:
        found = {
            by: attribution_service.attribution(
                session,
                workspace_id=workspace_id,
                model=p.model,
                definition=definition,
                start=lo,
                end=hi,
                by=by,
            )
            for by in ("channel", "content")
        }
    return AttributionPair(start=lo.date(), end=hi.date(), **found)


def _cohorts(db: Database, workspace_id: str, p: CohortParams, now: datetime) -> Cohorts:
    pipeline.catch_up(db, workspace_id=workspace_id)
    with db.read() as session:
        return analytics_service.cohorts(
            session=session, workspace_id=workspace_id, by=p.by, periods=p.periods
        )


def _ltv(db: Database, workspace_id: str, p: LTVParams, now: datetime) -> LTVRead:
    with db.read() as session:
        return ltv_service.fit(
            session=session, workspace_id=workspace_id, calibration_end=p.calibration_end,
            observation_end=p.observation_end, options=LTVOptions(time_unit=p.time_unit),
        )  # fmt: skip


def _attribution_period(p: AttributionParams, now: datetime) -> None:
    attribution_service.period(p.start, p.end, today=now.date())


def _ltv_dates(p: LTVParams, now: datetime) -> None:
    for name, day in (("calibration_end", p.calibration_end), ("observation_end", p.observation_end)):
        if day is not None and day > now.date():
            raise BadReport(f"{name} must not be after today", details={"field": name})


@dataclass(frozen=True)
class _Kind:
    result: type[BaseModel]
    compute: Callable[[Database, str, Any, datetime], BaseModel]
    # the parameters' own checks (a period's bounds), run before anything is queued: a 4xx, not a kept error
    check: Callable[[Any, datetime], None] | None = None


KINDS: dict[str, _Kind] = {
    "velocity": _Kind(Velocity, _velocity),
    "personas": _Kind(PersonaTimeline, _personas),
    "evaluation": _Kind(EvaluationReport, _evaluation),
    "attribution": _Kind(AttributionPair, _attribution, _attribution_period),
    "cohorts": _Kind(Cohorts, _cohorts),
    "ltv": _Kind(LTVRead, _ltv, _ltv_dates),
}


def check(params: Params, now: datetime | None = None) -> None:
    """Refuse parameters no computation could answer (a period outside the supported days, a date to come)."""
    kind = KINDS[params.kind]  # type: ignore[attr-defined]
    if kind.check is not None:
        kind.check(params, now or utcnow())


def canonical(params: Params) -> str:
    """The parameters' canonical JSON (what a form carries back and what the key hashes)."""
    return json.dumps(params.model_dump(mode="json"), sort_keys=True, separators=(",", ":"))


def key_of(params: Params) -> str:
    """SHA-256 of the parameters' canonical JSON."""
    return hashlib.sha256(canonical(params).encode()).hexdigest()


def job_key(workspace_id: str, params: Params) -> str:
    return f"{workspace_id}:{key_of(params)}"


def params_of(payload: Any) -> Params:
    return PARAMS.validate_python(payload)


def compute(
    db: Database, *, workspace_id: str, params: Params, now: datetime | None = None, raise_error: bool = True
) -> Report:
    """Compute the report now and keep its snapshot; a domain error is kept too (and raised when asked)."""
    now = now or utcnow()
    kind: str = params.kind  # type: ignore[attr-defined]
    started = time.perf_counter()
    body: BaseModel | None = None
    error: dict[str, Any] | None = None
    try:
        body = KINDS[kind].compute(db, workspace_id, params, now)
    except OfferloopError as exc:
        error = {"status": exc.status_code, "code": exc.code, "message": exc.message, "details": exc.details}
        failure: OfferloopError = exc
    elapsed = time.perf_counter() - started
    with db.write() as session:
        repository.put(
            session, workspace_id=workspace_id, kind=kind, key=key_of(params), params=params.model_dump(mode="json"),
            body=body.model_dump(mode="json") if body is not None else None, error=_json_safe(error),
            compute_s=elapsed, computed_at=now,
        )  # fmt: skip
    if error is not None and raise_error:
        raise failure
    return Report(body=body, computed_at=now, compute_s=elapsed, inline=True)


def _json_safe(error: dict[str, Any] | None) -> dict[str, Any] | None:
    return None if error is None else json.loads(json.dumps(error, default=str))


def show(
    db: Database, *, workspace_id: str, params: Params, max_age_s: float, inline_s: float,
    now: datetime | None = None,
) -> Report:  # fmt: skip
    """The report for a view (see the module's docstring); raises the error its last computation kept."""
    now = now or utcnow()
    check(params, now)
    kind: str = params.kind  # type: ignore[attr-defined]
    with db.read() as session:
        snapshot = repository.get(session, workspace_id, kind, key_of(params))
        cost = snapshot.compute_s if snapshot is not None else repository.slowest(session, workspace_id, kind)
        cheap = (cost <= inline_s) if cost is not None else not identity_service.buyers_at_least(
            session=session, workspace_id=workspace_id, n=INLINE_BUYERS
        )  # fmt: skip
        refreshing = queue.pending(session, kind=JOB_KIND, key=job_key(workspace_id, params))
        kept = _kept(snapshot, kind)
        last_used = (
            max(snapshot.computed_at, snapshot.viewed_at or snapshot.computed_at) if snapshot else None
        )
    if not cheap and last_used is not None and (now - last_used).total_seconds() > VIEW_MARK_S:
        with db.write() as session:
            repository.mark_viewed(session, workspace_id, kind, key_of(params), now)
    if cheap:
        return compute(db, workspace_id=workspace_id, params=params, now=now)
    if kept is None or (now - kept.computed_at).total_seconds() > max_age_s:
        if not refreshing:
            refresh(db, workspace_id=workspace_id, params=params)
        refreshing = True
    if kept is None:
        return Report(refreshing=True)
    if kept.error is not None:
        raise StoredError(kept.error)
    return Report(
        body=kept.body, computed_at=kept.computed_at, compute_s=kept.compute_s, refreshing=refreshing
    )


@dataclass(frozen=True)
class _Kept:
    body: BaseModel | None
    error: dict[str, Any] | None
    computed_at: datetime
    compute_s: float


def _kept(snapshot: Any, kind: str) -> _Kept | None:
    """The snapshot's result, read back; None when there is none or it no longer reads as this version's."""
    if snapshot is None:
        return None
    try:
        body = KINDS[kind].result.model_validate(snapshot.body) if snapshot.body is not None else None
    except ValidationError:
        return None
    if body is None and snapshot.error is None:
        return None
    return _Kept(body, snapshot.error, snapshot.computed_at, snapshot.compute_s)


def prune(*, session: Session, now: datetime, keep_s: float) -> int:
    """Delete up to ``PRUNE_BATCH`` snapshots (every workspace) neither computed nor viewed for ``keep_s``
    seconds; how many. Idempotent: a second pass finds nothing more of the same age."""
    return repository.prune(session, now - timedelta(seconds=keep_s), PRUNE_BATCH)


def refresh(db: Database, *, workspace_id: str, params: Params) -> None:
    """Queue the report's computation (one job per report: asking again while it waits changes nothing); 429
    when the workspace already has ``MAX_QUEUED`` other reports queued or computing."""
    check(params)
    with db.write() as session:
        key = job_key(workspace_id, params)
        if not queue.pending(session, kind=JOB_KIND, key=key) and (
            queue.pending_count(session, kind=JOB_KIND, workspace_id=workspace_id) >= MAX_QUEUED
        ):
            raise TooManyReports(
                f"{MAX_QUEUED} reports are being computed for this workspace: ask again when they are done",
                details={"retry_after_s": 30},
            )
        queue.enqueue(
            session, kind=JOB_KIND, key=key, workspace_id=workspace_id,
            payload=params.model_dump(mode="json"),
        )  # fmt: skip
