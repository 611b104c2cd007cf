"""POST /v1/analytics/ltv/refresh under concurrency: refreshes of one workspace at once, each in its own
committed transaction (PostgreSQL: the advisory lock; SQLite: one writer at a time), all succeed and leave the
scores of one refresh."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import date

import orjson
from fastapi.testclient import TestClient
from sqlalchemy import Engine, select
from tests.analytics.test_ltv import _buyers, _message
from tests.checkout.log import forget_queued_work
from tests.conftest import basic

from offerloop.analytics import ltv
from offerloop.api import create_app
from offerloop.config import Settings
from offerloop.db.uow import Database
from offerloop.models import BuyerScore
from offerloop.pipeline import log as pipeline_log
from offerloop.workspaces import service as workspace_service

THREADS = 6


def test_concurrent_refreshes_are_serialised(engine: Engine, settings: Settings) -> None:
    real = Database(engine)
    pipeline_log.set_inline(real)
    with real.write() as session:
        ws = workspace_service.create_workspace(session=session, name="ltv race")
    try:
        buyers = _buyers()
        messages = [_message(u, d, t, n) for u, orders in buyers.items() for n, (d, t) in enumerate(orders)]
        with TestClient(create_app(settings, db=real), raise_server_exceptions=False) as live:
            r = live.post(
                "/v1/batch", headers=basic(ws.secret_key), content=orjson.dumps({"batch": messages})
            )
            assert r.status_code == 200, r.text
        barrier = threading.Barrier(THREADS)

        def refresh(_: int) -> int:
            barrier.wait(timeout=30)
            with real.write() as session:
                out = ltv.refresh(session=session, workspace_id=ws.id, today=date(2026, 7, 1))
            return out.written

        with ThreadPoolExecutor(THREADS) as pool:
            assert list(pool.map(refresh, range(THREADS))) == [len(buyers)] * THREADS
        with real.read() as session:
            rows = session.execute(select(BuyerScore.name).where(BuyerScore.workspace_id == ws.id)).all()
        assert len(rows) == 3 * len(buyers)
    finally:
        forget_queued_work(real, ws.id)
        # Inline processing is keyed by the engine, shared by every later test: left on, a later test's
        # Database(engine) had its appends applied inline (a pipeline test failed on PostgreSQL).
        pipeline_log.set_inline(real, False)
