"""The heavy reports of the console (attribution, cohorts, LTV fit, the personas over time and their velocity, the
decisions' evaluation): shown through the reports domain's snapshots, with when each was computed and a button to
compute it again."""

from __future__ import annotations

import json
import re
from datetime import datetime

from fastapi import Request
from fastapi.responses import RedirectResponse, Response
from pydantic import ValidationError
from starlette.concurrency import run_in_threadpool

from offerloop.console import web
from offerloop.console.exceptions import InvalidUser
from offerloop.core.clock import utcnow
from offerloop.db.uow import Database
from offerloop.reports import service as reports_service
from offerloop.reports.schemas import Params

router = web.router
# Where the button leads back to: a console page of this server, never an address from elsewhere.
_BACK = re.compile(r"^/console/[A-Za-z0-9/_.-]*(\?[A-Za-z0-9_.:=&%+-]*)?$")


async def show(request: Request, db: Database, workspace_id: str, params: Params) -> reports_service.Report:
    settings = request.app.state.settings
    return await run_in_threadpool(
        lambda: reports_service.show(
            db, workspace_id=workspace_id, params=params, max_age_s=settings.console_report_max_age_s,
            inline_s=settings.console_report_inline_s,
        )
    )  # fmt: skip


def _ago(when: datetime | None) -> str:
    """How long ago, for people: "just now", "42 s ago", "7 min ago", "3 h ago", or the date."""
    if when is None:
        return ""
    seconds = max(0, int((utcnow() - when).total_seconds()))
    if seconds < 5:
        return "just now"
    if seconds < 120:
        return f"{seconds} s ago"
    if seconds < 2 * 3600:
        return f"{seconds // 60} min ago"
    if seconds < 2 * 86_400:
        return f"{seconds // 3600} h ago"
    return when.strftime("on %Y-%m-%d")


web.templates.filters["ago"] = _ago
web.templates.filters["report_params"] = reports_service.canonical


@router.post("/console/reports/refresh")
async def refresh(db: web.DB, user: web.Posted, form: web.Form) -> Response:
    """Queue the report's computation now (every role may: it changes no data), then back to its page."""
    back = form.get("back", "")
    try:
        params = reports_service.params_of(json.loads(form.get("report", "")))
    except (ValueError, ValidationError) as exc:
        raise InvalidUser("not a report of this console", details={"field": "report"}) from exc
    await run_in_threadpool(reports_service.refresh, db, workspace_id=user.workspace_id, params=params)
    return RedirectResponse(back if _BACK.match(back) and ".." not in back else "/console", status_code=303)
