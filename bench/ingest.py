"""Ingest over HTTP: batches of 100 events, 2 client connections, one server process — side by side in one run:

  (a) acknowledged events/s and p50/p99 batch latency;
  (b) processed events/s: until every consumer has caught up (the server's
      ``offerloop_consumer_lag_events`` gauges in /metrics all 0); skipped, and said so, when the
      server has no such gauges (ingest that processes inline: acknowledged is then processed);
  (c) the physical limit: the stored rows inserted by a bare executemany into the same schema, and
      validate + append in-process stage by stage (bench/ingest_baseline.py); acknowledged as a share of it;
  (d) the official Segment Python client (analytics-python) with its default batching;
  (e) acknowledgement -> state applied: under half of (a)'s rate (paced batches of 100), a probe event for
      a new buyer every 20 ms, each timed from its acknowledgement until the buyer's features show it —
      read straight from the database, so the probe itself never makes the server apply anything.

    python bench/ingest.py                                    # SQLite (a fresh file)
    python bench/ingest.py --database-url postgresql+psycopg://postgres@127.0.0.1:5432/bench_ingest --reset

Targets (issue 10): acknowledged >= 20,000 events/s on SQLite and >= 10,000 on PostgreSQL, p99 batch
<= 50 ms; processed >= 10,000 events/s sustained on SQLite; acknowledgement -> applied p99 <= 100 ms under
half of peak load.
"""

from __future__ import annotations

import argparse
import base64
import http.client
import logging
import os
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from datetime import datetime
from pathlib import Path
from typing import Any

import httpx
import orjson
from _common import create_workspace, load, machine, percentile, run_threads, start_server, tree_cpu_seconds
from ingest_baseline import (
    bare_executemany,
    report,
    scratch_database,
    stored_rows,
    validate_and_append,
    workspace,
)
from sqlalchemy import bindparam, create_engine, inspect, make_url, text

from offerloop.sim.audience import Audience

LAG_METRIC = "offerloop_consumer_lag_events"


def consumer_lag(url: str) -> dict[str, float] | None:
    """The server's lag per consumer, or None when it exposes no lag gauge."""
    lag: dict[str, float] = {}
    for line in httpx.get(url + "/metrics", timeout=30).text.splitlines():
        if line.startswith(LAG_METRIC + "{") or line.startswith(LAG_METRIC + " "):
            name, _, value = line.rpartition(" ")
            lag[name[len(LAG_METRIC) :]] = float(value)
    return lag or None


