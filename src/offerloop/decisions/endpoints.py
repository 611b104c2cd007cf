from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import Response

from offerloop import pipeline
from offerloop.core.errors import ValidationFailed, error_responses
from offerloop.core.pages import DEFAULT_LIMIT
from offerloop.decisions import service
from offerloop.decisions.evaluation_schemas import EvaluationReport
from offerloop.decisions.exceptions import DecisionNotFound, UnknownCandidates
from offerloop.decisions.schemas import (
    ActionIn,
    ActionKind,
    ActionPage,
    ActionRead,
    DecideRequest,
    DecideResponse,
    DecisionRead,
)
from offerloop.web import Cursor, Limit, model_json
from offerloop.workspaces.auth import DB, SecretKey

router = APIRouter(prefix="/v1", tags=["decisions"])


@router.put(
    "/actions",
    summary="Create or update catalog actions (by key)",
    responses=error_responses(ValidationFailed),
)
def upsert_actions(db: DB, principal: SecretKey, body: list[ActionIn]) -> list[ActionRead]:
    with db.write() as session:
        return service.upsert_actions(session=session, workspace_id=principal.workspace_id, actions=body)


@router.get("/actions", summary="The action catalog in rules order (priority, then key)")
def list_actions(
    db: DB,
    principal: SecretKey,
    kind: Annotated[ActionKind | None, Query(description="Only actions of this kind")] = None,
    active: Annotated[
        bool | None, Query(description="Only active (true) or inactive (false) actions")
    ] = None,
    limit: Limit = DEFAULT_LIMIT,
    cursor: Cursor = None,
) -> ActionPage:
    with db.read() as session:
        return service.actions_page(
            session=session,
            workspace_id=principal.workspace_id,
            limit=limit,
            cursor=cursor,
            kind=kind,
            active=active,
        )


@router.post(
    "/decide",
    summary="The next best actions for a buyer, with propensities and reasons",
    response_model=DecideResponse,
    responses=error_responses(UnknownCandidates),
)
def decide(request: Request, db: DB, principal: SecretKey, body: DecideRequest) -> Response:
    # Deciding only reads, so concurrent requests (and server processes) decide in parallel; the log row
    # is written in a short transaction of its own, before the answer goes out.
    pending: list[Any] = []
    # The read sees every event acknowledged before now applied (caught up first if one is pending).
    with pipeline.fresh_read(db, workspace_id=principal.workspace_id) as session:
        out = service.decide_for(
            session=session, workspace_id=principal.workspace_id, request=body,
            holdout_share=request.app.state.settings.holdout_share, log=pending,
        )  # fmt: skip
    with db.write() as session:
        service.record(session=session, decisions=pending)
    return model_json(out)


@router.get(
    "/decisions/{decision_id}",
    summary="Why a decision was made, and what happened after",
    responses=error_responses(DecisionNotFound),
)
def get_decision(db: DB, principal: SecretKey, decision_id: str) -> DecisionRead:
    with db.read() as session:
        return service.get_decision(
            session=session, workspace_id=principal.workspace_id, decision_id=decision_id
        )


@router.get(
    "/evaluation",
    summary="Out-of-sample estimates of the model and baselines on the decision log, and the online lift",
)
def evaluation(
    db: DB,
    principal: SecretKey,
    placement: Annotated[str | None, Query(min_length=1, max_length=64)] = None,
    since: Annotated[
        datetime | None, Query(description="Only decisions made at or after this time (naive: UTC)")
    ] = None,
    level: Annotated[float, Query(ge=0.5, le=0.999)] = 0.95,
) -> EvaluationReport:
    at = since.replace(tzinfo=UTC) if since is not None and since.tzinfo is None else since
    with db.read() as session:
        report = service.evaluate(
            session=session, workspace_id=principal.workspace_id, placement=placement, since=at, level=level
        )
    return EvaluationReport.model_validate(report)
