"""Ingest throughput over HTTP: batches of 100 events, 2 client connections, one server process.

    python bench/ingest.py                                    # SQLite (embedded default)
    python bench/ingest.py --database-url postgresql+psycopg://postgres@127.0.0.1:5432/test

Target (issue 2): >= 20,000 events/s on SQLite, >= 10,000 on PostgreSQL, p99 batch latency <= 50 ms.
"""

from __future__ import annotations

import argparse
import base64
import http.client
import shutil
import tempfile
import threading
import time
from pathlib import Path

import orjson
from _common import create_workspace, machine, percentile, start_server

from offerloop.sim.audience import Audience


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--database-url", default=None, help="default: a fresh SQLite file")
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--buyers", type=int, default=5_000)
    parser.add_argument("--connections", type=int, default=2)
    parser.add_argument("--workers", type=int, default=1, help="server worker processes")
    args = parser.parse_args()

    tmp = tempfile.mkdtemp(prefix="offerloop-bench-")
    url = args.database_url or f"sqlite:///{Path(tmp) / 'bench.db'}"
    ws = create_workspace(url, "bench")
    # Bodies are built before the clock starts: the figure is the server's, not the generator's.
    audience = Audience(buyers=args.buyers, events=args.events, seed=11)
    bodies = [orjson.dumps({"batch": b}) for b in audience.batches(100)]
    auth = "Basic " + base64.b64encode(f"{ws['write_key']}:".encode()).decode()

    server = start_server(url, workers=args.workers)
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    lock = threading.Lock()
    cursor = iter(range(len(bodies)))

    def client() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", server.port, timeout=60)
        mine: list[float] = []
        while True:
            with lock:
                i = next(cursor, None)
            if i is None:
                break
            t0 = time.perf_counter()
            conn.request(
                "POST",
                "/v1/batch",
                body=bodies[i],
                headers={"Authorization": auth, "Content-Type": "application/json"},
            )
            resp = conn.getresponse()
            resp.read()
            mine.append(time.perf_counter() - t0)
            with lock:
                statuses[resp.status] = statuses.get(resp.status, 0) + 1
        conn.close()
        with lock:
            latencies.extend(mine)

    try:
        started = time.perf_counter()
        threads = [threading.Thread(target=client) for _ in range(args.connections)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        elapsed = time.perf_counter() - started
        rss = server.peak_rss_mib()
    finally:
        server.stop()
        shutil.rmtree(tmp, ignore_errors=True)

    backend = url.split(":", 1)[0]
    print(f"machine: {machine()}")
    print(f"backend: {backend}; server workers: {args.workers}; client connections: {args.connections}")
    print(f"events: {args.events:,} in {len(bodies):,} batches of 100; HTTP statuses: {statuses}")
    print(f"throughput: {args.events / elapsed:,.0f} events/s ({elapsed:.1f} s)")
    print(
        f"batch latency: p50 {percentile(latencies, 50) * 1000:.1f} ms, p99 {percentile(latencies, 99) * 1000:.1f} ms, "
        f"max {max(latencies) * 1000:.1f} ms"
    )
    print(f"server peak RSS: {rss:.0f} MiB")


if __name__ == "__main__":
    main()
