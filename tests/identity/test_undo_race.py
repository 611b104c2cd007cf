"""Undoing one merge from several requests at once: exactly one undo succeeds, the others are refused as already
undone (PostgreSQL: the merge row is locked for the undo; SQLite: one writer at a time). Before the lock, four
concurrent undos on PostgreSQL all succeeded and moved the same identities back four times."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import orjson
from fastapi.testclient import TestClient
from sqlalchemy import Engine
from tests.checkout.log import forget_queued_work
from tests.conftest import basic

from offerloop.api import create_app
from offerloop.config import Settings
from offerloop.db.uow import Database
from offerloop.identity import service as identity_service
from offerloop.identity.exceptions import MergeNotUndoable
from offerloop.pipeline import log as pipeline_log
from offerloop.workspaces import service as workspace_service

THREADS = 4


def test_concurrent_undos_of_one_merge_succeed_once(engine: Engine, settings: Settings) -> None:
    real = Database(engine)
    pipeline_log.set_inline(real)
    with real.write() as session:
        ws = workspace_service.create_workspace(session=session, name="undo race")
    try:
        batch = [
            {"type": "identify", "userId": "u-race", "anonymousId": "lap", "messageId": "i1"},
            {"type": "track", "anonymousId": "tab", "event": "Drop Viewed", "messageId": "t1"},
            {"type": "track", "userId": "u-race", "anonymousId": "tab", "event": "Login", "messageId": "l1"},
        ]
        with TestClient(create_app(settings, db=real), raise_server_exceptions=False) as live:
            for message in batch:  # one batch each: the merge needs the two buyers to exist first
                r = live.post(
                    "/v1/batch", headers=basic(ws.secret_key), content=orjson.dumps({"batch": [message]})
                )
                assert r.status_code == 200, r.text
            merges = live.get("/v1/merges", headers=basic(ws.secret_key)).json()["items"]
        assert len(merges) == 1
        barrier = threading.Barrier(THREADS)

        def undo(_: int) -> str:
            barrier.wait(timeout=30)
            try:
                with real.write() as session:
                    identity_service.undo_merge(
                        session=session, workspace_id=ws.id, merge_id=merges[0]["id"], actor="test"
                    )
            except MergeNotUndoable:
                return "refused"
            return "undone"

        with ThreadPoolExecutor(THREADS) as pool:
            outcomes = sorted(pool.map(undo, range(THREADS)))
        assert outcomes == ["refused"] * (THREADS - 1) + ["undone"]
    finally:
        forget_queued_work(real, ws.id)
        pipeline_log.set_inline(real, False)
