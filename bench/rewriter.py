"""Artifacts rendered by a real `offerloop serve` while the voice rewriter hangs (issue 9, item 6).

    python bench/rewriter.py [--buyers 3] [--timeout 1.0]

A loopback server that accepts chat-completions requests and never answers stands in for a hung model.
The demo's launch workbook is requested for N buyers; the script reports how long the renders took and
how many calls reached the model, first with the rewriter unbounded (one call at a time, no breaker, no
artifact deadline: what every artifact did before) and then with the default breaker, concurrency and
deadline. Per-call timeout ``--timeout`` stands in for the default 8 s so the bench stays short.
"""

from __future__ import annotations

import argparse
import os
import random
import shutil
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import httpx
from _common import create_workspace, machine

from offerloop.cli.process import ServerProcess

DEMO = Path(__file__).resolve().parents[1] / "examples" / "demo"


def answers(rng: random.Random) -> dict[str, object]:
    """A quiz completion of the demo intake (the same shape bench/assembly.py sends)."""
    return {"stage": rng.choice(["idea", "building", "launching", "selling"]),
            "pricing_confidence": rng.randint(1, 5), "goal": "sell my first template pack"}  # fmt: skip


class HungModel:
    """Reads each request, counts it, then holds the connection until the bench ends."""

    def __init__(self) -> None:
        self.calls = 0
        self.release = threading.Event()
        lock = threading.Lock()
        model = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                self.rfile.read(int(self.headers.get("Content-Length", "0")))
                with lock:
                    model.calls += 1
                model.release.wait()

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.server.daemon_threads = True
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/v1"

    def close(self) -> None:
        self.release.set()
        self.server.shutdown()
        self.server.server_close()


def run(label: str, settings: dict[str, str], buyers: int, seed: int) -> None:
    tmp = tempfile.mkdtemp(prefix="offerloop-bench-rewriter-")
    url = f"sqlite:///{Path(tmp) / 'rewriter.db'}"
    model = HungModel()
    saved = dict(os.environ)
    os.environ.update({"OFFERLOOP_WORKER_THREADS": "1", "OFFERLOOP_REWRITER_URL": model.url,
                       "OFFERLOOP_REWRITER_MODEL": "hung", **settings})  # fmt: skip
    ws = create_workspace(url, "rewriter-bench")
    server = ServerProcess(url, log_path=Path(tmp) / "server.log")
    server.start()
    try:
        atoms = [{"text": f.read_text(), "path": f.name} for f in sorted((DEMO / "content").rglob("*.md"))
                 if f.name.lower() != "readme.md"]  # fmt: skip
        rng = random.Random(seed)
        with httpx.Client(
            base_url=server.url, headers={"Authorization": f"Bearer {ws['secret_key']}"}, timeout=60
        ) as http:
            http.post("/v1/content/sync", json={"atoms": atoms}).raise_for_status()
            http.put(
                "/v1/quizzes", json={"text": (DEMO / "quizzes" / "intake.yaml").read_text()}
            ).raise_for_status()
            http.put(
                "/v1/policies", json={"text": (DEMO / "policies" / "launch-workbook.yaml").read_text()}
            ).raise_for_status()
            batch = []
            for i in range(buyers):
                batch.append(
                    {
                        "type": "identify",
                        "userId": f"b{i}",
                        "messageId": f"id-{i}",
                        "traits": {"name": f"Buyer {i}"},
                    }
                )
                batch.append({"type": "track", "userId": f"b{i}", "event": "Quiz Completed", "messageId": f"quiz-{i}",
                              "properties": {"quiz_id": "intake", "answers": answers(rng)}})  # fmt: skip
            httpx.post(
                f"{server.url}/v1/batch", auth=(ws["write_key"], ""), json={"batch": batch}
            ).raise_for_status()
            started = time.perf_counter()
            ids = [http.post("/v1/artifacts", json={"user_id": f"b{i}", "policy": "launch-workbook"}).json()["id"]
                   for i in range(buyers)]  # fmt: skip
            done: dict[str, float] = {}
            while len(done) < len(ids):
                time.sleep(0.1)  # polling the API, as a client would
                for a in ids:
                    if a not in done and http.get(f"/v1/artifacts/{a}").json()["status"] not in (
                        "queued",
                        "rendering",
                    ):
                        done[a] = time.perf_counter() - started
            rewritable = [len(http.get(f"/v1/artifacts/{a}").json()["provenance"]["guard"]) for a in ids]
        finish = ", ".join(f"{done[a]:.1f}" for a in ids)
        print(f"{label}: {buyers} workbooks ({sum(rewritable)} rewritable blocks) done in {max(done.values()):.1f} s "
              f"(each finished at {finish} s); calls that reached the hung model: {model.calls}")  # fmt: skip
    finally:
        server.stop()
        model.close()
        os.environ.clear()
        os.environ.update(saved)
        shutil.rmtree(tmp, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--buyers", type=int, default=3)
    parser.add_argument("--timeout", type=float, default=1.0)
    parser.add_argument("--seed", type=int, default=7)
    args = parser.parse_args()
    print(machine())
    timeout = {"OFFERLOOP_REWRITER_TIMEOUT_S": str(args.timeout)}
    run("unbounded (serial, no breaker, no deadline)", {**timeout, "OFFERLOOP_REWRITER_CONCURRENCY": "1",
        "OFFERLOOP_REWRITER_BREAKER_FAILURES": "1000000", "OFFERLOOP_REWRITER_ARTIFACT_DEADLINE_S": "1000000"},
        args.buyers, args.seed)  # fmt: skip
    run("defaults (4 concurrent, breaker after 3, 30 s deadline)", timeout, args.buyers, args.seed)


if __name__ == "__main__":
    main()
