"""CPU time per /v1/decide, split by where it is spent: in-process (the endpoint's calls) and in one server
process (its event-loop thread vs its other threads), on one prepared database, so two versions of the code
can be alternated on the same data and request stream on a shared machine (CPU time, not wall time).

    python bench/decide_cpu.py --db /tmp/decide-cpu.db           # builds the database once, then measures
    PYTHONPATH=/path/to/other/src python bench/decide_cpu.py --db /tmp/decide-cpu.db   # the other version

Each run first deletes the decisions a previous run logged (a buyer's past decisions are read by the next).
"""

from __future__ import annotations

import argparse
import asyncio
import http.client
import json
import os
import random
import time
from pathlib import Path

import orjson
from _common import create_workspace, load_average, machine, post_all, start_server
from decide import catalog_and_model
from lookup import load
from sqlalchemy import text

from offerloop import pipeline
from offerloop.config import Settings
from offerloop.db import migrate
from offerloop.db.engine import make_engine
from offerloop.db.uow import Database
from offerloop.decisions import service as decisions_service
from offerloop.decisions.schemas import DecideRequest
from offerloop.ml.base import Action
from offerloop.worker import pools


def prepare(path: Path, buyers: int) -> dict[str, object]:
    meta = path.with_suffix(".json")
    if meta.exists():
        return dict(json.loads(meta.read_text()))
    url = f"sqlite:///{path}"
    ws = create_workspace(url, "decide-cpu")
    engine = make_engine(url)
    migrate.upgrade(engine)
    db = Database(engine)
    load(db, ws["id"], buyers)
    keys = catalog_and_model(db, ws["id"], 200)
    engine.dispose()
    out = {**ws, "keys": keys, "buyers": buyers}
    meta.write_text(json.dumps(out))
    return out


def thread_cpu(pid: int) -> dict[int, float]:
    ticks = os.sysconf("SC_CLK_TCK")
    out = {}
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            fields = (task / "stat").read_text().rsplit(")", 1)[1].split()
        except OSError:
            continue
        out[int(task.name)] = (int(fields[11]) + int(fields[12])) / ticks
    return out


def through_the_app(url: str, encoded: list[bytes], headers: dict[str, str], warm: int) -> float:
    """CPU per POST /v1/decide through the whole ASGI app called in-process (middleware, routing, the route, the
    thread it runs in), without a server or background threads: process time, so both threads count."""
    from offerloop.api.app import create_app

    app = create_app(Settings(database_url=url), migrate_on_start=False)
    base = [(k.lower().encode(), v.encode()) for k, v in headers.items()]

    async def one(body: bytes) -> None:
        status = 0

        async def receive() -> dict[str, object]:
            return {"type": "http.request", "body": body, "more_body": False}

        async def send(message: dict[str, object]) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = int(message["status"])  # type: ignore[call-overload]

        scope = {"type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "POST",
                 "scheme": "http", "path": "/v1/decide", "raw_path": b"/v1/decide", "root_path": "",
                 "query_string": b"", "headers": [*base, (b"content-length", str(len(body)).encode())],
                 "client": ("127.0.0.1", 1), "server": ("127.0.0.1", 80), "state": {}}  # fmt: skip
        await app(scope, receive, send)
        assert status == 200, status

    async def run() -> float:
        for body in encoded[:warm]:
            await one(body)
        started = time.process_time()
        for body in encoded[warm:]:
            await one(body)
        return (time.process_time() - started) / (len(encoded) - warm)

    return asyncio.run(run())


