"""create_app(settings): routers, middleware, error handlers, health and metrics."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import Response
from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from sqlalchemy import text
from sqlalchemy.exc import DataError
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from offerloop import __version__, console, portal, storefront
from offerloop.analytics import health as analytics_health
from offerloop.analytics.endpoints import router as analytics_router
from offerloop.analytics.health_endpoints import router as health_router
from offerloop.analytics.ltv_endpoints import router as ltv_router
from offerloop.api import openapi
from offerloop.api.guards import TRACKING_PATHS, BodyLimit, CatchAll, InputGuard
from offerloop.api.headers import SecurityHeaders
from offerloop.api.schemas import Health, Readiness
from offerloop.assembly.endpoints import router as assembly_router
from offerloop.attribution.endpoints import router as attribution_router
from offerloop.checkout.endpoints import router as checkout_router
from offerloop.config import Settings
from offerloop.content.endpoints import router as content_router
from offerloop.core.errors import OfferloopError
from offerloop.db import migrate
from offerloop.db.engine import WalCheckpointer, make_engine
from offerloop.db.uow import Database
from offerloop.decisions.endpoints import router as decisions_router
from offerloop.delivery.endpoints import links_router as delivery_links
from offerloop.delivery.endpoints import router as delivery_router
from offerloop.delivery.promise_endpoints import router as promises_router
from offerloop.delivery.push.endpoints import router as push_router
from offerloop.delivery.report_endpoints import router as delivery_reports
from offerloop.delivery.webhooks.endpoints import router as webhooks_router
from offerloop.entitlements.endpoints import router as entitlements_router
from offerloop.events.endpoints import admin as events_admin
from offerloop.events.endpoints import pipeline_admin
from offerloop.events.endpoints import router as tracking_router
from offerloop.experiments.endpoints import router as experiments_router
from offerloop.features.endpoints import router as features_router
from offerloop.identity.endpoints import router as buyers_router
from offerloop.invoices.endpoints import router as invoices_router
from offerloop.ledger.endpoints import router as ledger_router
from offerloop.live.endpoints import pages_router as live_pages
from offerloop.live.endpoints import router as live_router
from offerloop.offers.endpoints import router as offers_router
from offerloop.personas.endpoints import router as personas_router
from offerloop.pipeline import log as pipeline_log
from offerloop.pipeline import status as pipeline_status
from offerloop.subscriptions.endpoints import router as subscriptions_router
from offerloop.telemetry import REQUEST_SECONDS, configure_logging, log
from offerloop.web import JSONBytes, SingleValued
from offerloop.worker import pools as worker_pools
from offerloop.workspaces.endpoints import router as keys_router

DESCRIPTION = """
offerloop owns the creator's canonical buyer record. Send events with any Segment or RudderStack
SDK by pointing it at this host (write key as the HTTP Basic username); read buyers, quarantine and
exports with a secret key. Every error is `{"error": {"code", "message", "details"}}`.
"""


class Metrics:
    """Pure ASGI middleware: one latency histogram per route template (cheap on the ingest path)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started = time.perf_counter()
        status = 500

        async def send_wrapper(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        try:
            await self.app(scope, receive, send_wrapper)
        finally:
            route = scope.get("route")
            path = getattr(route, "path", "unmatched")
            elapsed = time.perf_counter() - started
            REQUEST_SECONDS.labels(scope["method"], path, str(status)).observe(elapsed)
            if status >= 500:
                log.error(
                    "request", method=scope["method"], path=path, status=status, ms=round(elapsed * 1000, 2)
                )


def _error(status: int, code: str, message: str, details: Any = None) -> JSONBytes:
    return JSONBytes({"error": {"code": code, "message": message, "details": details}}, status_code=status)


class PrometheusText(Response):
    media_type = CONTENT_TYPE_LATEST


def _ready(answer: Readiness, status: int) -> JSONBytes:
    return JSONBytes(answer.model_dump(exclude_none=True), status_code=status)


def create_app(
    settings: Settings | None = None, *, db: Database | None = None, migrate_on_start: bool = True
) -> FastAPI:
    settings = settings or Settings()
    configure_logging(settings.log_level, settings.log_json)
    checkpointer: WalCheckpointer | None = None
    own_db = db is None
    if db is None:
        engine = make_engine(
            settings.database_url,
            sqlite_synchronous=settings.sqlite_synchronous,
            pool_size=settings.db_pool_size,
            background_checkpoint=settings.is_sqlite,
        )
        if migrate_on_start:
            migrate.upgrade(engine)
        db = Database(engine)
        if settings.is_sqlite:
            checkpointer = WalCheckpointer(engine)

    worker_pools.prepare(settings)
    # An injected database (the test harness) has no threads: appends are drained inline after each commit.
    pipeline_log.set_inline(db, not own_db)
    background = (
        worker_pools.pools(db, settings, consumer_threads=settings.pipeline_workers,
                           job_threads=settings.worker_threads)
        if own_db
        else []
    )  # fmt: skip

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        if checkpointer is not None:
            checkpointer.start()
        for pool in background:
            pool.start()
        yield
        for pool in reversed(background):
            pool.stop()
        if checkpointer is not None:
            checkpointer.stop()

    app = FastAPI(
        title="offerloop",
        version=__version__,
        description=DESCRIPTION,
        lifespan=lifespan,
        # /docs is served by the console from Swagger UI files shipped in the package; ReDoc is not shipped
        docs_url=None,
        redoc_url=None,
        # Starlette's slash redirect walks every route a second time for each unknown path (~240 routes); a
        # trailing slash is redirected by the 404 handler below instead, without a second walk.
        redirect_slashes=False,
    )
    app.state.settings = settings
    app.state.db = db
    # Client input guards (innermost first): bodies checked, then bounded and authenticated before reading.
    app.add_middleware(InputGuard)
    app.add_middleware(BodyLimit)
    app.add_middleware(Metrics)
    app.add_middleware(CatchAll)  # a 500 leaves the keep-alive connection usable
    app.add_middleware(SecurityHeaders, public_url=settings.public_url)  # outermost: every answer has them

    @app.exception_handler(OfferloopError)
    async def _domain_error(_: Request, exc: OfferloopError) -> JSONBytes:
        return _error(exc.status_code, exc.code, exc.message, exc.details)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(_: Request, exc: RequestValidationError) -> JSONBytes:
        details = [{"loc": list(e["loc"]), "msg": e["msg"], "type": e["type"]} for e in exc.errors()]
        return _error(422, "validation_failed", "the request is not valid", details)

    @app.exception_handler(DataError)
    async def _data_error(_: Request, exc: DataError) -> JSONBytes:
        # The database refused a value the request models let through (e.g. over a 32-bit column on
        # PostgreSQL): the client's input, answered with a reason; the unit of work has rolled back.
        log.warning("value refused by the database", error=str(exc.orig)[:200])
        return _error(
            422, "invalid_input", "a value is outside what can be stored", {"reason": "value_out_of_range"}
        )

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(request: Request, exc: StarletteHTTPException) -> Response:
        path = request.url.path
        if (
            exc.status_code == 404
            and request.method in ("GET", "HEAD")
            and path.endswith("/")
            and path.strip("/")
        ):
            # No route ends in a slash (but /): a page asked for with one is sent to the path without it,
            # on this site (one leading slash: never //host, a protocol-relative address elsewhere).
            query = request.url.query
            target = "/" + path.strip("/") + (f"?{query}" if query else "")
            return Response(status_code=307, headers={"location": target})
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        return _error(exc.status_code, code, str(exc.detail))

    @app.exception_handler(Exception)
    async def _unexpected(request: Request, exc: Exception) -> JSONBytes:
        log.exception("unhandled error", path=request.url.path)
        return _error(500, "internal_error", "an unexpected error occurred; it has been logged")

    @app.get("/healthz", tags=["ops"], summary="Liveness: the process answers")
    async def healthz() -> Health:
        return Health(status="ok")

    @app.get(
        "/readyz",
        tags=["ops"],
        summary="Readiness: the database answers and the schema is current",
        response_model=Readiness,
        response_model_exclude_none=True,
        responses={503: {"model": Readiness, "description": "Not ready, with the reason"}},
    )
    def readyz() -> JSONBytes:
        try:
            with db.read() as session:
                session.execute(text("SELECT 1"))
            current = migrate.is_current(db.bind)
            stuck = pipeline_status.stuck(db) if current else []
        except Exception as exc:  # readiness reports any database failure as "not ready"
            return _ready(Readiness(status="unavailable", reason=str(exc)[:200]), 503)
        if not current:
            return _ready(Readiness(status="unavailable", reason="schema is not migrated"), 503)
        if stuck:
            return _ready(Readiness(status="unavailable", reason="consumer stuck", consumers=stuck), 503)
        return _ready(Readiness(status="ready"), 200)

    @app.get("/metrics", tags=["ops"], summary="Prometheus metrics", response_class=PrometheusText)
    def metrics() -> PrometheusText:
        pipeline_status.refresh_metrics(db)
        analytics_health.refresh_metrics(db, every_s=settings.health_metrics_every_s)
        return PrometheusText(generate_latest())

    # FastAPI matches a request against the routes in this order, a few microseconds per route passed over
    # (~240 routes: ~1 ms to reach the last), so the hot paths come first: ingestion, decisions, offers,
    # entitlement checks, the buyer record. No two routes of different routers match the same request
    # (tests/api/test_routing.py), so the order changes only the time a match takes.
    routers = (
        tracking_router,
        decisions_router,
        offers_router,
        entitlements_router,
        buyers_router,
        events_admin,
        pipeline_admin,
        keys_router,
        features_router,
        personas_router,
        content_router,
        assembly_router,
        checkout_router,
        subscriptions_router,
        ledger_router,
        delivery_router,
        delivery_links,
        delivery_reports,
        promises_router,
        webhooks_router,
        push_router,
        invoices_router,
        attribution_router,
        ltv_router,
        experiments_router,
        analytics_router,
        live_router,
        live_pages,
        health_router,
    )
    # The measurement routes take dates and numbers whose meaning a repeated parameter would make ambiguous.
    strict = (attribution_router, ltv_router, experiments_router, analytics_router, health_router)
    for router in routers:
        app.include_router(router, dependencies=[SingleValued] if any(router is r for r in strict) else None)
    openapi.install(app, routers=routers, tracking_paths=TRACKING_PATHS)
    console.install(app)
    storefront.install(app)
    portal.install(app)
    return app


def app_from_env() -> FastAPI:
    """Factory for `uvicorn --factory` (several worker processes): settings from the environment."""
    return create_app(Settings())
