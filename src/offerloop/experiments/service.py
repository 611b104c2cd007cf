"""Experiments: create and steer them, assign buyers (sticky, exposure logged), and read their results.

Assignment is a pure function of (workspace, experiment key, buyer id) and the weights, and the arm is
stored at the buyer's first exposure: a later change of weights (or a retry) never moves anyone.
"""

from __future__ import annotations

import hashlib
from collections.abc import Collection, Iterable
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from offerloop.core.clock import utcnow
from offerloop.core.pages import Page, decode_cursor, page_of
from offerloop.experiments import repository, results
from offerloop.experiments.exceptions import (
    ExperimentExists,
    ExperimentNotFound,
    ExperimentStopped,
    InvalidWeights,
    PolicyExperimentRunning,
)
from offerloop.experiments.schemas import (
    Arm,
    ArmRead,
    Assignment,
    AssignRequest,
    ExperimentCreate,
    ExperimentRead,
    ExperimentResults,
    GuardrailIn,
    Metrics,
    Status,
)
from offerloop.identity import service as identity_service
from offerloop.identity.exceptions import BuyerNotFound
from offerloop.models import Experiment


def bucket(workspace_id: str, key: str, buyer_id: str, arms: list[dict[str, Any]]) -> str:
    """The arm a buyer gets under these weights: a point in [0, 1) from SHA-256 of workspace, experiment
    and buyer, placed on the arms' cumulative weights (an arm of weight 0 gets no one)."""
    digest = hashlib.sha256(f"{workspace_id}\x1f{key}\x1f{buyer_id}".encode()).digest()
    point = int.from_bytes(digest[:8], "big") / 2**64
    total = sum(float(a["weight"]) for a in arms)
    edge = 0.0
    for arm in arms:
        edge += float(arm["weight"]) / total
        if point < edge and arm["weight"] > 0:
            return str(arm["key"])
    return str(next(a["key"] for a in reversed(arms) if a["weight"] > 0))  # rounding at the top edge


def _read(e: Experiment) -> ExperimentRead:
    return ExperimentRead(
        key=e.key, name=e.name, subject=e.subject, subject_id=e.subject_id,
        control=e.arms[0]["key"], arms=[ArmRead(**a) for a in e.arms],
        metrics=Metrics.model_validate(e.metrics),
        guardrails=[GuardrailIn.model_validate(g) for g in e.guardrails],
        status=e.status, starts_at=e.starts_at, ends_at=e.ends_at,
        created_at=e.created_at, updated_at=e.updated_at,
    )  # fmt: skip


def _load(session: Session, workspace_id: str, key: str, *, lock: bool = False) -> Experiment:
    experiment = repository.get(session, workspace_id, key, lock=lock)
    if experiment is None:
        raise ExperimentNotFound(f"experiment {key!r} does not exist in this workspace")
    return experiment


def create(
    *, session: Session, workspace_id: str, experiment_in: ExperimentCreate, now: datetime | None = None
) -> ExperimentRead:
    """A new experiment, running from ``starts_at`` (default now). A placement runs one policy experiment at a
    time (``/v1/decide`` must know which arm serves a buyer): another one not stopped is a conflict."""
    at = now or utcnow()
    if experiment_in.subject == "policy":
        taken = [
            k for _, k in repository.keys_on(session, workspace_id, ("policy",), [experiment_in.subject_id])
        ]
        if taken:
            raise PolicyExperimentRunning(
                f"placement {experiment_in.subject_id!r} already runs policy experiment {taken[0]!r}: stop it first",
                details={"experiment": taken[0]},
            )
    inserted = repository.add(session, {
        "workspace_id": workspace_id, "key": experiment_in.key, "name": experiment_in.name or experiment_in.key,
        "subject": experiment_in.subject, "subject_id": experiment_in.subject_id,
        "arms": [a.model_dump() for a in experiment_in.arms],
        "metrics": experiment_in.metrics.model_dump(mode="json"),
        "guardrails": [g.model_dump(mode="json") for g in experiment_in.guardrails],
        "status": "running", "starts_at": experiment_in.starts_at, "ends_at": experiment_in.ends_at,
        "created_at": at, "updated_at": at,
    })  # fmt: skip
    if not inserted:
        raise ExperimentExists(f"experiment {experiment_in.key!r} already exists in this workspace")
    return get_experiment(session=session, workspace_id=workspace_id, key=experiment_in.key)


def get_experiment(*, session: Session, workspace_id: str, key: str) -> ExperimentRead:
    return _read(_load(session, workspace_id, key))


