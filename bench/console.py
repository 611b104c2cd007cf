"""Console pages on a large workspace: server time of each page over HTTP, signed in as an owner.

    python bench/console.py                                   # SQLite: 1M buyers, 10M events
    python bench/console.py --buyers 100000 --events 1000000 --purchasers 20000
    python bench/console.py --database-url postgresql+psycopg://postgres@127.0.0.1:5432/bench_console

The store is bench/analytics.py's (buyers with personas and touchpoints, orders, imported orders and page
views in the log, decisions; written with bulk inserts), plus what the console's pages look at: an e-mail
identity for every buyer, ``--today`` events received today spread over a twentieth as many buyers, and
today's paid orders. Then `offerloop serve` (no consumer or job threads: the bench wrote the log) answers
each page ``--runs`` times after one untimed call, on one keep-alive connection with the session cookie.
Reported: p50 / p95 wall time per page, and the server's CPU seconds per page (user + system, from /proc:
the machine is shared, wall time includes waiting for a core). Target (issue 14): every page <= 300 ms.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import tempfile
import time
from collections.abc import Iterator
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import httpx
import numpy as np
from _common import load, machine, percentile, recreate_database, tree_cpu_seconds
from sqlalchemy import text

from analytics import DEMO, Writer, fill_state, generate
from offerloop.cli.process import ServerProcess
from offerloop.console import service as console_service
from offerloop.db import migrate
from offerloop.db.engine import make_engine
from offerloop.db.uow import Database
from offerloop.jobs import runner
from offerloop.offers import service as offers_service
from offerloop.reports import service as reports_service
from offerloop.reports import tasks as reports_tasks
from offerloop.reports.schemas import (
    AttributionParams,
    CohortParams,
    EvaluationParams,
    LTVParams,
    PersonaTimelineParams,
    VelocityParams,
)
from offerloop.worker import registry
from offerloop.workspaces import service as workspace_service

CHUNK = 200_000
PASSWORD = "bench console password"


def console_data(engine: Any, ws: str, args: argparse.Namespace) -> dict[str, int]:
    """What the console reads beyond bench/analytics.py's store: e-mails, today's events and orders."""
    rng = np.random.default_rng(args.seed + 1)
    w = Writer(engine)
    n = args.buyers
    now = datetime.now(UTC)
    stamp = now.strftime("%Y-%m-%d %H:%M:%S.%f")

    def chunked(total: int, make: Any) -> Iterator[list[tuple[Any, ...]]]:
        for lo in range(0, total, CHUNK):
            yield make(lo, min(total, lo + CHUNK))

    emails = chunked(
        n, lambda lo, hi: [(ws, f"b{i:07d}", "email", f"b{i}@example.com", stamp) for i in range(lo, hi)]
    )
    out = {
        "identities": w.write(
            "identities", ("workspace_id", "buyer_id", "kind", "value", "created_at"), emails
        )
    }
    active = rng.choice(n, size=max(1, args.today // 20), replace=False)
    columns = ("workspace_id", "message_id", "type", "name", "buyer_id", "timestamp", "received_at", "properties",
               "context", "weight", "confidence", "high_signal", "suppressed")  # fmt: skip

    def today(lo: int, hi: int) -> list[tuple[Any, ...]]:
        who = rng.choice(active, hi - lo)
        return [(ws, f"today-{lo + k}", "track", "Page Viewed", f"b{who[k]:07d}", stamp, stamp, None, None, 1.0, 1.0,
                 False, False) for k in range(hi - lo)]  # fmt: skip

    out["events_today"] = w.write("events", columns, chunked(args.today, today))
    payers = active[: max(1, active.size // 10)]
    out["orders_today"] = w.write(
        "orders", ("id", "workspace_id", "buyer_id", "status", "provider", "currency", "subtotal", "discount", "tax",
                   "total", "refunded", "tax_percent", "platform_fee_percent", "lines", "created_at", "paid_at",
                   "updated_at"),
        chunked(payers.size, lambda lo, hi: [
            (f"ord_today_{j}", ws, f"b{payers[j]:07d}", "paid", "manual", "USD", 4900, 0, 0, 4900, 0, "0", "0", "[]",
             stamp, stamp, stamp) for j in range(lo, hi)]),
    )  # fmt: skip
    # A running offerloop has applied its log (its consumers keep up): mark every generated event processed,
    # as the migration that introduced the log did, so a page's catch-up finds nothing pending.
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM pipeline_origin WHERE workspace_id = :w"), {"w": ws})
        conn.execute(
            text("INSERT INTO pipeline_origin (workspace_id, seq, partitions) "
                 "SELECT workspace_id, max(id), :p FROM events WHERE workspace_id = :w GROUP BY workspace_id"),
            {"w": ws, "p": 8 if w.pg else 1},
        )  # fmt: skip
        conn.execute(text("ANALYZE"))
    if w.pg:  # what autovacuum does after bulk inserts: the visibility map an index-only scan needs
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text("VACUUM ANALYZE events"))
            conn.execute(text("VACUUM ANALYZE identities"))
            conn.execute(text("VACUUM ANALYZE orders"))
    return out


def busiest_buyer(engine: Any, ws: str) -> tuple[str, int]:
    with engine.connect() as conn:
        row = conn.execute(
            text("SELECT buyer_id, count(*) AS n FROM events WHERE workspace_id = :w AND buyer_id IN "
                 "(SELECT buyer_id FROM events WHERE workspace_id = :w ORDER BY id DESC LIMIT 2000) "
                 "GROUP BY buyer_id ORDER BY n DESC LIMIT 1"), {"w": ws},
        ).one()  # fmt: skip
    return str(row[0]), int(row[1])


LTV_QUERY = "fit=1&calibration_end=2025-12-31&time_unit=week"


def first_view_and_job(
    db: Database, client: httpx.Client, ws: str, path: str, params: Any
) -> tuple[float, float, float]:
    """The report's first view (no snapshot: queued), then its job run here: (first view s, job wall s, CPU s)."""
    with db.write() as session:
        session.execute(text("DELETE FROM report_snapshots WHERE workspace_id = :w"), {"w": ws})
        # an earlier run's leftovers: the job run below must be this report's
        session.execute(
            text("DELETE FROM jobs WHERE workspace_id = :w AND kind = :k"),
            {"w": ws, "k": reports_service.JOB_KIND},
        )
    t = time.perf_counter()
    r = client.get(path)
    first = time.perf_counter() - t
    assert r.status_code == 200 and 'data-report="queued"' in r.text, (path, r.status_code, r.text[-1000:])
    t, c = time.perf_counter(), time.process_time()
    ran = runner.run_due(db, owner="bench", only=(reports_service.JOB_KIND,), limit=1)
    wall, cpu = time.perf_counter() - t, time.process_time() - c
    assert [x.status for x in ran] == ["done"], ran
    print(f"{path}: first view {first * 1000:.1f} ms (queued); computed in {wall:.2f} s wall, {cpu:.2f} s CPU",
          flush=True)  # fmt: skip
    return first, wall, cpu


