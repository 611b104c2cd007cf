"""Journeys end to end against a real server: trigger acknowledged -> e-mail handed to an SMTP server on
loopback (latency), and a queue of e-mails drained by a worker process with two job threads (throughput).

    python bench/delivery.py                 # 200 latency samples, 10,000 drained
    python bench/delivery.py --drain 2000    # a shorter run
    python bench/delivery.py --database-url postgresql+psycopg://postgres@127.0.0.1:5432/bench_drain
    python bench/delivery.py --workers 2 --threads 1   # two worker processes of one job thread each

Targets (issue 12): ack -> SMTP p99 <= 1 s; >= 200 messages/s drained with two workers. The SMTP server is
aiosmtpd in this process (its handler records when each recipient's message arrived); offerloop runs as
`offerloop serve` (ingestion, consumers) and, for the drain, `offerloop worker --threads 2`. The worker's CPU
time per message drained is printed beside the rate (the machine may be shared: the load average too).
A PostgreSQL database given with ``--database-url`` is emptied first (its schema dropped). The triggers are
sent with the secret key, as a creator's server sends them: a transactional journey never starts on an event a
browser could have sent with the public write key.
"""

from __future__ import annotations

import argparse
import json
import os
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

import httpx
from _common import load_average, machine, percentile, tree_cpu_seconds
from aiosmtpd.controller import Controller

from offerloop.cli.process import ServerProcess
from offerloop.core.clock import utcnow

JOURNEY = """
name: ping
category: transactional
trigger: {event: Bench Ping}
reentry: always
steps:
  - send: {channel: email, subject: "Ping {{ event.properties.n }}", text: "Hello {{ buyer.traits.name }}"}
"""


class Arrivals:
    """The SMTP handler: when each recipient's message arrived (monotonic clock of this process)."""

    def __init__(self) -> None:
        self.at: dict[str, float] = {}
        self.lock = threading.Lock()
        self.count = 0

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        now = time.monotonic()
        with self.lock:
            for rcpt in envelope.rcpt_tos:
                self.at.setdefault(rcpt, now)
            self.count += 1
        return "250 OK"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def batch(http: httpx.Client, key: str, messages: list[dict[str, Any]]) -> None:
    http.post("/v1/batch", auth=(key, ""), json={"batch": messages}).raise_for_status()


def identify_all(http: httpx.Client, key: str, prefix: str, n: int) -> None:
    now = utcnow().isoformat()
    for start in range(0, n, 100):
        batch(http, key, [{"type": "identify", "userId": f"{prefix}{i}", "messageId": f"id-{prefix}{i}",
                           "traits": {"email": f"{prefix}{i}@bench.example", "name": f"B{i}"}, "timestamp": now}
                          for i in range(start, min(n, start + 100))])  # fmt: skip