def wait_processed(url: str, timeout_s: float) -> float | None:
    """perf_counter() when every consumer's lag is 0, or None if that did not happen in time."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        lag = consumer_lag(url)
        if lag is not None and all(v == 0 for v in lag.values()):
            return time.perf_counter()
        time.sleep(
            0.1
        )  # each scrape counts every partition's lag: polled at 10 Hz, not 50, it loads the server less
    return None


def prepare_database(url: str, reset: bool) -> None:
    """PostgreSQL: the bench needs an empty database (a fresh schema, as SQLite gets a fresh file)."""
    if make_url(url).get_backend_name() != "postgresql":
        return
    engine = create_engine(url)
    try:
        with engine.begin() as conn:
            if reset:
                conn.execute(text("DROP SCHEMA public CASCADE"))
                conn.execute(text("CREATE SCHEMA public"))
            elif (
                inspect(conn).has_table("events")
                and conn.execute(text("SELECT 1 FROM events LIMIT 1")).first()
            ):
                raise SystemExit(
                    f"{url} already holds events: give an empty database, or --reset to empty it"
                )
    finally:
        engine.dispose()


def send_http(
    port: int, write_key: str, bodies: list[bytes], connections: int
) -> tuple[float, list[float], dict[int, int]]:
    auth = "Basic " + base64.b64encode(f"{write_key}:".encode()).decode()
    headers = {"Authorization": auth, "Content-Type": "application/json"}
    latencies: list[float] = []
    statuses: dict[int, int] = {}
    lock = threading.Lock()
    cursor = iter(range(len(bodies)))

    def client() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        mine: list[float] = []
        codes: list[int] = []
        while True:
            with lock:
                i = next(cursor, None)
            if i is None:
                break
            t0 = time.perf_counter()
            conn.request("POST", "/v1/batch", body=bodies[i], headers=headers)
            resp = conn.getresponse()
            resp.read()
            mine.append(time.perf_counter() - t0)
            codes.append(resp.status)
        conn.close()
        with lock:
            latencies.extend(mine)
            for code in codes:
                statuses[code] = statuses.get(code, 0) + 1

    started = time.perf_counter()
    run_threads(client, connections)
    return started, latencies, statuses


def _segment_call(client: Any, msg: dict[str, Any]) -> tuple[bool, Any]:
    """One audience message as the matching analytics-python call (the SDK stamps sentAt itself)."""
    common = {
        "context": dict(msg.get("context") or {}),
        "timestamp": datetime.fromisoformat(msg["timestamp"]) if msg.get("timestamp") else None,
        "message_id": msg.get("messageId"),
    }
    who = {"user_id": msg.get("userId"), "anonymous_id": msg.get("anonymousId")}
    kind = msg.get("type")
    if kind == "track":
        result = client.track(event=msg.get("event"), properties=msg.get("properties") or {}, **who, **common)
    elif kind in ("page", "screen"):
        call = client.page if kind == "page" else client.screen
        result = call(name=msg.get("name"), properties=msg.get("properties") or {}, **who, **common)
    elif kind == "identify":
        result = client.identify(traits=msg.get("traits") or {}, **who, **common)
    elif kind == "group":
        result = client.group(group_id=msg.get("groupId"), traits=msg.get("traits") or {}, **who, **common)
    elif kind == "alias":
        result = client.alias(previous_id=msg.get("previousId"), user_id=msg.get("userId"), **common)
    else:
        raise AssertionError(f"unknown type {kind!r}")
    return result  # type: ignore[no-any-return]


def send_segment(
    url: str, write_key: str, messages: list[dict[str, Any]]
) -> tuple[float, int, int, list[Any]]:
    """(seconds, calls made, calls the SDK refused, upload errors) with the SDK's default batching."""
    from segment.analytics import Client

    logging.getLogger("segment").setLevel(logging.ERROR)  # "queue is full" is expected: we wait for room
    errors: list[Any] = []
    client = Client(write_key, host=url, on_error=lambda e, batch: errors.append(e))
    made = refused = 0
    started = time.perf_counter()
    for msg in messages:
        try:
            queued, prepared = _segment_call(client, msg)
        except (AssertionError, TypeError, ValueError, RuntimeError):
            refused += 1  # the SDK refuses what the audience sends malformed on purpose
            continue
        if not queued:
            client.queue.put(prepared)  # its queue holds 10,000: wait for room instead of dropping
        made += 1
    client.flush()
    elapsed = time.perf_counter() - started
    client.shutdown()
    return elapsed, made, refused, errors


