"""Analytics: attribution by channel and by post (content) under a chosen model, the acquisition cohorts as a
heatmap of the share active per month, the LTV fit (BG/NBD and Gamma-Gamma; fitted only when asked, it reads
every purchase) with predicted vs actual holdout purchases, and the experiments with their results (CUPED,
Bayesian, sample ratio mismatch). Each figure comes from the service behind the matching JSON endpoint; each
chart is inline SVG drawn here with its figures in a table beside it. Read-only: every role sees it."""

from __future__ import annotations

from datetime import date
from typing import Annotated, Any, get_args

from fastapi import Path, Query, Request
from fastapi.responses import Response
from starlette.concurrency import run_in_threadpool

from offerloop import pipeline
from offerloop.analytics.ltv_schemas import LTVRead, TimeUnit
from offerloop.analytics.schemas import CohortBy, Cohorts
from offerloop.attribution import service as attribution_service
from offerloop.attribution.schemas import Model
from offerloop.console import charts, reports, web
from offerloop.console.exceptions import InvalidUser
from offerloop.core.clock import utcnow
from offerloop.core.money import Money
from offerloop.db.uow import Database
from offerloop.experiments import service as experiments_service
from offerloop.reports.schemas import AttributionPair, AttributionParams, CohortParams, LTVParams

router = web.router
DayText = Annotated[str, Query(max_length=10, pattern=r"^(\d{4}-\d{2}-\d{2})?$")]
Cursor = Annotated[str | None, Query(max_length=512)]
ExperimentKey = Annotated[str, Path(min_length=1, max_length=120, pattern=r"^[A-Za-z0-9_.:-]+$")]
MODELS: tuple[str, ...] = get_args(Model)
CHANNELS_SHOWN = 25  # per attribution table: the largest credit first
EXPERIMENTS_PAGE = 50
TABS = (
    ("attribution", "Attribution"),
    ("cohorts", "Cohorts"),
    ("ltv", "LTV"),
    ("experiments", "Experiments"),
)


def _day(text: str, name: str) -> date | None:
    if not text:
        return None
    try:
        return date.fromisoformat(text)
    except ValueError as exc:
        raise InvalidUser(f"{name} is not a date (YYYY-MM-DD)", details={"field": name}) from exc


def _money(value: float, currency: str) -> str:
    """Credited value (fractional minor units) rounded to a whole minor unit, in the currency's major units."""
    return Money(currency, round(value)).format()


web.templates.filters["credit"] = _money


def _ranked(result: Any) -> list[Any]:
    return sorted(result.channels, key=lambda c: (-c.value, -c.conversions, c.channel))[:CHANNELS_SHOWN]


def _attribution_figures(model: str, pair: AttributionPair | None) -> dict[str, Any]:
    """Each table's rows (largest credit first) and its bar chart, by channel and by post."""
    if pair is None:
        return {}
    out: dict[str, Any] = {"shown": (pair.start, pair.end)}
    for by in ("channel", "content"):
        result = getattr(pair, by)
        rows = _ranked(result)
        cur = result.currency or ""
        out[by] = result
        out[f"{by}_rows"] = rows
        out[f"{by}_chart"] = charts.bars(
            f"attr-{by}", f"Credited value by {by} ({model})",
            [(r.channel, r.value, f"{r.conversions:.2f} conv." + (f" · {_money(r.value, cur)}" if cur else ""))
             for r in rows],
        )  # fmt: skip
    return out


def _tabs(request: Request, tab: str, context: dict[str, Any]) -> Response:
    return web.render(
        request, f"analytics/{tab}.html", {"current": "analytics", "tab": tab, "tabs": TABS, **context}
    )


def _poll(request: Request) -> str:
    return request.url.path + (f"?{request.url.query}" if request.url.query else "")


@router.get("/console/analytics")
async def attribution(
    request: Request, db: web.DB, user: web.User,
    model: Annotated[Model, Query()] = "markov", start: DayText = "", end: DayText = "",
) -> Response:  # fmt: skip
    first, last = _day(start, "start"), _day(end, "end")
    lo, hi = attribution_service.period(
        first, last, today=utcnow().date()
    )  # a bad period: 4xx before any work
    params = AttributionParams(model=model, start=first, end=last)
    report = await reports.show(request, db, user.workspace_id, params)
    return _tabs(request, "attribution", {
        "model": model, "models": MODELS, "start": start, "end": end, "period": (lo.date(), hi.date()),
        "report": report, "params": params, "poll": _poll(request), **_attribution_figures(model, report.body),
    })  # fmt: skip