def rank_alone(db: Database, workspace_id: str, logged: list[dict[str, object]], warm: int) -> float:
    """CPU per ``policy.rank`` over the logged decisions' contexts and candidates (the model-ranked ones), with
    one Action object per catalog key as the catalog cache gives them (the policy as decide loads it)."""
    with db.read() as session:
        _, policy = decisions_service.current_policy(session, workspace_id, "home")
    assert policy is not None
    actions: dict[str, Action] = {}
    calls = []
    for row in logged:
        if row["policy"] != "model":
            continue
        context = {k: v for k, v in row["context"].items() if k != "_outcome"}  # type: ignore[attr-defined]
        candidates = [actions.setdefault(c["id"], Action(c["id"], c["features"])) for c in row["candidates"]]  # type: ignore[attr-defined]
        calls.append((context, candidates))
    for context, candidates in calls[:warm]:
        policy.rank(context, candidates)
    started = time.thread_time()
    for context, candidates in calls[warm:]:
        policy.rank(context, candidates)
    return (time.thread_time() - started) / max(1, len(calls) - warm)


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--db", required=True, help="SQLite file (built on the first run)")
    parser.add_argument("--buyers", type=int, default=20_000)
    parser.add_argument("--decisions", type=int, default=1500)
    parser.add_argument("--connections", type=int, default=2)
    args = parser.parse_args()
    started_load = load_average()
    ws = prepare(Path(args.db), args.buyers)
    url = f"sqlite:///{args.db}"
    engine = make_engine(url, background_checkpoint=True)
    db = Database(engine)
    with db.write() as session:
        session.execute(text("DELETE FROM decisions"))
    pools.prepare(Settings(database_url=url))  # the consumers the freshness check looks at
    rng = random.Random(3)
    keys = list(ws["keys"])  # type: ignore[call-overload]
    bodies = [
        {"user_id": f"u{rng.randrange(int(ws['buyers']))}", "placement": "home", "k": 5, "candidates": rng.sample(keys, 50)}  # type: ignore[call-overload]
        for _ in range(args.decisions)
    ]  # fmt: skip
    workspace_id = str(ws["id"])

    logged: list[dict[str, object]] = []

    def decide(body: dict[str, object]) -> None:  # what POST /v1/decide does
        pending: list[dict[str, object]] = []
        if hasattr(pipeline, "fresh_read"):
            reading = pipeline.fresh_read(db, workspace_id=workspace_id)
        else:  # an older version: catch up, then a read transaction of its own
            pipeline.catch_up(db, workspace_id=workspace_id)
            reading = db.read()
        with reading as session:
            decisions_service.decide_for(session=session, workspace_id=workspace_id, request=DecideRequest(**body),  # type: ignore[arg-type]
                                         log=pending)  # type: ignore[arg-type]  # fmt: skip
        with db.write() as session:
            decisions_service.record(session=session, decisions=pending)  # type: ignore[arg-type]
        logged.extend(pending)

    warm = max(1, args.decisions // 10)
    for body in bodies[:warm]:
        decide(body)
    cpu = time.thread_time()
    for body in bodies[warm:]:
        decide(body)
    in_process = (time.thread_time() - cpu) / (len(bodies) - warm)
    rank_cpu = rank_alone(db, workspace_id, logged, warm)
    with db.write() as session:
        session.execute(text("DELETE FROM decisions"))
    headers = {"Authorization": f"Bearer {ws['secret_key']}", "Content-Type": "application/json"}
    encoded = [orjson.dumps(b) for b in bodies]
    app_cpu = through_the_app(url, encoded, headers, warm)
    with db.write() as session:
        session.execute(text("DELETE FROM decisions"))
    engine.dispose()

    server = start_server(url, workers=1)
    try:
        assert server.proc is not None
        pid = server.proc.pid
        conn = http.client.HTTPConnection("127.0.0.1", server.port)
        for body in encoded[:warm]:
            conn.request("POST", "/v1/decide", body=body, headers=headers)
            response = conn.getresponse()
            response.read()
            assert response.status == 200, response.status
        before = thread_cpu(pid)
        elapsed = post_all(server.port, "/v1/decide", encoded[warm:], headers, args.connections)
        after = thread_cpu(pid)
    finally:
        server.stop()
    n = len(bodies) - warm
    loop_s = after.get(pid, 0.0) - before.get(pid, 0.0)
    other_s = sum(v - before.get(k, 0.0) for k, v in after.items() if k != pid)
    print(f"machine: {machine()}; load average {started_load} -> {load_average()}")
    print(f"decide in-process (fresh read, decide, log write): {in_process * 1000:.2f} ms CPU per decision")
    print(
        f"VW rank alone, the same decisions' contexts and candidates: {rank_cpu * 1000:.3f} ms CPU per decision"
    )
    print(
        f"the ASGI app in-process (no server, no background threads): {app_cpu * 1000:.2f} ms CPU per decision"
    )
    print(
        f"one server process, {args.connections} connections, {n:,} decisions: {(loop_s + other_s) / n * 1000:.2f} ms "
        f"CPU per decision (event-loop thread {loop_s / n * 1000:.2f}, other threads {other_s / n * 1000:.2f}); "
        f"{n / elapsed:,.0f} decisions/s"
    )


if __name__ == "__main__":
    main()