def list_experiments(
    *, session: Session, workspace_id: str, limit: int, cursor: str | None
) -> Page[ExperimentRead]:
    """The workspace's experiments in key order."""
    after = decode_cursor(cursor, types=(str,))
    rows = repository.page(session, workspace_id, after[0] if after else None, limit)
    return page_of(rows, limit, key=lambda e: (e.key,), item=_read)


def set_status(
    *, session: Session, workspace_id: str, key: str, status: Status, now: datetime | None = None
) -> ExperimentRead:
    """Pause (no new exposures), resume, or stop (final)."""
    experiment = _load(session, workspace_id, key, lock=True)
    if experiment.status == "stopped" and status != "stopped":
        raise ExperimentStopped(f"experiment {key!r} is stopped: start a new one")
    if experiment.status != status:
        experiment.status = status
        experiment.updated_at = now or utcnow()
        if status == "stopped" and (experiment.ends_at is None or experiment.ends_at > experiment.updated_at):
            experiment.ends_at = experiment.updated_at
        repository.flush(session)
    return _read(experiment)


def set_weights(
    *, session: Session, workspace_id: str, key: str, weights: dict[str, float], now: datetime | None = None
) -> ExperimentRead:
    """New weights for buyers not yet exposed; arms not named keep theirs."""
    experiment = _load(session, workspace_id, key, lock=True)
    if experiment.status == "stopped":
        raise ExperimentStopped(f"experiment {key!r} is stopped: its weights no longer matter")
    known = {a["key"] for a in experiment.arms}
    unknown = sorted(set(weights) - known)
    if unknown:
        raise InvalidWeights(f"no arm {unknown[0]!r} in experiment {key!r}", details={"arms": sorted(known)})
    if any(not (0 <= w <= 1_000_000) for w in weights.values()):
        raise InvalidWeights("weights must be between 0 and 1,000,000")
    arms = [{**a, "weight": float(weights.get(a["key"], a["weight"]))} for a in experiment.arms]
    if not sum(a["weight"] for a in arms) > 0:
        raise InvalidWeights("arm weights must sum to a positive number")
    experiment.arms = arms
    experiment.updated_at = now or utcnow()
    repository.flush(session)
    return _read(experiment)


def _running(experiment: Experiment, at: datetime) -> bool:
    return (
        experiment.status == "running"
        and (experiment.starts_at is None or experiment.starts_at <= at)
        and (experiment.ends_at is None or at < experiment.ends_at)
    )


def _arm(session: Session, experiment: Experiment, buyer_id: str, at: datetime) -> Assignment:
    workspace_id, key = experiment.workspace_id, experiment.key
    values = {a["key"]: a.get("value") for a in experiment.arms}
    stored = repository.exposure(session, workspace_id, key, buyer_id)
    if stored is None and _running(experiment, at):
        arm = bucket(workspace_id, key, buyer_id, experiment.arms)
        if repository.add_exposure(session, workspace_id, key, buyer_id, arm, at):
            return Assignment(experiment=key, buyer_id=buyer_id, arm=arm, value=values.get(arm), exposed=True,
                              first_exposure=True, exposed_at=at)  # fmt: skip
        stored = repository.exposure(session, workspace_id, key, buyer_id)  # a concurrent first call won
    if stored is None:
        control = experiment.arms[0]["key"]
        return Assignment(experiment=key, buyer_id=buyer_id, arm=control, value=values[control], exposed=False,
                          first_exposure=False, exposed_at=None)  # fmt: skip
    return Assignment(experiment=key, buyer_id=buyer_id, arm=stored.arm, value=values.get(stored.arm),
                      exposed=True, first_exposure=False, exposed_at=stored.exposed_at)  # fmt: skip


def arm_for(
    *, session: Session, workspace_id: str, key: str, buyer_id: str, now: datetime | None = None
) -> Assignment:
    """The buyer's arm, logging their first exposure while the experiment runs. Outside its run (paused,
    stopped, before its start, after its end) a buyer already exposed keeps their arm and anyone else sees
    the control, and nothing is logged. The call other domains make (an offer picking its variant)."""
    return _arm(session, _load(session, workspace_id, key), buyer_id, now or utcnow())


