"""`offerloop serve` as a child process on loopback: used by the demo, the benchmarks and the tests."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class ServerProcess:
    def __init__(self, database_url: str, *, workers: int = 1, log_path: Path | None = None) -> None:
        self.database_url = database_url
        self.workers = workers
        self.log_path = log_path
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.proc: subprocess.Popen[bytes] | None = None

    def env(self) -> dict[str, str]:
        return {**os.environ, "OFFERLOOP_DATABASE_URL": self.database_url, "OFFERLOOP_LOG_LEVEL": "WARNING"}

    def start(self, timeout_s: float = 60) -> None:
        """Start the server and return once /readyz answers 200."""
        self.spawn()
        self.wait_ready(timeout_s)

    def spawn(self) -> None:
        """Start the server process without waiting for it (the caller can work meanwhile)."""
        out = self.log_path.open("ab") if self.log_path else subprocess.DEVNULL
        args = ["serve", "--host", "127.0.0.1", "--port", str(self.port), "--workers", str(self.workers)]
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "offerloop.cli.main", *args], env=self.env(), stdout=out, stderr=out
        )
        if not isinstance(out, int):
            out.close()  # the child has its own copy of the descriptor

    def wait_ready(self, timeout_s: float = 60) -> None:
        """Return once /readyz answers 200; stop the server and raise if it does not in time."""
        assert self.proc is not None, "spawn() first"
        deadline = time.monotonic() + timeout_s
        last = "no answer"
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                tail = self.log_path.read_text()[-2000:] if self.log_path else ""
                raise RuntimeError(f"offerloop serve exited with {self.proc.returncode}: {tail}")
            try:
                # A busy machine can take seconds to answer: slow is not "not ready".
                r = httpx.get(self.url + "/readyz", timeout=10)
                if r.status_code == 200:
                    return
                last = f"{r.status_code} {r.text[:300]}"
                time.sleep(0.05)
            except httpx.TransportError as exc:
                last = repr(exc)
                time.sleep(0.05)  # the port is not open yet
        self.stop()
        raise RuntimeError(f"offerloop serve was not ready within {timeout_s} s (last: {last})")

    def kill(self, sig: int = signal.SIGKILL) -> None:
        assert self.proc is not None
        self.proc.send_signal(sig)
        self.proc.wait(timeout=30)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(timeout=30)

    def peak_rss_mib(self) -> float:
        """High-water resident memory of the server and its worker processes (Linux)."""
        if self.proc is None:
            return 0.0
        pids = [self.proc.pid]
        with contextlib.suppress(OSError):
            pids += [
                int(c)
                for c in Path(f"/proc/{self.proc.pid}/task/{self.proc.pid}/children").read_text().split()
            ]
        total_kib = 0
        for pid in pids:
            try:
                for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                    if line.startswith("VmHWM:"):
                        total_kib += int(line.split()[1])
            except OSError:
                continue
        return total_kib / 1024
