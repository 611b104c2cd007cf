"""HTTP API of experiments: create and steer them, assign buyers, read results (secret key)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query
from pydantic import WithJsonSchema

from offerloop.core.errors import ValidationFailed, error_responses
from offerloop.core.pages import DEFAULT_LIMIT, MAX_LIMIT, InvalidCursor, Page
from offerloop.experiments import service
from offerloop.experiments.exceptions import (
    ExperimentExists,
    ExperimentNotFound,
    ExperimentStopped,
    InvalidWeights,
    PolicyExperimentRunning,
)
from offerloop.experiments.schemas import (
    KEY_PATTERN,
    Assignment,
    AssignRequest,
    ExperimentCreate,
    ExperimentRead,
    ExperimentResults,
    StatusUpdate,
    WeightsUpdate,
)
from offerloop.identity.exceptions import BuyerNotFound, LookupNeedsOneIdentifier
from offerloop.web import Int
from offerloop.workspaces.auth import DB, SecretKey
from offerloop.workspaces.exceptions import InvalidKey, SecretKeyRequired

router = APIRouter(prefix="/v1", tags=["experiments"])

Key = Annotated[
    str, Path(min_length=1, max_length=120, pattern=KEY_PATTERN, description="The experiment key")
]
_KEY = (InvalidKey, SecretKeyRequired, ValidationFailed)


@router.post("/experiments", status_code=201, summary="Create an experiment (running from starts_at, default now)",
             responses=error_responses(*_KEY, ExperimentExists, PolicyExperimentRunning))  # fmt: skip
def create_experiment(db: DB, principal: SecretKey, body: ExperimentCreate) -> ExperimentRead:
    with db.write() as session:
        return service.create(session=session, workspace_id=principal.workspace_id, experiment_in=body)


@router.get("/experiments", summary="The workspace's experiments, in key order",
            responses=error_responses(*_KEY, InvalidCursor))  # fmt: skip
def list_experiments(
    db: DB, principal: SecretKey,
    limit: Annotated[Int, Query(ge=1, le=MAX_LIMIT, description="Items per page"),
                     WithJsonSchema({"type": "integer", "minimum": 1, "maximum": MAX_LIMIT})] = DEFAULT_LIMIT,
    cursor: Annotated[str | None, Query(max_length=512, description="The next_cursor of the previous page")] = None,
) -> Page[ExperimentRead]:  # fmt: skip
    with db.read() as session:
        return service.list_experiments(session=session, workspace_id=principal.workspace_id, limit=limit,
                                        cursor=cursor)  # fmt: skip


@router.get("/experiments/{key}", summary="One experiment",
            responses=error_responses(*_KEY, ExperimentNotFound))  # fmt: skip
def get_experiment(db: DB, principal: SecretKey, key: Key) -> ExperimentRead:
    with db.read() as session:
        return service.get_experiment(session=session, workspace_id=principal.workspace_id, key=key)


@router.post("/experiments/{key}/assign",
             summary="The buyer's arm; logs their first exposure while the experiment runs (sticky)",
             responses=error_responses(*_KEY, ExperimentNotFound, BuyerNotFound, LookupNeedsOneIdentifier))  # fmt: skip
def assign(db: DB, principal: SecretKey, key: Key, body: AssignRequest) -> Assignment:
    with db.write() as session:
        return service.assign(session=session, workspace_id=principal.workspace_id, key=key, request=body)


@router.get("/experiments/{key}/results",
            summary="Per arm, and each variant vs the control: frequentist with CUPED, Bayesian, SRM, "
                    "guardrails, personas",
            responses=error_responses(*_KEY, ExperimentNotFound))  # fmt: skip
def results(db: DB, principal: SecretKey, key: Key) -> ExperimentResults:
    with db.read() as session:
        return service.get_results(session=session, workspace_id=principal.workspace_id, key=key)


@router.post("/experiments/{key}/status", summary="Pause (resumable), resume or stop (final) an experiment",
             responses=error_responses(*_KEY, ExperimentNotFound, ExperimentStopped))  # fmt: skip
def set_status(db: DB, principal: SecretKey, key: Key, body: StatusUpdate) -> ExperimentRead:
    with db.write() as session:
        return service.set_status(session=session, workspace_id=principal.workspace_id, key=key,
                                  status=body.status)  # fmt: skip


@router.post("/experiments/{key}/weights",
             summary="New weights for buyers not yet exposed (those exposed keep their arm)",
             responses=error_responses(*_KEY, ExperimentNotFound, ExperimentStopped, InvalidWeights))  # fmt: skip
def set_weights(db: DB, principal: SecretKey, key: Key, body: WeightsUpdate) -> ExperimentRead:
    with db.write() as session:
        return service.set_weights(session=session, workspace_id=principal.workspace_id, key=key,
                                   weights=body.weights)  # fmt: skip
