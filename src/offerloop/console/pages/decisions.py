"""Decisions: the catalog of actions the engine chooses from (rules order), the model's versions per
placement, and — loaded after the page, since the decisions domain scores the whole rewarded log — the online
lift over the holdout with its interval (overall and per persona) and the off-policy estimates (IPS, SNIPS,
DR with their intervals) of the model and the baselines. Read-only: every role sees it."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Annotated, Any

from fastapi import Query, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from offerloop.console import web
from offerloop.core.clock import utcnow
from offerloop.db.uow import Database
from offerloop.decisions import service as decisions_service
from offerloop.decisions.evaluation_schemas import EvaluationReport

router = web.router
ACTIONS_SHOWN = 100
VERSIONS_SHOWN = 30
Placement = Annotated[str | None, Query(min_length=1, max_length=64, pattern=r"^[A-Za-z0-9_.:-]+$")]


def _overview(db: Database, workspace_id: str, cursor: str | None) -> dict[str, Any]:
    with db.read() as session:
        return {
            "actions": decisions_service.actions_page(
                session=session, workspace_id=workspace_id, limit=ACTIONS_SHOWN, cursor=cursor
            ),
            "versions": decisions_service.model_versions(
                session=session, workspace_id=workspace_id, limit=VERSIONS_SHOWN
            ),
        }


@router.get("/console/decisions")
async def decisions(
    request: Request, db: web.DB, user: web.User, cursor: Annotated[str | None, Query(max_length=200)] = None,
    placement: Placement = None, days: Annotated[int, Query(ge=1, le=365)] = 28,
) -> Response:  # fmt: skip
    found = await run_in_threadpool(_overview, db, user.workspace_id, cursor)
    placements = sorted({v.placement for v in found["versions"]})
    return web.render(request, "decisions/index.html", {
        "current": "decisions", "cursor": cursor, "placement": placement or "", "days": days,
        "placements": placements, **found,
    })  # fmt: skip


def _evaluation(db: Database, workspace_id: str, placement: str | None, since: datetime) -> EvaluationReport:
    with db.read() as session:
        report = decisions_service.evaluate(
            session=session, workspace_id=workspace_id, placement=placement, since=since
        )
    return EvaluationReport.model_validate(report)


@router.get("/console/decisions/evaluation")
async def evaluation(
    request: Request, db: web.DB, user: web.User, placement: Placement = None,
    days: Annotated[int, Query(ge=1, le=365)] = 28,
) -> Response:  # fmt: skip
    since = utcnow() - timedelta(days=days)
    report = await run_in_threadpool(_evaluation, db, user.workspace_id, placement, since)
    return web.render(request, "decisions/evaluation.html", {
        "current": "decisions", "report": report, "days": days, "placement": placement or "",
    })  # fmt: skip
