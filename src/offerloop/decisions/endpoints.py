from __future__ import annotations

from collections.abc import Callable, Coroutine
from datetime import UTC, datetime
from typing import Annotated, Any

import orjson
from fastapi import APIRouter, Query, Request
from fastapi.responses import Response
from fastapi.routing import APIRoute
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool

from offerloop import pipeline
from offerloop.core.errors import ValidationFailed, error_responses
from offerloop.core.pages import DEFAULT_LIMIT
from offerloop.db.uow import Database
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
from offerloop.workspaces.auth import DB, PRINCIPAL_SCOPE_KEY, SecretKey
from offerloop.workspaces.schemas import Principal

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


def _decide(db: Database, principal: Principal, body: DecideRequest, holdout_share: float) -> Response:
    # Deciding only reads, so concurrent requests (and server processes) decide in parallel; the log row
    # is written in a short transaction of its own, before the answer goes out.
    pending: list[Any] = []
    # The read sees every event acknowledged before now applied (caught up first if one is pending).
    with pipeline.fresh_read(db, workspace_id=principal.workspace_id) as session:
        out = service.decide_for(
            session=session, workspace_id=principal.workspace_id, request=body,
            holdout_share=holdout_share, log=pending,
        )  # fmt: skip
    with db.write() as session:
        service.record(session=session, decisions=pending)
    return model_json(out)


def decide(request: Request, db: DB, principal: SecretKey, body: DecideRequest) -> Response:
    return _decide(db, principal, body, request.app.state.settings.holdout_share)


async def _decide_directly(request: Request) -> Response | None:
    """The common request, answered without FastAPI's dependency solving and body handling (a third of the
    event loop's CPU per decision): a secret key the body guard already authenticated, a JSON body that is a
    valid ``DecideRequest``. Anything else (None) takes the route's standard path, which gives every error
    exactly as before: this path only ever answers what that path would answer with a 200."""
    principal = request.scope.get(PRINCIPAL_SCOPE_KEY)
    if not isinstance(principal, Principal) or not principal.is_secret:
        return None
    kind = next((value for name, value in request.scope["headers"] if name == b"content-type"), None)
    if kind != b"application/json":  # the first such header, as FastAPI reads it
        return None
    raw = await request.body()  # kept by the request: the standard path reads it again from there
    try:
        # FastAPI reads a JSON body with json.loads, then validates the object (from_attributes, as it does);
        # orjson gives the same object for every body it accepts, and refuses (None here) the rest.
        body = DecideRequest.model_validate(orjson.loads(raw), from_attributes=True)
    except (orjson.JSONDecodeError, ValidationError):
        return None
    state = request.app.state
    return await run_in_threadpool(_decide, state.db, principal, body, state.settings.holdout_share)


class _DecideRoute(APIRoute):
    """``POST /v1/decide``: the direct path above first, then FastAPI's own handler (the same OpenAPI)."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        standard = super().get_route_handler()

        async def handler(request: Request) -> Response:
            answer = await _decide_directly(request)
            return answer if answer is not None else await standard(request)

        return handler


router.add_api_route(
    "/decide",
    decide,
    methods=["POST"],
    summary="The next best actions for a buyer, with propensities and reasons",
    response_model=DecideResponse,
    responses=error_responses(UnknownCandidates),
    route_class_override=_DecideRoute,
)


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