def _cohort_figures(cohorts: Cohorts | None, periods: int) -> dict[str, Any]:
    if cohorts is None:
        return {"cohorts": None}
    labels = [c.cohort + (f" · {c.segment}" if c.segment else "") for c in cohorts.cohorts]
    columns = [str(k) for k in range(1, periods + 1)]
    chart = charts.heatmap(
        "cohort-heat", "Share of each cohort active in each month after its first purchase", labels, columns,
        [c.active for c in cohorts.cohorts],
    )  # fmt: skip
    return {"cohorts": cohorts, "labels": labels, "columns": columns, "chart": chart}


@router.get("/console/analytics/cohorts")
async def cohorts(
    request: Request, db: web.DB, user: web.User,
    by: Annotated[CohortBy, Query()] = "first_purchase_month",
    periods: Annotated[int, Query(ge=1, le=24)] = 12,
) -> Response:  # fmt: skip
    params = CohortParams(by=by, periods=periods)
    report = await reports.show(request, db, user.workspace_id, params)
    return _tabs(request, "cohorts", {
        "by": by, "bys": get_args(CohortBy), "periods": periods, "report": report, "params": params,
        "poll": _poll(request), **_cohort_figures(report.body, periods),
    })  # fmt: skip


def _ltv_figures(fit: LTVRead | None) -> dict[str, Any]:
    if fit is None:
        return {"fit": None}
    labels = [
        f"{b.frequency}{'+' if i == len(fit.holdout) - 1 else ''} repeat" for i, b in enumerate(fit.holdout)
    ]
    chart = charts.paired(
        "ltv-holdout", "Holdout purchases per buyer: actual vs predicted, by calibration repeat purchases", labels,
        ("actual", [b.actual for b in fit.holdout]), ("predicted", [b.predicted for b in fit.holdout]),
    )  # fmt: skip
    return {"fit": fit, "labels": labels, "chart": chart}


@router.get("/console/analytics/ltv")
async def ltv(
    request: Request, db: web.DB, user: web.User, calibration_end: DayText = "", observation_end: DayText = "",
    time_unit: Annotated[TimeUnit, Query()] = "week",
    fit: Annotated[int, Query(ge=0, le=1)] = 0,
) -> Response:  # fmt: skip
    today = utcnow().date()
    calibration, observation = (
        _day(calibration_end, "calibration_end"),
        _day(observation_end, "observation_end"),
    )
    for name, day in (("calibration_end", calibration), ("observation_end", observation)):
        if day is not None and day > today:
            raise InvalidUser(f"{name} must not be after today", details={"field": name})
    context: dict[str, Any] = {"calibration_end": calibration_end, "observation_end": observation_end,
                               "time_unit": time_unit, "units": get_args(TimeUnit), "fit": None}  # fmt: skip
    if fit:  # the fit reads every purchase of the workspace: only on the button's request
        if calibration is None:
            raise InvalidUser("choose the calibration end to fit", details={"field": "calibration_end"})
        params = LTVParams(calibration_end=calibration, observation_end=observation, time_unit=time_unit)
        report = await reports.show(request, db, user.workspace_id, params)
        context.update(report=report, params=params, poll=_poll(request), **_ltv_figures(report.body))
    return _tabs(request, "ltv", context)


def _read(db: Database, service: Any, **arguments: Any) -> Any:
    """One call of a domain's read service in a read transaction."""
    with db.read() as session:
        return service(session=session, **arguments)


@router.get("/console/analytics/experiments")
async def experiments(request: Request, db: web.DB, user: web.User, cursor: Cursor = None) -> Response:
    page = await run_in_threadpool(
        _read, db, experiments_service.list_experiments, workspace_id=user.workspace_id, limit=EXPERIMENTS_PAGE,
        cursor=cursor,
    )  # fmt: skip
    return _tabs(request, "experiments", {"page": page, "cursor": cursor})


def _results(db: Database, workspace_id: str, key: str) -> dict[str, Any]:
    pipeline.catch_up(db, workspace_id=workspace_id)
    with db.read() as session:
        experiment = experiments_service.get_experiment(session=session, workspace_id=workspace_id, key=key)
        results = experiments_service.get_results(session=session, workspace_id=workspace_id, key=key)
    rows = [(v.arm, d.difference, d.ci_low, d.ci_high)
            for v in results.variants for d in (v.conversion_cuped or v.conversion,) if d is not None]  # fmt: skip
    chart = charts.intervals(
        "exp-lift", f"Conversion difference vs {results.control} (CUPED when available), 95% intervals", rows
    )
    return {"experiment": experiment, "results": results, "chart": chart}


@router.get("/console/analytics/experiments/{key}")
async def experiment(request: Request, db: web.DB, user: web.User, key: ExperimentKey) -> Response:
    found = await run_in_threadpool(_results, db, user.workspace_id, key)
    return _tabs(request, "experiment", {"key": key, **found})