def wait_for(what: str, check: Any, timeout_s: float) -> None:
    deadline = time.monotonic() + timeout_s
    while not check():
        if time.monotonic() > deadline:
            raise SystemExit(f"timed out waiting for {what}")
        time.sleep(0.01)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--samples", type=int, default=200)
    parser.add_argument("--drain", type=int, default=10_000)
    parser.add_argument(
        "--database-url", default=None, help="default: a SQLite file in a temporary directory"
    )
    parser.add_argument("--workers", type=int, default=1, help="worker processes for the drain")
    parser.add_argument("--threads", type=int, default=2, help="job threads in each worker process")
    args = parser.parse_args()

    arrivals = Arrivals()
    smtp_port = free_port()
    controller = Controller(arrivals, hostname="127.0.0.1", port=smtp_port)
    controller.start()
    tmp = Path(tempfile.mkdtemp(prefix="offerloop-bench-delivery-"))
    db_url = args.database_url or f"sqlite:///{tmp / 'bench.db'}"
    if db_url.startswith("postgresql"):
        reset_schema(db_url)
    env = {"OFFERLOOP_SMTP_URL": f"smtp://127.0.0.1:{smtp_port}", "OFFERLOOP_DATABASE_URL": db_url}
    os.environ.update(env)
    subprocess.run([sys.executable, "-m", "offerloop.cli.main", "migrate"], check=True, capture_output=True)
    ws = json.loads(subprocess.run([sys.executable, "-m", "offerloop.cli.main", "workspace", "create", "Bench",
                                    "--json"], check=True, capture_output=True, text=True).stdout)  # fmt: skip
    server = ServerProcess(db_url, workers=1, log_path=tmp / "server.log")
    server.start(timeout_s=180)
    results: dict[str, Any] = {}
    try:
        with httpx.Client(base_url=server.url, timeout=60) as http:
            admin = {"Authorization": f"Bearer {ws['secret_key']}"}
            http.put("/v1/journeys/ping", headers=admin, json={"yaml": JOURNEY}).raise_for_status()
            # 1. Latency: one trigger at a time, each to its own buyer, 20 a second (no intended wait).
            identify_all(http, ws["write_key"], "lat", args.samples)
            time.sleep(1.0)  # the identities are applied before the triggers start (they are not measured)
            acked: dict[str, float] = {}
            for i in range(args.samples):
                batch(http, ws["secret_key"], [{"type": "track", "userId": f"lat{i}", "event": "Bench Ping",
                                               "messageId": f"ping-lat-{i}", "properties": {"n": i},
                                               "timestamp": utcnow().isoformat()}])  # fmt: skip
                acked[f"lat{i}@bench.example"] = time.monotonic()
                time.sleep(0.05)
            wait_for("every latency sample", lambda: all(r in arrivals.at for r in acked), 120)
            delays = sorted((arrivals.at[r] - t) * 1000 for r, t in acked.items())
            results["latency_ms"] = {
                "p50": percentile(delays, 50),
                "p99": percentile(delays, 99),
                "max": delays[-1],
            }
        server.stop()

        # 2. Drain: the server queues the work with no job threads of its own; then the worker processes
        # (by default one, with two job threads) run every journey step and send.
        os.environ["OFFERLOOP_WORKER_THREADS"] = "0"
        server.start(timeout_s=180)
        with httpx.Client(base_url=server.url, timeout=60) as http:
            identify_all(http, ws["write_key"], "d", args.drain)
            now = utcnow().isoformat()
            for start in range(0, args.drain, 100):
                batch(http, ws["secret_key"], [{"type": "track", "userId": f"d{i}", "event": "Bench Ping",
                                               "messageId": f"ping-d-{i}", "properties": {"n": i}, "timestamp": now}
                                              for i in range(start, min(args.drain, start + 100))])  # fmt: skip
            admin = {"Authorization": f"Bearer {ws['secret_key']}"}
            wait_for("every run queued", lambda: http.get("/v1/journeys/ping", headers=admin).json()["runs"] and sum(
                c["runs"] for c in http.get("/v1/journeys/ping", headers=admin).json()["runs"]) >= args.samples + args.drain, 600)  # fmt: skip
        before = arrivals.count
        os.environ["OFFERLOOP_WORKER_THREADS"] = str(args.threads)
        load_before = load_average()
        started = time.monotonic()
        workers = [subprocess.Popen([sys.executable, "-m", "offerloop.cli.main", "worker", "--threads",
                                     str(args.threads)], stderr=subprocess.DEVNULL) for _ in range(args.workers)]  # fmt: skip
        try:
            wait_for("the drain", lambda: arrivals.count - before >= args.drain, 3600)
            seconds = time.monotonic() - started
            cpu_s = sum(tree_cpu_seconds(w.pid) for w in workers)
        finally:
            for worker in workers:
                worker.terminate()
            for worker in workers:
                worker.wait(60)
        results["drain"] = {
            "messages": args.drain,
            "seconds": round(seconds, 1),
            "per_s": round(args.drain / seconds, 1),
            "cpu_ms": 1000 * cpu_s / args.drain,
            "load": f"{load_before} -> {load_average()}",
        }
    finally:
        server.stop()
        controller.stop()
    lat = results["latency_ms"]
    print(f"machine: {machine()}; load average {load_average()}")
    print(f"ack -> SMTP ({args.samples} triggers, one at a time): p50 {lat['p50']:.0f} ms, p99 {lat['p99']:.0f} ms, "
          f"max {lat['max']:.0f} ms (target p99 <= 1000 ms)")  # fmt: skip
    d = results["drain"]
    print(f"drain: {d['messages']:,} e-mails (journey step + send each) in {d['seconds']} s = {d['per_s']} msgs/s "
          f"with {args.workers} worker process(es) of {args.threads} job thread(s), start-up included (target >= 200/s)")  # fmt: skip
    print(f"drain: workers' CPU {d['cpu_ms']:.2f} ms per message (start-up included); load average {d['load']}; "
          f"database {db_url.split(':', 1)[0]}")  # fmt: skip


def reset_schema(url: str) -> None:
    from sqlalchemy import create_engine, text

    engine = create_engine(url)
    with engine.begin() as conn:
        conn.execute(text("DROP SCHEMA IF EXISTS public CASCADE"))
        conn.execute(text("CREATE SCHEMA public"))
    engine.dispose()


if __name__ == "__main__":
    main()
