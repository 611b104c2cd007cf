"""Personas: how many buyers held each persona per day or week (an SVG chart drawn here, server-side, and the
same numbers as a table), conversion velocity and LTV per persona (a fragment loaded after the page: the
analytics service reads the purchase history), and the persona templates' editor: check (lint) the YAML,
see every problem by line, save (owner only). Every role reads; only an owner changes the templates."""

from __future__ import annotations

import functools
from dataclasses import dataclass
from typing import Annotated, Literal

from fastapi import Query, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from offerloop.console import reports, web
from offerloop.console.pages import editor
from offerloop.console.schemas import SignedIn
from offerloop.db.uow import Database
from offerloop.personas import service as persona_service
from offerloop.personas.schemas import PersonaTimeline
from offerloop.personas.templates import load_templates
from offerloop.reports.schemas import PersonaTimelineParams, VelocityParams

router = web.router
# Colours of the chart's lines, each readable on white (contrast >= 3:1); personas beyond them repeat.
PALETTE = ("#1f5fa8", "#b3470f", "#2a7d3b", "#8a2c8f", "#a1162b", "#0f6e73", "#6b5b00", "#4a4a4a")
BucketName = Literal["day", "week"]
Bucket = Annotated[BucketName, Query()]
Periods = Annotated[int, Query(ge=2, le=120)]


@dataclass(frozen=True)
class Line:
    persona: str
    colour: str
    points: str


@dataclass(frozen=True)
class Chart:
    """An SVG line chart's geometry (the template draws it): one polyline per persona."""

    width: int
    height: int
    left: int
    bottom: int
    top: int
    peak: int
    lines: list[Line]
    ticks: list[tuple[float, str]]  # x, label
    levels: list[tuple[float, int]]  # y, value


def chart(timeline: PersonaTimeline, width: int = 720, height: int = 260) -> Chart:
    """Scale the timeline's held counts into the plot area (left axis labels, bottom date labels)."""
    left, right, top, bottom = 56, 12, 12, 28
    n = len(timeline.periods)
    peak = max((max(s.held) for s in timeline.personas), default=0) or 1
    inner_w, inner_h = width - left - right, height - top - bottom

    def x(i: int) -> float:
        return left + (inner_w * i / (n - 1) if n > 1 else inner_w / 2)

    def y(v: int) -> float:
        return top + inner_h - inner_h * v / peak

    lines = [
        Line(
            s.persona,
            PALETTE[i % len(PALETTE)],
            " ".join(f"{x(j):.1f},{y(v):.1f}" for j, v in enumerate(s.held)),
        )
        for i, s in enumerate(timeline.personas)
    ]
    every = max(1, (n + 5) // 6)  # at most ~6 date labels
    ticks = [(x(i), d.strftime("%m-%d")) for i, d in enumerate(timeline.periods) if i % every == 0]
    levels = [(y(v), v) for v in sorted({0, peak // 2, peak})]
    return Chart(width, height, left, height - bottom, top, peak, lines, ticks, levels)


def _templates(db: Database, workspace_id: str) -> tuple[int | None, str]:
    with db.read() as session:
        version, personas = persona_service.templates_for(session, workspace_id)
    return version, personas.to_yaml() if personas else ""


async def _page(
    request: Request, db: Database, user: SignedIn, bucket: BucketName, periods: int, *, source: str | None = None,
    problems: list[str] | None = None, checked: bool = False, status_code: int = 200, done: str = "",
) -> Response:  # fmt: skip
    # the distribution over time counts every buyer's persona: a heavy report (a snapshot on a large store)
    params = PersonaTimelineParams(bucket=bucket, periods=periods)
    report = await reports.show(request, db, user.workspace_id, params)
    version, stored = await run_in_threadpool(_templates, db, user.workspace_id)
    timeline = report.body
    return web.render(request, "personas/index.html", {
        "current": "personas", "bucket": bucket, "periods": periods, "problems": problems or [],
        "checked": checked, "done": done, "timeline": timeline, "chart": chart(timeline) if timeline else None,
        "report": report, "params": params, "poll": f"/console/personas?bucket={bucket}&periods={periods}",
        "templates_version": version,  # not "version": the footer shows offerloop's
        "source": stored if source is None else source,
    }, status_code=status_code)  # fmt: skip


@router.get("/console/personas")
async def personas(
    request: Request, db: web.DB, user: web.User, bucket: Bucket = "week", periods: Periods = 12,
    done: Annotated[str, Query(max_length=40)] = "",
) -> Response:  # fmt: skip
    return await _page(request, db, user, bucket, periods, done=done)


@router.get("/console/personas/velocity")
async def velocity(request: Request, db: web.DB, user: web.User) -> Response:
    params = VelocityParams()
    report = await reports.show(request, db, user.workspace_id, params)
    return web.render(request, "personas/velocity.html", {
        "current": "personas", "velocity": report.body, "report": report, "params": params,
    })  # fmt: skip


@router.post("/console/personas/templates")
async def templates(request: Request, db: web.DB, user: web.Posted, form: web.Form) -> Response:
    # the personas domain's own loader checks the text, by line; its service stores it
    return await editor.submit(
        db, user, form, load=load_templates, save=persona_service.set_templates,
        redisplay=functools.partial(_page, request, db, user, "week", 12),
        done="/console/personas?done=saved-v{version}#templates",
    )  # fmt: skip
