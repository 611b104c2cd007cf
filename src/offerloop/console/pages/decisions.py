"""Decisions: the catalog of actions the engine chooses from (rules order), the model's versions per
placement, and — loaded after the page, since the decisions domain scores the whole rewarded log — the online
lift over the holdout with its interval (overall and per persona) and the off-policy estimates (IPS, SNIPS,
DR with their intervals) of the model and the baselines. Read-only: every role sees it."""

from __future__ import annotations

from typing import Annotated, Any
from urllib.parse import quote

from fastapi import Query, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from offerloop.console import reports, web
from offerloop.db.uow import Database
from offerloop.decisions import service as decisions_service
from offerloop.reports.schemas import EvaluationParams

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


@router.get("/console/decisions/evaluation")
async def evaluation(
    request: Request, db: web.DB, user: web.User, placement: Placement = None,
    days: Annotated[int, Query(ge=1, le=365)] = 28,
) -> Response:  # fmt: skip
    params = EvaluationParams(placement=placement, days=days)
    report = await reports.show(request, db, user.workspace_id, params)
    query = f"days={days}" + (f"&placement={quote(placement)}" if placement else "")
    return web.render(request, "decisions/evaluation.html", {
        "current": "decisions", "report": report.body, "report_state": report, "params": params, "days": days,
        "placement": placement or "", "query": query, "poll": f"/console/decisions/evaluation?{query}",
    })  # fmt: skip