def freshness(
    url: str, db_url: str, workspace_id: str, write_key: str, rate: float, seconds: float
) -> tuple[list[float], int]:
    """(e): paced load at ``rate`` events/s (batches of 100, 2 connections) for ``seconds``, with a probe
    every 20 ms: a track event of a new userId, acknowledged alone; returns each probe's seconds from its
    acknowledgement until its buyer's features were applied, and the probes never seen applied."""
    port = int(url.rsplit(":", 1)[1])
    auth = "Basic " + base64.b64encode(f"{write_key}:".encode()).decode()
    headers = {"Authorization": auth, "Content-Type": "application/json"}
    load_events = max(100, int(rate * seconds))
    batches = [
        orjson.dumps({"batch": b}) for b in Audience(buyers=2_000, events=load_events, seed=13).batches(100)
    ]
    stop = threading.Event()
    acked: dict[str, float] = {}
    applied: dict[str, float] = {}
    lock = threading.Lock()

    def paced(mine: list[bytes], every_s: float) -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        start = time.perf_counter()
        for i, body in enumerate(mine):
            wait = start + i * every_s - time.perf_counter()
            if wait > 0:
                time.sleep(wait)  # pacing: the load is a rate, not a flood
            conn.request("POST", "/v1/batch", body=body, headers=headers)
            conn.getresponse().read()
        conn.close()

    def probes() -> None:
        conn = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        start, i = time.perf_counter(), 0
        while not stop.is_set():
            wait = start + i * 0.02 - time.perf_counter()
            if wait > 0:
                time.sleep(wait)
            user = f"probe-{i}"
            body = orjson.dumps(
                {"batch": [{"type": "track", "event": "Probe", "userId": user, "messageId": user}]}
            )
            conn.request("POST", "/v1/batch", body=body, headers=headers)
            resp = conn.getresponse()
            answer = resp.read()
            # acknowledged and stored (a probe quarantined inside a 200 would never be applied: not counted)
            if resp.status == 200 and orjson.loads(answer).get("accepted") == 1:
                with lock:
                    acked[user] = time.perf_counter()
            i += 1
        conn.close()

    engine = create_engine(db_url)
    sql = text(
        "SELECT i.value FROM identities i JOIN buyer_features f ON f.buyer_id = i.buyer_id "
        "WHERE i.workspace_id = :ws AND i.kind = 'user_id' AND i.value IN :users AND f.applied_seq > 0"
    ).bindparams(bindparam("users", expanding=True))

    def poll() -> None:
        with engine.connect() as conn:
            while True:
                with lock:
                    pending = [u for u in acked if u not in applied]
                if not pending:
                    if stop.is_set():
                        return
                    time.sleep(0.001)
                    continue
                seen = conn.execute(sql, {"ws": workspace_id, "users": pending}).scalars().all()
                conn.rollback()  # a new snapshot for the next look
                now = time.perf_counter()
                with lock:
                    for user in seen:
                        applied[user] = now
                if stop.is_set() and time.perf_counter() > deadline:
                    return
                time.sleep(0.001)

    every = 100 / rate * 2  # seconds between batches on each of the two connections
    senders = [threading.Thread(target=paced, args=(batches[k::2], every)) for k in range(2)]
    prober, poller = threading.Thread(target=probes), threading.Thread(target=poll)
    deadline = float("inf")
    for t in (*senders, prober, poller):
        t.start()
    for t in senders:
        t.join()
    stop.set()
    prober.join()
    deadline = time.perf_counter() + 30
    poller.join()
    engine.dispose()
    lost = [u for u in acked if u not in applied]
    if lost:
        diagnose(db_url, workspace_id, lost)
    return [applied[u] - acked[u] for u in acked if u in applied], len(lost)


