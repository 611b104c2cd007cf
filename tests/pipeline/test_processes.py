"""Real processes on loopback: the server and workers killed mid-load lose nothing and apply nothing twice;
two workers keep each buyer's events in order; a decision right after an acknowledged event sees it."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import support
from sqlalchemy import Engine, delete, select, text
from tests.conftest import basic, bearer

from offerloop.cli.process import ServerProcess
from offerloop.db.engine import make_engine
from offerloop.db.uow import Database
from offerloop.models import BuyerFeatures, Job, Workspace
from offerloop.workspaces import service as workspace_service
from offerloop.workspaces.schemas import WorkspaceCreated

HERE = Path(__file__).parent


class TestServer(ServerProcess):
    """`offerloop serve` with the test consumers registered; ``extra`` environment on top."""

    __test__ = False

    def __init__(self, url: str, log_path: Path, **extra: str) -> None:
        super().__init__(url, log_path=log_path)
        self.extra = extra

    def env(self) -> dict[str, str]:
        return {**super().env(), **self.extra}

    def start(self, timeout_s: float = 60) -> None:
        out = self.log_path.open("ab") if self.log_path else subprocess.DEVNULL
        args = ["serve", "--host", "127.0.0.1", "--port", str(self.port)]
        self.proc = subprocess.Popen(
            [sys.executable, str(HERE / "serve_script.py"), *args], env=self.env(), stdout=out, stderr=out
        )
        if not isinstance(out, int):
            out.close()  # the child has its own copy of the descriptor
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            assert self.proc.poll() is None, self.log_path.read_text()[-2000:] if self.log_path else ""
            try:
                if httpx.get(self.url + "/readyz", timeout=10).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            time.sleep(0.05)  # the port is not open yet
        raise RuntimeError("server not ready")


def _worker(url: str, log_path: Path) -> subprocess.Popen[bytes]:
    """`offerloop worker` (test consumers beside the real ones), returned once its pools have started."""
    env = {**os.environ, "OFFERLOOP_DATABASE_URL": url, "OFFERLOOP_LOG_LEVEL": "WARNING"}
    started = log_path.read_text().count(READY) if log_path.exists() else 0
    out = log_path.open("ab")
    proc = subprocess.Popen(
        [sys.executable, str(HERE / "worker_script.py"), "worker"], env=env, stdout=out, stderr=out
    )
    out.close()  # the child has its own copy of the descriptor
    wait_for(lambda: proc.poll() is None and log_path.read_text().count(READY) > started)
    return proc


READY = "consumer threads beside them"  # what `offerloop worker` says once its threads run


def wait_for(check: Callable[[], bool], timeout_s: float = 90.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.05)


@pytest.fixture
def target(
    tmp_path: Path, engine: Engine, database_url: str
) -> Iterator[tuple[str, Database, WorkspaceCreated]]:
    """A database the processes share (a fresh SQLite file, or the PostgreSQL test database) and a workspace."""
    url = database_url if engine.dialect.name == "postgresql" else f"sqlite:///{tmp_path / 'live.db'}"
    eng = make_engine(url)
    from offerloop.db import migrate

    migrate.upgrade(eng)
    support.create_calls_table(eng)
    db = Database(eng)
    with db.write() as session:
        ws = workspace_service.create_workspace(session=session, name="Processes")
    yield url, db, ws
    with db.write() as session:
        session.execute(delete(Job).where(Job.workspace_id == ws.id))
        session.execute(text("DELETE FROM pipeline_test_calls WHERE workspace_id = :ws"), {"ws": ws.id})
        session.execute(delete(Workspace).where(Workspace.id == ws.id))
    eng.dispose()


def _batches(n: int, size: int, users: int, seed: int) -> list[list[dict[str, Any]]]:
    rng = random.Random(seed)
    return [
        [
            {
                "type": "track",
                "userId": f"u{rng.randrange(users)}",
                "event": "Clicked",
                "messageId": f"m-{b}-{i}",
            }
            for i in range(size)
        ]
        for b in range(n)
    ]


def _state(db: Database, ws: str) -> tuple[Counter[str], Counter[int], Counter[str], int]:
    """(stored messageIds, recorder calls per seq, recorder calls per userId, events with a buyer)."""
    with db.read() as session:
        users = {b: u for u, b in support.buyers(session, ws).items()}
        stored = Counter(
            r[0]
            for r in session.execute(
                text("SELECT message_id FROM events WHERE workspace_id = :ws"), {"ws": ws}
            )
        )
        calls = session.execute(
            text(
                "SELECT seq, buyer_id FROM pipeline_test_calls WHERE workspace_id = :ws AND consumer = 'test_recorder'"
            ),
            {"ws": ws},
        ).all()
        resolved = session.execute(
            text("SELECT count(*) FROM events WHERE workspace_id = :ws AND buyer_id IS NOT NULL"), {"ws": ws}
        ).scalar()
    return (
        stored,
        Counter(int(s) for s, _ in calls),
        Counter(users.get(b, f"?{b}") for _, b in calls),
        int(resolved or 0),
    )


def _all_applied(db: Database, ws: str, n: int) -> bool:
    """Every consumer done: the recorder saw ``n`` events and the features consumer folded ``n`` (the
    stage's consumers advance separately, so one being done says nothing of the others)."""
    if sum(_state(db, ws)[1].values()) != n:
        return False
    with db.read() as session:
        states = session.scalars(select(BuyerFeatures.state).where(BuyerFeatures.workspace_id == ws))
        return sum(int(s["n"]) for s in states) == n


def _assert_exactly_once(
    db: Database, ws: str, acked: list[list[dict[str, Any]]], everything: list[list[dict[str, Any]]]
) -> None:
    stored, per_seq, per_buyer, _ = _state(db, ws)
    sent = [m for b in everything for m in b]
    assert {m["messageId"] for b in acked for m in b} <= set(stored)  # nothing acknowledged is lost
    assert set(stored.values()) == {1}  # stored once
    assert set(per_seq.values()) == {1} and sum(per_seq.values()) == len(stored)  # processed once
    expected = Counter(m["userId"] for m in sent if m["messageId"] in stored)
    assert per_buyer == expected  # a per-buyer count, exact, under the buyer the identity stage resolved
    with db.read() as session:  # and the real features consumer folded each event exactly once
        buyers = support.buyers(session, ws)
        folded = dict(
            session.execute(
                select(BuyerFeatures.buyer_id, BuyerFeatures.state).where(BuyerFeatures.workspace_id == ws)
            ).all()
        )
    assert {u: folded[buyers[u]]["n"] for u in expected} == dict(expected)


def _send_all(
    url: str, key: str, batches: list[list[dict[str, Any]]], acked: list[list[dict[str, Any]]]
) -> None:
    with httpx.Client(base_url=url, headers=basic(key), timeout=30) as client:
        for batch in batches:
            try:
                r = client.post("/v1/batch", json={"batch": batch})
            except httpx.TransportError:
                return  # the server is gone: what was not acknowledged is the client's to resend
            assert r.status_code == 200, r.text
            acked.append(batch)


def test_server_killed_mid_load_loses_nothing_and_applies_nothing_twice(tmp_path, target) -> None:
    url, db, ws = target
    batches = _batches(60, 50, 25, seed=3)
    server = TestServer(url, tmp_path / "server.log")
    server.start()
    acked: list[list[dict[str, Any]]] = []
    sender = threading.Thread(target=_send_all, args=(server.url, ws.write_key, batches, acked))
    sender.start()
    wait_for(lambda: len(acked) >= 20)
    server.kill(signal.SIGKILL)
    sender.join()
    assert 20 <= len(acked) < 60
    server = TestServer(url, tmp_path / "server.log")
    server.start()
    try:
        resent: list[list[dict[str, Any]]] = []
        _send_all(
            server.url, ws.write_key, batches, resent
        )  # a client resends everything: duplicates dropped
        assert len(resent) == 60
        wait_for(lambda: _lag(server.url, ws) == 0)
    finally:
        server.stop()
    _assert_exactly_once(db, ws.id, acked, batches)
    assert sum(_state(db, ws.id)[0].values()) == 3000


def _lag(url: str, ws: WorkspaceCreated) -> int:
    r = httpx.get(url + "/v1/pipeline", headers=bearer(ws.secret_key), timeout=30)
    return sum(c["lag"] for c in r.json()["consumers"] if c["name"] in support.NAMES)


def test_worker_killed_mid_load_loses_nothing_and_applies_nothing_twice(tmp_path, target) -> None:
    url, db, ws = target
    batches = _batches(40, 50, 25, seed=5)
    server = TestServer(url, tmp_path / "server.log", OFFERLOOP_PIPELINE_WORKERS="0")  # acknowledges only
    server.start()
    worker = _worker(url, tmp_path / "worker.log")
    try:
        acked: list[list[dict[str, Any]]] = []
        sender = threading.Thread(target=_send_all, args=(server.url, ws.write_key, batches, acked))
        sender.start()
        wait_for(lambda: sum(_state(db, ws.id)[1].values()) >= 200)
        worker.send_signal(signal.SIGKILL)
        worker.wait(30)
        sender.join()
        assert len(acked) == 40
        worker = _worker(url, tmp_path / "worker.log")  # takes over once the dead one's leases run out
        wait_for(lambda: _all_applied(db, ws.id, 2000))
    finally:
        worker.send_signal(signal.SIGKILL)
        worker.wait(30)
        server.stop()
    _assert_exactly_once(db, ws.id, acked, batches)


def test_two_workers_keep_each_buyers_events_in_order(tmp_path, target, engine) -> None:
    if engine.dialect.name != "postgresql":
        pytest.skip("workers on several machines share the work on PostgreSQL")
    url, db, ws = target
    batches = _batches(40, 50, 30, seed=11)
    server = TestServer(url, tmp_path / "server.log", OFFERLOOP_PIPELINE_WORKERS="0")
    server.start()
    workers = [_worker(url, tmp_path / f"worker{i}.log") for i in range(2)]
    try:
        acked: list[list[dict[str, Any]]] = []
        _send_all(server.url, ws.write_key, batches, acked)
        wait_for(lambda: _all_applied(db, ws.id, 2000))
    finally:
        for w in workers:
            w.send_signal(signal.SIGKILL)
            w.wait(30)
        server.stop()
    _assert_exactly_once(db, ws.id, acked, batches)
    with db.read() as session:
        calls = session.execute(
            text(
                "SELECT buyer_id, seq, pid FROM pipeline_test_calls WHERE workspace_id = :ws AND consumer = 'test_recorder' ORDER BY id"
            ),
            {"ws": ws.id},
        ).all()
    by_buyer: dict[str, list[int]] = {}
    for buyer, seq, _ in calls:
        by_buyer.setdefault(buyer, []).append(int(seq))
    assert all(seqs == sorted(seqs) for seqs in by_buyer.values())
    assert len({pid for _, _, pid in calls}) == 2  # both workers did part of the work


def test_a_decision_right_after_an_acknowledged_event_sees_it(tmp_path, target) -> None:
    url, db, ws = target
    # No consumer threads anywhere: only the read path's catch-up can have applied the event.
    server = TestServer(url, tmp_path / "server.log", OFFERLOOP_PIPELINE_WORKERS="0")
    server.start()
    try:
        with httpx.Client(base_url=server.url, timeout=30) as client:
            for i in range(3):
                event = {"type": "track", "userId": "fresh", "event": "Clicked", "messageId": f"f-{i}"}
                assert client.post("/v1/track", json=event, headers=basic(ws.write_key)).status_code == 200
                client.post(
                    "/v1/decide",
                    json={"user_id": "fresh", "placement": "home"},
                    headers=bearer(ws.secret_key),
                )
                _, _, per_buyer, resolved = _state(db, ws.id)
                assert (per_buyer["fresh"], resolved) == (i + 1, i + 1)
    finally:
        server.stop()
