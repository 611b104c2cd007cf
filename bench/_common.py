"""Shared by the benchmarks: the machine they ran on, percentiles, a real server process."""

from __future__ import annotations

import contextlib
import json
import os
import platform
import sqlite3
import subprocess
import sys
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
    pids = [pid]
    with contextlib.suppress(OSError):
        pids += [int(c) for c in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    ticks = os.sysconf("SC_CLK_TCK")
    total = 0.0
    for one in pids:
        try:
            fields = Path(f"/proc/{one}/stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        total += (int(fields[11]) + int(fields[12])) / ticks  # utime, stime
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


def recreate_database(url: str) -> None:
    """Drop and create the PostgreSQL database ``url`` names (a bench's own, never a shared one)."""
    from sqlalchemy import create_engine, text

    base, name = url.rsplit("/", 1)
    admin = create_engine(f"{base}/postgres", isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'DROP DATABASE IF EXISTS "{name}"'))
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    admin.dispose()
