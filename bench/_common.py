"""Shared by the benchmarks: the machine they ran on, percentiles, a real server process."""

from __future__ import annotations

import contextlib
import http.client
import json
import os
import platform
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

from offerloop.cli.process import ServerProcess


def machine() -> str:
    cpu = "unknown cpu"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    mem_gib = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return (
        f"{cpu}, {os.cpu_count()} cores, {mem_gib:.0f} GiB, {platform.system()} {platform.release()}, "
        f"Python {platform.python_version()}, SQLite {sqlite3.sqlite_version}"
    )


def load_average() -> str:
    """The 1-minute load average: other work on the same cores shows in the tail latencies."""
    return f"{os.getloadavg()[0]:.2f}"


def tree_cpu_seconds(pid: int) -> float:
    """User + system CPU seconds used so far by a process and its direct children (Linux /proc)."""
    return sum(process_cpu_seconds(pid).values())


def process_cpu_seconds(pid: int) -> dict[int, float]:
    """User + system CPU seconds used so far by a process and by each of its direct children, by pid: how
    the work was shared between the worker processes of a server."""
    pids = [pid]
    with contextlib.suppress(OSError):
        pids += [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    ticks = os.sysconf("SC_CLK_TCK")
    total: dict[int, float] = {}
    for one in pids:
        try:
            fields = Path(f"/proc/{one}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total[one] = (int(fields[11]) + int(fields[12])) / ticks  # utime, stime
    return total


def load() -> str:
    """The machine's load averages: other work on the same cores moves every figure."""
    one, five, fifteen = os.getloadavg()
    return f"load average {one:.2f} / {five:.2f} / {fifteen:.2f} (1 / 5 / 15 min)"


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return float("nan")
    k = min(len(ordered) - 1, max(0, round(q / 100 * (len(ordered) - 1))))
    return ordered[k]


def cli(database_url: str, *args: str) -> str:
    env = {**os.environ, "OFFERLOOP_DATABASE_URL": database_url}
    out = subprocess.run(
        [sys.executable, "-m", "offerloop.cli.main", *args],
        env=env,
        check=True,
        capture_output=True,
        text=True,
    )
    return out.stdout


def create_workspace(database_url: str, name: str) -> dict[str, str]:
    return json.loads(cli(database_url, "workspace", "create", name, "--json"))


def start_server(database_url: str, workers: int = 1) -> ServerProcess:
    server = ServerProcess(database_url, workers=workers)
    server.start(timeout_s=300)  # a machine busy with other work can take minutes to import and start
    return server


def post_all(port: int, path: str, bodies: list[bytes], headers: dict[str, str], connections: int) -> float:
    """POST every body to ``path`` over ``connections`` keep-alive connections, each taking the next body
    as soon as its previous answer is read; returns the seconds it took."""
    cursor = iter(bodies)
    lock = threading.Lock()

    def client() -> None:
        c = http.client.HTTPConnection("127.0.0.1", port)
        while True:
            with lock:
                body = next(cursor, None)
            if body is None:
                return
            c.request("POST", path, body=body, headers=headers)
            c.getresponse().read()

    started = time.perf_counter()
    run_threads(client, connections)
    return time.perf_counter() - started


def run_threads(target: Callable[[], None], count: int) -> None:
    """Run ``target`` in ``count`` threads at once and wait for all of them."""
    threads = [threading.Thread(target=target) for _ in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()


def recreate_database(url: str) -> None:
    """Drop and create the PostgreSQL database ``url`` names (a bench's own, never a shared one)."""
    from sqlalchemy import create_engine, text

    base, name = url.rsplit("/", 1)
    admin = create_engine(f"{base}/postgres", isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