def sign_in(client: httpx.Client, email: str) -> None:
    form = client.get("/console/login").text
    token = re.search(r'name="login_token" value="([^"]+)"', form)
    assert token is not None
    r = client.post(
        "/console/login", data={"email": email, "password": PASSWORD, "login_token": token.group(1)}
    )
    assert r.status_code == 303, r.text[:500]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--buyers", type=int, default=1_000_000)
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument("--purchasers", type=int, default=200_000)
    parser.add_argument("--decisions", type=int, default=100_000)
    parser.add_argument("--today", type=int, default=200_000, help="events received today")
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--database-url", default=None, help="PostgreSQL: a database this bench may drop")
    parser.add_argument("--sqlite-path", default=None, help="SQLite: keep the database in this file")
    parser.add_argument("--reuse", action="store_true", help="measure what a previous run left (same URL)")
    parser.add_argument(
        "--adopt", action="store_true",
        help="start from the store bench/analytics.py left at this URL (its state rebuilt): add the console's data",
    )  # fmt: skip
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(dir=os.environ.get("TMPDIR")) as tmp:
        url = args.database_url or f"sqlite:///{args.sqlite_path or Path(tmp) / 'console.db'}"
        if url.startswith("postgresql") and not args.reuse:
            recreate_database(url)
        engine = make_engine(url)
        migrate.upgrade(engine)
        db = Database(engine)
        email = "owner@bench.example"
        if args.adopt:
            with engine.begin() as conn:
                ws_id = str(
                    conn.execute(text("SELECT id FROM workspaces WHERE name = 'analytics bench'")).scalar()
                )
                conn.execute(text("UPDATE workspaces SET name = 'console bench' WHERE id = :w"), {"w": ws_id})
            with db.write() as session:
                console_service.create_user(session=session, workspace_id=ws_id, email=email, role="owner",
                                            password=PASSWORD)  # fmt: skip
            t = time.perf_counter()
            added = console_data(engine, ws_id, args)
            print(f"added in {time.perf_counter() - t:.1f} s: {json.dumps(added)}", flush=True)
        elif args.reuse:
            with engine.connect() as conn:
                ws_id = str(
                    conn.execute(text("SELECT id FROM workspaces WHERE name = 'console bench'")).scalar()
                )
        else:
            with db.write() as session:
                ws = workspace_service.create_workspace(session=session, name="console bench")
                offers_service.load_catalog(
                    session=session, workspace_id=ws.id, text=(DEMO / "offers.yaml").read_text()
                )
                console_service.create_user(session=session, workspace_id=ws.id, email=email, role="owner",
                                            password=PASSWORD)  # fmt: skip
            ws_id = ws.id
            t = time.perf_counter()
            sizes: dict[str, Any] = generate(engine, ws_id, args)
            sizes.update(console_data(engine, ws_id, args))
            print(f"generated in {time.perf_counter() - t:.1f} s: {json.dumps(sizes)}", flush=True)
        filled = fill_state(db, ws_id)  # the analytics consumer's state (a no-op when it is there)
        if filled:
            print(f"analytics state: {json.dumps(filled)}", flush=True)
        buyer, buyer_events = busiest_buyer(engine, ws_id)
        with engine.connect() as conn:
            order_id = conn.execute(
                text("SELECT id FROM orders WHERE workspace_id = :w ORDER BY created_at DESC LIMIT 1"),
                {"w": ws_id},
            ).scalar()

        os.environ["OFFERLOOP_PIPELINE_WORKERS"] = "0"  # the bench wrote the log: nothing to process
        os.environ["OFFERLOOP_WORKER_THREADS"] = "0"
        os.environ["OFFERLOOP_HEALTH_METRICS_EVERY_S"] = "0"
        server = ServerProcess(url, log_path=Path(tmp) / "server.log")
        server.start(timeout_s=300)
        pages = {
            "home": ("/console", 200),
            "home alerts (htmx fragment)": ("/console/home/alerts", 200),
            "buyer search by e-mail": (f"/console/buyers?q=b{int(buyer[1:])}@example.com", 303),
            f"buyer page ({buyer_events} events, 50 shown)": (f"/console/buyers/{buyer}", 200),
            "buyer page, older events": (f"/console/buyers/{buyer}?before=", 200),
            "personas (12 weeks; velocity is a fragment)": ("/console/personas", 200),
            "personas (90 days)": ("/console/personas?bucket=day&periods=90", 200),
            "decisions (the evaluation is a fragment)": ("/console/decisions", 200),
            "journeys": ("/console/journeys", 200),
            "settings": ("/console/settings", 200),
            "personas velocity (htmx fragment)": ("/console/personas/velocity", 200),
            "decisions evaluation (htmx fragment)": ("/console/decisions/evaluation", 200),
            "assembly review queue": ("/console/assembly", 200),
            "offers": ("/console/offers", 200),
            "orders": ("/console/orders", 200),
            "subscriptions": ("/console/subscriptions", 200),
            "ledger": ("/console/ledger", 200),
            "analytics: attribution (Markov, by channel and post)": ("/console/analytics", 200),
            "analytics: cohorts by month": ("/console/analytics/cohorts", 200),
            "analytics: experiments": ("/console/analytics/experiments", 200),
            "analytics: LTV fit (calibration to 2025-12-31)": (f"/console/analytics/ltv?{LTV_QUERY}", 200),
            "one order": (f"/console/orders/{order_id}", 200),
            "drops": ("/console/offers/drops", 200),
        }
        # The heavy reports are shown from their snapshots (reports domain): before its timed views, each one's
        # first view (nothing computed yet: the page says it is queued) is timed once, then the job that
        # computes it runs here, as a worker would (wall and CPU), then the views show its snapshot.
        reports = {
            "personas (12 weeks; velocity is a fragment)": PersonaTimelineParams(),
            "personas (90 days)": PersonaTimelineParams(bucket="day", periods=90),
            "personas velocity (htmx fragment)": VelocityParams(),
            "decisions evaluation (htmx fragment)": EvaluationParams(),
            "analytics: attribution (Markov, by channel and post)": AttributionParams(),
            "analytics: cohorts by month": CohortParams(),
            "analytics: LTV fit (calibration to 2025-12-31)": LTVParams(calibration_end=date(2025, 12, 31)),
        }
        assert reports_tasks.refresh  # registers the job kind
        registry.load()  # the event consumers a report's catch-up looks at, as in a worker process
        computed: dict[str, tuple[float, float, float]] = {}
        results: dict[str, tuple[float, float, float, int]] = {}
        try:
            with httpx.Client(base_url=server.url, timeout=120, follow_redirects=False) as client:
                sign_in(client, email)
                first = client.get(f"/console/buyers/{buyer}").text
                older = re.search(r'\?before=([^"]+)"', first)
                pages["buyer page, older events"] = (
                    f"/console/buyers/{buyer}?before={older.group(1) if older else ''}", 200,
                )  # fmt: skip
                for label, (path, status) in pages.items():
                    if label in reports:
                        computed[label] = first_view_and_job(db, client, ws_id, path, reports[label])
                    r = client.get(path)
                    assert r.status_code == status, (path, r.status_code, r.text[:300])
                    assert label not in reports or 'data-report="snapshot"' in r.text, (label, r.text[-2000:])
                    times: list[float] = []
                    cpu0 = tree_cpu_seconds(server.proc.pid)
                    for _ in range(args.runs):
                        t = time.perf_counter()
                        client.get(path)
                        times.append(time.perf_counter() - t)
                    cpu = (tree_cpu_seconds(server.proc.pid) - cpu0) / args.runs
                    results[label] = (percentile(times, 50), percentile(times, 95), cpu, len(times))
                    print(f"{label}: p50 {results[label][0] * 1000:.1f} ms, p95 {results[label][1] * 1000:.1f} ms, "
                          f"server CPU {cpu * 1000:.1f} ms/page ({load()})", flush=True)  # fmt: skip
        finally:
            server.stop()

    print()
    print(f"{'PostgreSQL' if url.startswith('postgresql') else 'SQLite'}: {machine()}; {load()}")
    print("| page | p50 | p95 (runs) | server CPU / page |")
    print("|---|---:|---:|---:|")
    for label, (p50, p95, cpu, runs) in results.items():
        print(f"| {label} | {p50 * 1000:.1f} ms | {p95 * 1000:.1f} ms ({runs}) | {cpu * 1000:.1f} ms |")
    print()
    print("| report | first view (queued) | background computation: wall / CPU |")
    print("|---|---:|---:|")
    for label, (first, wall, cpu) in computed.items():
        print(f"| {label} | {first * 1000:.1f} ms | {wall:.2f} s / {cpu:.2f} s |")


if __name__ == "__main__":
    main()
