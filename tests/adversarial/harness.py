"""Live processes for the adversarial tests: `offerloop serve` / `offerloop worker` on a database of their own
(SQLite file) or the PostgreSQL test database, a mixed load with merges and out-of-order timestamps, and the
exact per-buyer counts it must end with."""

from __future__ import annotations

import os
import random
import signal
import subprocess
import sys
import threading
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import httpx
from sqlalchemy import text
from tests.conftest import LiveServer, basic, bearer

from offerloop.db.uow import Database


class Server(LiveServer):
    """`offerloop serve` with ``extra`` environment on top."""

    def __init__(self, url: str, log_path: Path, **extra: str) -> None:
        super().__init__(url, log_path=log_path)
        self.extra = extra

    def env(self) -> dict[str, str]:
        return {**super().env(), **self.extra}


def worker(url: str, log_path: Path) -> subprocess.Popen[bytes]:
    """`offerloop worker`, returned once its consumer threads run."""
    env = {**os.environ, "OFFERLOOP_DATABASE_URL": url, "OFFERLOOP_LOG_LEVEL": "INFO"}
    before = log_path.read_text().count(READY) if log_path.exists() else 0
    out = log_path.open("ab")
    proc = subprocess.Popen(
        [sys.executable, "-m", "offerloop.cli.main", "worker"], env=env, stdout=out, stderr=out
    )
    out.close()
    wait_for(lambda: proc.poll() is None and log_path.read_text().count(READY) > before)
    return proc


READY = "consumer threads beside them"


def wait_for(check: Callable[[], bool], timeout_s: float = 120.0) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        assert time.monotonic() < deadline, "condition not met in time"
        time.sleep(0.1)


def mixed_load(seed: int, groups: int, per_group: int, size: int) -> list[list[dict[str, Any]]]:
    """Batches of ``size``: each group ``g`` is an anonymous visitor ``a<g>`` and a second device ``b<g>`` that
    both identify as ``u<g>`` part-way (merging two anonymous buyers), with timestamps shuffled out of order."""
    rng = random.Random(seed)
    messages: list[dict[str, Any]] = []
    for g in range(groups):
        for i in range(per_group):
            who = rng.choice([{"anonymousId": f"a{g}"}, {"anonymousId": f"b{g}"}, {"userId": f"u{g}"}])
            day = rng.randrange(1, 28)
            messages.append(
                {
                    "type": "track",
                    **who,
                    "event": rng.choice(["Clicked", "Viewed", "Module Completed"]),
                    "messageId": f"m-{g}-{i}",
                    "timestamp": f"2026-11-{day:02d}T{rng.randrange(24):02d}:00:00Z",
                }
            )
        for device in ("a", "b"):
            messages.append(
                {
                    "type": "identify",
                    "anonymousId": f"{device}{g}",
                    "userId": f"u{g}",
                    "messageId": f"id-{device}-{g}",
                    "timestamp": "2026-11-15T12:00:00Z",
                }
            )
    rng.shuffle(messages)
    return [messages[i : i + size] for i in range(0, len(messages), size)]


def send(base: str, key: str, batches: list[list[dict[str, Any]]], acked: list[list[dict[str, Any]]]) -> None:
    """Send the batches in order on one connection; stop at the first transport error (the server died)."""
    with httpx.Client(base_url=base, headers=basic(key), timeout=60) as client:
        for batch in batches:
            try:
                r = client.post("/v1/batch", json={"batch": batch})
            except httpx.TransportError:
                return
            assert r.status_code == 200, r.text
            assert r.json()["quarantined"] == 0, r.text
            acked.append(batch)


def send_concurrently(
    base: str, key: str, batches: list[list[dict[str, Any]]], connections: int
) -> tuple[list[list[dict[str, Any]]], list[threading.Thread]]:
    acked: list[list[dict[str, Any]]] = []
    threads = [
        threading.Thread(target=send, args=(base, key, batches[i::connections], acked))
        for i in range(connections)
    ]
    for t in threads:
        t.start()
    return acked, threads


def lag(base: str, secret: str) -> int:
    r = httpx.get(base + "/v1/pipeline", headers=bearer(secret), timeout=60)
    assert r.status_code == 200, r.text
    return sum(c["lag"] for c in r.json()["consumers"])


def stored(db: Database, ws: str) -> Counter[str]:
    with db.read() as session:
        return Counter(
            r[0]
            for r in session.execute(
                text("SELECT message_id FROM events WHERE workspace_id = :ws"), {"ws": ws}
            )
        )


def feature_counts(base: str, secret: str, users: list[str]) -> dict[str, int]:
    """The events folded into each user's buyer, read over HTTP (the buyer's live state)."""
    out = {}
    with httpx.Client(base_url=base, headers=bearer(secret), timeout=60) as client:
        for user in users:
            r = client.get("/v1/buyers/lookup", params={"user_id": user})
            assert r.status_code == 200, r.text
            out[user] = r.json()["id"]
    return out


def folded(db: Database, ws: str) -> dict[str, int]:
    """Events folded into each live buyer's features (state ``n``), by the buyer's ids."""
    from sqlalchemy import select

    from offerloop.models import BuyerFeatures

    with db.read() as session:
        rows = session.execute(
            select(BuyerFeatures.buyer_id, BuyerFeatures.state).where(BuyerFeatures.workspace_id == ws)
        ).all()
    return {b: int(s["n"]) for b, s in rows}


def expected_per_user(batches: list[list[dict[str, Any]]]) -> Counter[str]:
    """Events per final user: a<g>, b<g> and u<g> all end as u<g>."""
    return Counter("u" + (m.get("userId") or m["anonymousId"])[1:] for b in batches for m in b)


def kill(proc: subprocess.Popen[bytes]) -> None:
    proc.send_signal(signal.SIGKILL)
    proc.wait(30)