def peek_arm(*, session: Session, workspace_id: str, key: str, buyer_id: str, now: datetime) -> Arm | None:
    """The buyer's arm as :func:`arm_for` would give it, read only (for hooks deciding in a read-only unit of
    work): ``expose`` is set when a first exposure is due; the caller writes it with :func:`expose`. None when
    the experiment does not exist (any more)."""
    experiment = repository.get(session, workspace_id, key)
    if experiment is None:
        return None
    values = {a["key"]: a.get("value") for a in experiment.arms}
    stored = repository.exposure(session, workspace_id, key, buyer_id)
    if stored is not None:
        return Arm(experiment=key, arm=stored.arm, value=values.get(stored.arm), exposed=True, expose=False)
    if _running(experiment, now):
        arm = bucket(workspace_id, key, buyer_id, experiment.arms)
        return Arm(experiment=key, arm=arm, value=values.get(arm), exposed=True, expose=True)
    control = experiment.arms[0]["key"]
    return Arm(experiment=key, arm=control, value=values[control], exposed=False, expose=False)


def expose(
    *, session: Session, workspace_id: str, exposures: Iterable[tuple[str, str, str, datetime]]
) -> None:
    """Log first exposures ``(experiment key, buyer id, arm, at)`` that hooks found due; one already stored
    (a concurrent request) stays as it is: a buyer is exposed once."""
    for key, buyer_id, arm, at in exposures:
        repository.add_exposure(session, workspace_id, key, buyer_id, arm, at)


def require(*, session: Session, workspace_id: str, keys: Iterable[str]) -> None:
    """Raise :class:`ExperimentNotFound` (404) for the first of ``keys`` this workspace has no experiment by:
    a config naming experiments (a journey) is checked when it is stored."""
    for key in sorted(set(keys)):
        _load(session, workspace_id, key)


def pinned(
    *, session: Session, workspace_id: str, subject_ids: Collection[str], buyer_id: str, now: datetime
) -> dict[str, Arm]:
    """Per offer key among ``subject_ids``, the buyer's arm in the experiment on that offer (subject ``offer``
    or ``variant``, not stopped; the first by key when there are several), read only as :func:`peek_arm`."""
    if not subject_ids:
        return {}
    out: dict[str, Arm] = {}
    for subject_id, key in repository.keys_on(session, workspace_id, ("offer", "variant"), subject_ids):
        if subject_id not in out:
            arm = peek_arm(session=session, workspace_id=workspace_id, key=key, buyer_id=buyer_id, now=now)
            if arm is not None:
                out[subject_id] = arm
    return out


def assign(
    *, session: Session, workspace_id: str, key: str, request: AssignRequest, now: datetime | None = None
) -> Assignment:
    """``arm_for`` the buyer one identifier names (a buyer id follows merges to the surviving buyer)."""
    experiment = _load(
        session, workspace_id, key
    )  # an unknown experiment is reported before an unknown buyer
    if request.buyer_id is not None:
        buyer = identity_service.get_buyer(
            session=session, workspace_id=workspace_id, buyer_id=request.buyer_id
        )
        if buyer.deleted:  # as a lookup by user id: an erased buyer is not found, and nothing is logged
            raise BuyerNotFound(f"buyer {request.buyer_id} does not exist in this workspace")
        buyer_id = buyer.id
    else:
        buyer_id, _ = identity_service.find_buyer(
            session=session,
            workspace_id=workspace_id,
            user_id=request.user_id,
            anonymous_id=request.anonymous_id,
        )
    return _arm(session, experiment, buyer_id, now or utcnow())


def get_results(
    *, session: Session, workspace_id: str, key: str, now: datetime | None = None
) -> ExperimentResults:
    """Per arm and per variant against the control: see ``experiments.results``."""
    at = now or utcnow()
    experiment = _load(session, workspace_id, key)
    metrics = Metrics.model_validate(experiment.metrics)
    guardrails = [GuardrailIn.model_validate(g) for g in experiment.guardrails]
    exposed = repository.exposures(session, workspace_id, key)
    events: list[tuple[str, str, datetime, dict[str, Any] | None]] = []
    last: dict[str, datetime] = {}
    pre_times: list[tuple[str, datetime]] = []
    if exposed:
        first, latest = min(e[2] for e in exposed), max(e[2] for e in exposed)
        since, until = results.window(first, latest, metrics)
        names = {metrics.conversion.event, *(g.event for g in guardrails)}
        ids = [e[0] for e in exposed]
        events = repository.named_events(session, workspace_id, ids, names, since, until)
        last = repository.last_event_times(session, workspace_id, ids)
        if metrics.covariate == "events":
            pre_times = repository.event_times(session, workspace_id, ids, since, latest)
    return results.compute(
        experiment=_read(experiment), metrics=metrics, guardrails=guardrails, exposed=exposed, events=events,
        last_event=last, pre_events=pre_times, now=at,
    )  # fmt: skip
