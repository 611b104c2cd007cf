"""SIGKILL of the server and of a worker in the middle of a mixed load on several connections (merges of two
anonymous buyers, out-of-order timestamps): every acknowledged messageId stored once, each buyer's count exact."""

from __future__ import annotations

import signal
from pathlib import Path

import pytest
from tests.adversarial.harness import (
    Server,
    expected_per_user,
    feature_counts,
    folded,
    kill,
    lag,
    mixed_load,
    send_concurrently,
    stored,
    wait_for,
    worker,
)


def _check(db, ws, base, batches, acked) -> None:
    counts = stored(db, ws.id)
    assert {m["messageId"] for b in acked for m in b} <= set(counts)
    assert set(counts.values()) == {1}
    assert len(counts) == sum(len(b) for b in batches)
    expected = expected_per_user(batches)
    buyers = feature_counts(base, ws.secret_key, sorted(expected))
    n = folded(db, ws.id)
    assert {u: n.get(buyers[u], 0) for u in expected} == dict(expected)


def test_server_sigkilled_under_three_connections(tmp_path: Path, target) -> None:
    url, db, ws = target
    batches = mixed_load(seed=7, groups=30, per_group=100, size=50)
    server = Server(url, tmp_path / "server.log")
    server.start()
    acked, threads = send_concurrently(server.url, ws.write_key, batches, 3)
    wait_for(lambda: len(acked) >= 20)
    server.kill(signal.SIGKILL)
    for t in threads:
        t.join()
    assert len(acked) < len(batches)
    server = Server(url, tmp_path / "server.log")
    server.start()
    try:
        again, threads = send_concurrently(server.url, ws.write_key, batches, 3)
        for t in threads:
            t.join()
        assert len(again) == len(batches)
        wait_for(lambda: lag(server.url, ws.secret_key) == 0)
        _check(db, ws, server.url, batches, acked)
    finally:
        server.stop()


def test_one_of_two_workers_sigkilled_mid_load(tmp_path: Path, target, engine) -> None:
    if engine.dialect.name != "postgresql":
        pytest.skip("several workers share a log on PostgreSQL")
    url, db, ws = target
    batches = mixed_load(seed=8, groups=30, per_group=100, size=50)
    server = Server(url, tmp_path / "server.log", OFFERLOOP_PIPELINE_WORKERS="0")
    server.start()
    workers = [worker(url, tmp_path / f"w{i}.log") for i in range(2)]
    try:
        acked, threads = send_concurrently(server.url, ws.write_key, batches, 3)
        wait_for(lambda: sum(folded(db, ws.id).values()) >= 300)
        kill(workers[0])
        for t in threads:
            t.join()
        assert len(acked) == len(batches)
        workers[0] = worker(url, tmp_path / "w0.log")
        wait_for(lambda: lag(server.url, ws.secret_key) == 0)
        _check(db, ws, server.url, batches, acked)
    finally:
        for w in workers:
            kill(w)
        server.stop()