def diagnose(db_url: str, workspace_id: str, users: list[str]) -> None:
    """Print what the database holds for probes never seen applied: the stored event, the buyer's identity and
    features row, the checkpoints of the event's partition and any parked event (the server is still up)."""
    engine = create_engine(db_url)
    users = users[:5]
    queries = {
        "event": "SELECT id, message_id, buyer_id, part, received_at FROM events "
        "WHERE workspace_id = :ws AND message_id IN :users",
        "identity": "SELECT value, buyer_id FROM identities WHERE workspace_id = :ws AND value IN :users",
        "features": "SELECT f.buyer_id, f.applied_seq, f.rebuild, f.updated_at FROM buyer_features f "
        "JOIN identities i ON i.buyer_id = f.buyer_id WHERE i.workspace_id = :ws AND i.value IN :users",
        "parked": "SELECT consumer, seq, error FROM parked_events WHERE workspace_id = :ws",
        "checkpoints": "SELECT kind, key, state, payload, run_at, lease_until FROM jobs "
        "WHERE workspace_id = :ws AND kind LIKE 'consumer:%' ORDER BY key, kind",
    }
    with engine.connect() as conn:
        parts = set()
        for name, sql in queries.items():
            stmt = text(sql)
            if ":users" in sql:
                stmt = stmt.bindparams(bindparam("users", expanding=True))
            rows = conn.execute(stmt, {"ws": workspace_id, "users": users}).all()
            if name == "event":
                parts = {f"{workspace_id}:{r.part}" for r in rows} | {f"{workspace_id}:0"}
            if name == "checkpoints":
                rows = [r for r in rows if r.key in parts]
            for row in rows:
                print(f"never applied, {name}: {tuple(row)}")
        cursors = conn.execute(
            text("SELECT kind, key, cursor FROM jobs WHERE workspace_id = :ws AND kind LIKE 'consumer:%'"),
            {"ws": workspace_id},
        ).all()
        print(
            f"never applied, cursors: {sorted((r.key, r.kind, r.cursor) for r in cursors if r.key in parts)}"
        )
    engine.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--database-url", default=None, help="default: a fresh SQLite file")
    parser.add_argument("--reset", action="store_true", help="PostgreSQL: empty the database first")
    parser.add_argument("--events", type=int, default=200_000)
    parser.add_argument("--buyers", type=int, default=5_000)
    parser.add_argument("--connections", type=int, default=2)
    parser.add_argument("--workers", type=int, default=1, help="server worker processes")
    parser.add_argument("--segment-events", type=int, default=100_000, help="0 skips the Segment client run")
    parser.add_argument("--no-limit", action="store_true", help="skip the physical limit (c)")
    parser.add_argument("--processed-timeout", type=float, default=600)
    parser.add_argument(
        "--consumer-processes",
        type=int,
        default=0,
        help="run the consumers in this many `offerloop worker` processes instead of the server's threads",
    )
    parser.add_argument("--fresh-seconds", type=float, default=10, help="(e)'s duration; 0 skips it")
    args = parser.parse_args()

    tmp = tempfile.mkdtemp(prefix="offerloop-bench-")
    url = args.database_url or f"sqlite:///{Path(tmp) / 'bench.db'}"
    prepare_database(url, args.reset)
    ws = create_workspace(url, "bench")
    sdk_ws = create_workspace(url, "segment") if args.segment_events else None
    # Bodies are built before the clock starts: the figure is the server's, not the generator's.
    audience = Audience(buyers=args.buyers, events=args.events, seed=11)
    bodies = [orjson.dumps({"batch": b}) for b in audience.batches(100)]
    sdk_messages = (
        list(Audience(buyers=args.buyers, events=args.segment_events, seed=12).messages()) if sdk_ws else []
    )

    load_before = load()
    workers: list[subprocess.Popen[bytes]] = []
    if args.consumer_processes:
        os.environ["OFFERLOOP_PIPELINE_WORKERS"] = "0"  # the server acknowledges; the workers consume
        env = {
            **os.environ,
            "OFFERLOOP_DATABASE_URL": url,
            "OFFERLOOP_LOG_LEVEL": "WARNING",
            "OFFERLOOP_PIPELINE_WORKERS": "2",
        }
        workers = [
            subprocess.Popen(
                [sys.executable, "-m", "offerloop.cli.main", "worker", "--threads", "1"], env=env
            )
            for _ in range(args.consumer_processes)
        ]
    server = start_server(url, workers=args.workers)
    processed_at = None
    sdk = None
    try:
        measures_lag = consumer_lag(server.url) is not None
        cpu_start = tree_cpu_seconds(server.proc.pid) + sum(tree_cpu_seconds(w.pid) for w in workers)
        started, latencies, statuses = send_http(server.port, ws["write_key"], bodies, args.connections)
        acked_at = time.perf_counter()
        cpu_acked = tree_cpu_seconds(server.proc.pid) + sum(tree_cpu_seconds(w.pid) for w in workers)
        if measures_lag:
            processed_at = wait_processed(server.url, args.processed_timeout)
        cpu_done = tree_cpu_seconds(server.proc.pid) + sum(tree_cpu_seconds(w.pid) for w in workers)
        with httpx.Client(
            base_url=server.url, headers={"Authorization": f"Bearer {ws['secret_key']}"}
        ) as admin:
            stored = admin.get("/v1/overview", timeout=120).json()["events"]
        if sdk_ws is not None:
            seconds, made, refused, errors = send_segment(server.url, sdk_ws["write_key"], sdk_messages)
            auth = {"Authorization": f"Bearer {sdk_ws['secret_key']}"}
            sdk_stored = httpx.get(server.url + "/v1/overview", headers=auth, timeout=120).json()["events"]
            sdk = (seconds, made, refused, errors, sdk_stored)
        fresh = None
        if args.fresh_seconds and processed_at is not None:
            rate = args.events / (acked_at - started) / 2
            fresh_ws = create_workspace(url, "freshness")
            fresh_load = load()
            delays, lost = freshness(
                server.url, url, fresh_ws["id"], fresh_ws["write_key"], rate, args.fresh_seconds
            )
            fresh = (rate, delays, lost, fresh_load)
        rss = server.peak_rss_mib()
    finally:
        server.stop()
        for w in workers:
            w.terminate()
            w.wait(60)
        shutil.rmtree(tmp, ignore_errors=True)

    limit = None
    if not args.no_limit:
        with scratch_database(url, "bare") as engine:
            rows = stored_rows(bodies, workspace(engine))
            bare_s = bare_executemany(engine, rows, connections=args.connections)
        with scratch_database(url, "append") as engine:
            stages = validate_and_append(engine, bodies)
        limit = (sum(map(len, rows)), bare_s, stages)

    elapsed = acked_at - started
    backend = make_url(url).get_backend_name()
    print(f"machine: {machine()}")
    print(f"before: {load_before}; after: {load()}")
    print(
        f"backend: {backend}; server workers: {args.workers}; client connections: {args.connections}; "
        f"consumers in {f'{args.consumer_processes} worker process(es)' if args.consumer_processes else 'the server'}"
    )
    print(
        f"events: {args.events:,} in {len(bodies):,} batches of 100; HTTP statuses: {statuses}; stored {stored:,}"
    )
    print(f"(a) acknowledged: {args.events / elapsed:,.0f} events/s ({elapsed:.1f} s)")
    print(
        f"    batch latency: p50 {percentile(latencies, 50) * 1000:.1f} ms, p99 {percentile(latencies, 99) * 1000:.1f} ms, "
        f"max {max(latencies) * 1000:.1f} ms"
    )
    if not measures_lag:
        print(
            f"(b) processed: not measured — the server has no {LAG_METRIC} gauge (it processes before acknowledging)"
        )
    elif processed_at is None:
        print(
            f"(b) processed: consumers had not caught up {args.processed_timeout:.0f} s after the last acknowledgement"
        )
    else:
        took = processed_at - started
        print(
            f"(b) processed: {args.events / took:,.0f} events/s ({took:.1f} s from the first send to lag 0)"
        )
    # CPU, not wall: on a shared machine it is the figure other work moves least.
    print(
        f"    server CPU per event: {(cpu_acked - cpu_start) / args.events * 1e6:.0f} µs until the last "
        f"acknowledgement, {(cpu_done - cpu_start) / args.events * 1e6:.0f} µs until processed (+ worker processes)"
    )
    if limit is not None:
        rows_n, bare_s, stages = limit
        for line in report(args.events, rows_n, bare_s, stages):
            print("(c) " + line)
        print(
            f"(c) acknowledged over HTTP as a share of the physical limit: {(stored / elapsed) / (rows_n / bare_s):.0%}"
        )
    if sdk is not None:
        seconds, made, refused, errors, sdk_stored = sdk
        print(
            f"(d) Segment analytics-python, default batching: {made:,} calls ({refused:,} refused by the SDK), "
            f"{sdk_stored:,} stored in {seconds:.1f} s = {made / seconds:,.0f} events/s acknowledged; upload errors: {len(errors)}"
        )
    if fresh is not None:
        rate, delays, lost, fresh_load = fresh
        if delays:
            print(
                f"(e) acknowledgement -> features applied under {rate:,.0f} events/s (half of (a)), {len(delays)} probes: "
                f"p50 {percentile(delays, 50) * 1000:.1f} ms, p99 {percentile(delays, 99) * 1000:.1f} ms, "
                f"max {max(delays) * 1000:.1f} ms; never applied: {lost}; load before (e): {fresh_load}"
            )
        else:
            print(f"(e) no probe was applied ({lost} acknowledged)")
    print(f"server peak RSS: {rss:.0f} MiB")


if __name__ == "__main__":
    main()
