"""Journeys: each journey with its steps and how many runs are at each step and in each state, the newest
messages, and the kill switch (pause / resume: owner only, CSRF-checked); one journey's page with its runs
paged newest first. Counts are for every role; runs and messages name buyers, so (as on the Buyers pages)
they are for owners and reviewers only."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Annotated, Any, get_args

import orjson
from fastapi import Path, Query, Request
from fastapi.responses import RedirectResponse, Response
from starlette.concurrency import run_in_threadpool

from offerloop.console import web
from offerloop.db.uow import Database
from offerloop.delivery import service as delivery_service
from offerloop.delivery.schemas import JourneyDetail, RunState

router = web.router
JOURNEYS_SHOWN = 50
RECENT_SHOWN = 10
RUNS_PAGE = 50
Name = Annotated[str, Path(min_length=1, max_length=64, pattern=r"^[a-z][a-z0-9_]*$")]
Cursor = Annotated[str | None, Query(max_length=200)]
PEOPLE = ("owner", "reviewer")  # who sees runs and messages (they name buyers)


@dataclass(frozen=True)
class Step:
    path: str
    kind: str
    summary: str
    runs: dict[str, int]  # state -> runs at this step (or inside it, for a branch)


def _summary(kind: str, body: Any) -> str:
    """A step's definition in a few words (what the YAML says; nothing computed)."""
    if kind == "send" and isinstance(body, dict):
        return f"{body.get('channel', '')}: {body.get('subject') or body.get('template') or ''}".strip(": ")
    if kind == "decide" and isinstance(body, dict):
        return f"placement {body.get('placement', '')}"
    if kind == "branch" and isinstance(body, dict):
        return f"when {orjson.dumps(body.get('when'), option=orjson.OPT_SORT_KEYS).decode()}"
    return "" if isinstance(body, dict | list) or body is None else str(body)


def steps(journey: JourneyDetail) -> list[Step]:
    """The journey's top-level steps in order, each with the runs at it (a branch counts the runs inside it)."""
    out = []
    for i, raw in enumerate(journey.definition.get("steps") or []):
        kind, body = next(iter(raw.items())) if isinstance(raw, dict) and raw else ("step", None)
        if kind == "id" and isinstance(raw, dict):  # an id first: the kind is the other key
            kind, body = next(((k, v) for k, v in raw.items() if k != "id"), ("step", None))
        here: dict[str, int] = {}
        for c in journey.runs:
            if c.step is not None and (c.step == str(i) or c.step.startswith(f"{i}.")):
                here[c.state] = here.get(c.state, 0) + c.runs
        out.append(Step(str(i), kind, _summary(kind, body), here))
    return out


def totals(journey: JourneyDetail) -> dict[str, int]:
    found: dict[str, int] = {}
    for c in journey.runs:
        found[c.state] = found.get(c.state, 0) + c.runs
    return found


def _overview(db: Database, workspace_id: str, cursor: str | None, people: bool) -> dict[str, Any]:
    with db.read() as session:
        page = delivery_service.list_journeys(
            session=session, workspace_id=workspace_id, limit=JOURNEYS_SHOWN, cursor=cursor
        )
        details = [
            delivery_service.get_journey(session=session, workspace_id=workspace_id, name=j.name)
            for j in page.items
        ]
        messages = (
            delivery_service.list_messages(
                session=session, workspace_id=workspace_id, limit=RECENT_SHOWN, cursor=None
            ).items
            if people
            else []
        )
    return {
        "page": page,
        "journeys": [(d, steps(d), totals(d)) for d in details],
        "messages": messages,
    }


@router.get("/console/journeys")
async def journeys(
    request: Request, db: web.DB, user: web.User, cursor: Cursor = None,
    done: Annotated[str, Query(max_length=40)] = "",
) -> Response:  # fmt: skip
    people = user.role in PEOPLE
    found = await run_in_threadpool(_overview, db, user.workspace_id, cursor, people)
    return web.render(request, "journeys/index.html", {
        "current": "journeys", "cursor": cursor, "done": done, "people": people, "states": get_args(RunState),
        **found,
    })  # fmt: skip


def _journey(
    db: Database, workspace_id: str, name: str, state: str | None, cursor: str | None
) -> dict[str, Any]:
    with db.read() as session:
        journey = delivery_service.get_journey(session=session, workspace_id=workspace_id, name=name)
        runs = delivery_service.list_runs(session=session, workspace_id=workspace_id, limit=RUNS_PAGE,
                                          cursor=cursor, journey=journey.name, state=state)  # fmt: skip
        messages = delivery_service.list_messages(session=session, workspace_id=workspace_id, limit=RECENT_SHOWN,
                                                  cursor=None, journey=journey.name)  # fmt: skip
    return {"journey": journey, "steps": steps(journey), "totals": totals(journey), "runs": runs,
            "messages": messages.items}  # fmt: skip


@router.get("/console/journeys/{name}")
async def journey_page(
    request: Request, db: web.DB, user: web.Reviewer, name: Name, cursor: Cursor = None,
    state: Annotated[RunState | None, Query()] = None, done: Annotated[str, Query(max_length=40)] = "",
) -> Response:  # fmt: skip
    found = await run_in_threadpool(_journey, db, user.workspace_id, name, state, cursor)
    return web.render(request, "journeys/journey.html", {
        "current": "journeys", "cursor": cursor, "state": state, "done": done, "states": get_args(RunState),
        **found,
    })  # fmt: skip


def _pause(db: Database, workspace_id: str, name: str, paused: bool) -> JourneyDetail:
    with db.write() as session:
        return delivery_service.set_paused(
            session=session, workspace_id=workspace_id, name=name, paused=paused
        )


@router.post("/console/journeys/{name}/pause")
async def pause(db: web.DB, user: web.Posted, name: Name) -> Response:
    web.refuse_unless(user, "owner")
    done = await run_in_threadpool(_pause, db, user.workspace_id, name, True)
    return RedirectResponse(f"/console/journeys?done=paused#journey-{done.name}", status_code=303)


@router.post("/console/journeys/{name}/resume")
async def resume(db: web.DB, user: web.Posted, name: Name) -> Response:
    web.refuse_unless(user, "owner")
    done = await run_in_threadpool(_pause, db, user.workspace_id, name, False)
    return RedirectResponse(f"/console/journeys?done=resumed#journey-{done.name}", status_code=303)
