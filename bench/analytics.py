"""Every customer-analytics endpoint on a large workspace: p95 of 20 calls, in-process and over HTTP.

    python bench/analytics.py                                  # SQLite: 1M buyers, 10M events
    python bench/analytics.py --buyers 100000 --events 1000000 --purchasers 20000
    python bench/analytics.py --database-url postgresql+psycopg://postgres@127.0.0.1:5432/bench_analytics

The data is written straight into the tables with bulk inserts (executemany on SQLite, COPY on PostgreSQL),
seeded: ``--buyers`` buyers, each with a current persona and a first assignment (a fifth a second one),
four fifths with a first touchpoint; ``--events`` events in the log, of which the imported orders
(``Order Completed`` from ``offerloop import orders``); ``--purchasers`` buyers with 1 + Geometric orders
(mean 2) spread over 2024-2026, 70% as paid checkout orders (2% refunded) and 30% imported; 100k
decisions that showed the demo catalog's offers. The analytics state the ``analytics`` consumer keeps
(purchases, buyer summaries, first persona assignments) is then filled by ``analytics.service.rebuild`` — the
consumer's own per-buyer refresh, over every buyer, timed (wall and CPU). Then each endpoint's service call
runs 20 times in process (after one untimed warm-up call; wall and this process's CPU time), and each
endpoint 20 times over HTTP against ``offerloop serve`` (no consumer threads: the bench wrote the log
directly). Target (issue 13): p95 <= 1 s at 1M buyers / 10M events on SQLite and PostgreSQL.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import tempfile
import time
from collections.abc import Callable, Iterator, Sequence
from datetime import date
from pathlib import Path
from typing import Any

import httpx
import numpy as np
from _common import load, machine, percentile, recreate_database, tree_cpu_seconds
from sqlalchemy import Engine, create_engine, text

from offerloop.analytics import service, velocity
from offerloop.cli.process import ServerProcess
from offerloop.db import migrate
from offerloop.db.engine import make_engine
from offerloop.db.uow import Database
from offerloop.offers import service as offers_service
from offerloop.workspaces import service as workspace_service

DEMO = Path(__file__).resolve().parents[1] / "examples" / "demo"
CHUNK = 200_000
START = np.datetime64("2024-01-01T00:00:00", "us")
SPAN_US = int(np.timedelta64(912, "D") / np.timedelta64(1, "us"))  # 2024-01-01 .. 2026-07-01
PERSONAS = (
    "lurker_researcher",
    "deal_seeker",
    "subscription_loyalist",
    "early_adopter_superfan",
    "gifting_guest",
)
CHANNELS = ("social", "email", "search", "referral", "direct", "paid")
NAMES = ("Page Viewed", "Product Viewed", "Lesson Started", "Email Opened", "Video Watched")
OFFERS = ("pricing-playbook", "launch-workbook", "sales-page-teardown", "membership-monthly", "bundle-gift")


def stamps(us: np.ndarray) -> list[str]:
    """Microseconds since START as the text SQLite holds (``YYYY-MM-DD HH:MM:SS.ffffff``)."""
    text_ = np.datetime_as_string(START + us.astype("timedelta64[us]"), unit="us")
    return [s.replace("T", " ") for s in text_.tolist()]


class Writer:
    """Bulk rows into one table: executemany on SQLite, COPY on PostgreSQL."""

    def __init__(self, engine: Engine) -> None:
        self.engine = engine
        self.pg = engine.dialect.name == "postgresql"

    def write(self, table: str, columns: Sequence[str], rows: Iterator[list[tuple[Any, ...]]]) -> int:
        n = 0
        raw = self.engine.raw_connection()
        try:
            cur = raw.cursor()
            if self.pg:
                for chunk in rows:
                    buf = io.StringIO()
                    for row in chunk:
                        buf.write("\t".join(_pg(v) for v in row))
                        buf.write("\n")
                    with cur.copy(f"COPY {table} ({', '.join(columns)}) FROM STDIN") as copy:  # type: ignore[attr-defined]
                        copy.write(buf.getvalue())
                    n += len(chunk)
                    raw.commit()
            else:
                cur.execute("PRAGMA synchronous=OFF")
                # a bulk load is faster into a table without its secondary indexes, built once at the end
                indexes = cur.execute(
                    "SELECT name, sql FROM sqlite_master WHERE type = 'index' AND tbl_name = ? AND sql IS NOT NULL",
                    (table,),
                ).fetchall()
                for name, _ in indexes:
                    cur.execute(f"DROP INDEX {name}")
                marks = ", ".join("?" for _ in columns)
                sql = f"INSERT INTO {table} ({', '.join(columns)}) VALUES ({marks})"
                for chunk in rows:
                    # the engine's connections leave transactions to SQLAlchemy (BEGIN is explicit): without
                    # one, every row would be its own transaction
                    cur.execute("BEGIN")
                    cur.executemany(sql, chunk)
                    cur.execute("COMMIT")
                    n += len(chunk)
                for _, sql in indexes:
                    cur.execute(sql)
        finally:
            raw.close()
        return n


def _pg(value: Any) -> str:
    if value is None:
        return "\\N"
    if isinstance(value, bool):
        return "t" if value else "f"
    if isinstance(value, str):
        if len(value) == 26 and value[4] == "-" and value[10] == " ":
            return value + "+00"
        return value.replace("\\", "\\\\").replace("\t", "\\t").replace("\n", "\\n")
    return str(value)


def generate(engine: Engine, ws: str, args: argparse.Namespace) -> dict[str, float]:
    rng = np.random.default_rng(args.seed)
    w = Writer(engine)
    n, out = args.buyers, {}
    ids = [f"b{i:07d}" for i in range(n)]
    now = "2026-07-01 00:00:00.000000"

    def chunks(
        total: int, make: Callable[[int, int], list[tuple[Any, ...]]]
    ) -> Iterator[list[tuple[Any, ...]]]:
        for lo in range(0, total, CHUNK):
            yield make(lo, min(total, lo + CHUNK))

    t = time.perf_counter()
    w.write("buyers", ("id", "workspace_id", "user_id", "created_at", "first_seen_at", "last_seen_at", "traits",
                       "trait_times", "event_count"),
            chunks(n, lambda lo, hi: [(ids[i], ws, ids[i], now, now, now, "{}", "{}", 0) for i in range(lo, hi)]))  # fmt: skip
    persona = rng.integers(0, len(PERSONAS), n)
    assigned = rng.integers(0, SPAN_US, n)
    second = rng.random(n) < 0.2
    w.write("buyer_personas", ("buyer_id", "workspace_id", "persona", "confidence", "posterior", "reasons",
                               "templates_version", "updated_at"),
            chunks(n, lambda lo, hi: [(ids[i], ws, PERSONAS[persona[i]], 0.8, "{}", "[]", 1, now)
                                      for i in range(lo, hi)]))  # fmt: skip
    first_at = stamps(assigned)
    later_at = stamps(
        np.minimum(assigned + rng.integers(86_400_000_000, 90 * 86_400_000_000, n), SPAN_US - 1)
    )

    def changes(lo: int, hi: int) -> list[tuple[Any, ...]]:
        rows: list[tuple[Any, ...]] = []
        for i in range(lo, hi):
            rows.append((ws, ids[i], None, PERSONAS[persona[i]], 0.8, first_at[i]))
            if second[i]:
                rows.append(
                    (ws, ids[i], PERSONAS[persona[i]], PERSONAS[(persona[i] + 1) % 5], 0.7, later_at[i])
                )
        return rows

    out["persona_history"] = w.write(
        "persona_history", ("workspace_id", "buyer_id", "from_persona", "to_persona", "confidence", "at"),
        chunks(n, changes),
    )  # fmt: skip
    touched = rng.random(n) < 0.8
    channel = rng.integers(0, len(CHANNELS), n)
    touch_at = stamps(rng.integers(0, SPAN_US, n))
    out["touchpoints"] = w.write(
        "touchpoints", ("workspace_id", "buyer_id", "event_id", "occurred_at", "channel", "flags"),
        chunks(n, lambda lo, hi: [(ws, ids[i], i + 1, touch_at[i], CHANNELS[channel[i]], "[]")
                                  for i in range(lo, hi) if touched[i]]),
    )  # fmt: skip
    out["buyers"] = n
    out["s_people"] = time.perf_counter() - t

    # purchases: purchasers x (1 + Geometric(0.5)) orders, gaps Exponential(60 days)
    t = time.perf_counter()
    buyers = rng.choice(n, size=args.purchasers, replace=False)
    counts = rng.geometric(0.5, size=args.purchasers)
    owner = np.repeat(buyers, counts)
    firsts = np.repeat(rng.integers(0, SPAN_US, args.purchasers), counts)
    gaps = (rng.exponential(60 * 86_400e6, owner.size)).astype(np.int64)
    starts = np.repeat(np.cumsum(counts) - counts, counts)
    rank = np.arange(owner.size) - starts
    gaps[rank == 0] = 0
    cum = np.cumsum(gaps)
    at_us = firsts + cum - np.repeat(cum[np.cumsum(counts) - counts], counts)
    keep = at_us < SPAN_US
    owner, at_us = owner[keep], at_us[keep]
    amount = rng.choice(np.array([0, 900, 1900, 2700, 4900, 9900]), owner.size)
    imported = rng.random(owner.size) < 0.3
    refunded = rng.random(owner.size) < 0.02
    when = stamps(at_us)
    out["orders_total"] = int(owner.size)
    out["purchasers"] = int(np.unique(owner).size)
    checkout = np.flatnonzero(~imported)
    out["orders"] = w.write(
        "orders", ("id", "workspace_id", "buyer_id", "status", "provider", "currency", "subtotal", "discount", "tax",
                   "total", "refunded", "tax_percent", "platform_fee_percent", "lines", "created_at", "paid_at",
                   "updated_at"),
        chunks(checkout.size, lambda lo, hi: [
            (f"ord_{j}", ws, ids[owner[j]], "refunded" if refunded[j] else "paid", "manual", "USD", int(amount[j]), 0,
             0, int(amount[j]), int(amount[j]) if refunded[j] else 0, "0", "0", "[]", when[j], when[j], when[j])
            for j in checkout[lo:hi]]),
    )  # fmt: skip
    imports = np.flatnonzero(imported)
    out["s_orders"] = time.perf_counter() - t

    # the log: the imported orders, then page views etc. up to --events
    t = time.perf_counter()
    context = json.dumps({"offerloop": {"origin": "creator"}})
    columns = ("workspace_id", "message_id", "type", "name", "buyer_id", "timestamp", "received_at", "properties",
               "context", "weight", "confidence", "high_signal", "suppressed")  # fmt: skip

    def order_events(lo: int, hi: int) -> list[tuple[Any, ...]]:
        rows = []
        for j in imports[lo:hi]:
            props = json.dumps({"order_id": f"imp_{j}", "total_minor": int(amount[j]), "currency": "USD"})
            name = "Order Refunded" if refunded[j] else "Order Completed"
            rows.append((ws, f"import-{j}", "track", name, ids[owner[j]], when[j], now, props, context, 1.0, 1.0,
                         False, False))  # fmt: skip
        return rows

    logged = w.write("events", columns, chunks(imports.size, order_events))
    rest = max(args.events - logged, 0)

    def page_events(lo: int, hi: int) -> list[tuple[Any, ...]]:
        who = rng.integers(0, n, hi - lo)
        what = rng.integers(0, len(NAMES), hi - lo)
        ts = stamps(rng.integers(0, SPAN_US, hi - lo))
        return [(ws, f"m{lo + k}", "track", NAMES[what[k]], ids[who[k]], ts[k], now, None, None, 1.0, 1.0, False,
                 False) for k in range(hi - lo)]  # fmt: skip

    out["events"] = logged + w.write("events", columns, chunks(rest, page_events))
    out["s_events"] = time.perf_counter() - t

    t = time.perf_counter()
    out["decisions"] = w.write(
        "decisions", ("id", "workspace_id", "buyer_id", "placement", "created_at", "policy", "holdout", "model_version",
                      "context", "candidates", "items", "excluded", "chosen_key", "chosen_index", "propensity",
                      "outcome_event", "window_ends_at", "reward"),
        chunks(args.decisions, lambda lo, hi: [
            (f"dec_{k}", ws, ids[k % n], "home", now, "model", False, 1, "{}", "[]", "[]", "[]",
             OFFERS[k % len(OFFERS)], 0, 0.5, "Order Completed", now, float(rng.random() < 0.05 + 0.01 * (k % 5)))
            for k in range(lo, hi)]),
    )  # fmt: skip
    out["s_decisions"] = time.perf_counter() - t
    t = time.perf_counter()
    with engine.begin() as conn:
        conn.execute(text("ANALYZE"))
    out["s_analyze"] = time.perf_counter() - t
    return out


def calls(ws: str) -> dict[str, tuple[Callable[[Any], Any], str, dict[str, str]]]:
    """Each endpoint: its in-process service call and its HTTP path and query."""
    return {
        "summary (2025, USD)": (
            lambda s: service.summary(session=s, workspace_id=ws, start=_dt("2025-01-01"), end=_dt("2026-01-01"),
                                      currency="USD"),
            "/v1/analytics/summary", {"start": "2025-01-01", "end": "2026-01-01", "currency": "USD"}),
        "retention 30,60,90": (
            lambda s: service.retention(session=s, workspace_id=ws, windows=[30, 60, 90]),
            "/v1/analytics/retention", {"days": "30,60,90"}),
        "retention vs holdout": (
            lambda s: service.holdout_retention(session=s, workspace_id=ws, windows=[30, 60, 90], holdout_share=0.1),
            "/v1/analytics/retention/holdout", {"days": "30,60,90"}),
        "cohorts by month, 12": (
            lambda s: service.cohorts(session=s, workspace_id=ws, by="first_purchase_month", periods=12),
            "/v1/analytics/cohorts", {"by": "first_purchase_month", "periods": "12"}),
        "cohorts by first touch": (
            lambda s: service.cohorts(session=s, workspace_id=ws, by="first_touch_channel", periods=12),
            "/v1/analytics/cohorts", {"by": "first_touch_channel", "periods": "12"}),
        "cohorts by persona": (
            lambda s: service.cohorts(session=s, workspace_id=ws, by="persona", periods=12),
            "/v1/analytics/cohorts", {"by": "persona", "periods": "12"}),
        "velocity": (
            lambda s: velocity.velocity(session=s, workspace_id=ws, as_of=date(2026, 7, 1)),
            "/v1/analytics/velocity", {"as_of": "2026-07-01"}),
    }  # fmt: skip


def _dt(text_: str) -> Any:
    from datetime import UTC, datetime

    return datetime.fromisoformat(text_).replace(tzinfo=UTC)


def _reusable(url: str) -> str | None:
    """The bench workspace of a database a previous run generated, if there is one."""
    try:
        engine = create_engine(url)
        with engine.connect() as conn:
            found = conn.execute(text("SELECT id FROM workspaces WHERE name = 'analytics bench'")).scalar()
        engine.dispose()
    except Exception:  # no such database or no schema yet: generate
        return None
    return str(found) if found else None


def timed(fn: Callable[[], Any], runs: int, budget_s: float, cpu: list[float] | None = None) -> list[float]:
    """Up to ``runs`` timings, fewer when they would take more than ``budget_s`` (the count is reported);
    each call's CPU time of this process is appended to ``cpu`` when given."""
    fn()  # one warm-up call, not timed (imports, the server's first connection)
    out: list[float] = []
    for _ in range(runs):
        if sum(out) > budget_s:
            break
        t, c = time.perf_counter(), time.process_time()
        fn()
        out.append(time.perf_counter() - t)
        if cpu is not None:
            cpu.append(time.process_time() - c)
    return out


def engine_of(db: Database) -> Engine:
    assert isinstance(db.bind, Engine)
    return db.bind


def fill_state(db: Database, ws: str) -> dict[str, float]:
    """The analytics state of the workspace, by the consumer's own refresh over every buyer (the backfill)."""
    with db.read() as session:
        have = session.execute(
            text("SELECT count(*) FROM analytics_buyers WHERE workspace_id = :w"), {"w": ws}
        )
        if int(have.scalar() or 0):
            return {}
    t, c = time.perf_counter(), time.process_time()
    with db.write() as session:
        buyers = service.rebuild(session=session, workspace_id=ws)
    out = {
        "rebuild_buyers": buyers,
        "s_rebuild": time.perf_counter() - t,
        "cpu_s_rebuild": time.process_time() - c,
    }
    engine = engine_of(db)
    if engine.dialect.name == "postgresql":
        # what autovacuum does after a bulk insert (PostgreSQL >= 13 vacuums on inserts too): the visibility map
        # that lets the analytics reads be index-only scans
        with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            for table in ("analytics_purchases", "analytics_buyers", "analytics_persona_firsts",
                          "analytics_persona_purchases"):  # fmt: skip
                conn.execute(text(f"VACUUM (ANALYZE) {table}"))
    with engine.begin() as conn:
        conn.execute(text("ANALYZE"))
        for table in ("analytics_purchases", "analytics_buyers", "analytics_persona_firsts"):
            out[table] = int(
                conn.execute(
                    text(f"SELECT count(*) FROM {table} WHERE workspace_id = :w"), {"w": ws}
                ).scalar()
                or 0
            )
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--buyers", type=int, default=1_000_000)
    parser.add_argument("--events", type=int, default=10_000_000)
    parser.add_argument("--purchasers", type=int, default=200_000)
    parser.add_argument("--decisions", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--database-url", default=None, help="PostgreSQL: a database this bench may drop")
    parser.add_argument("--budget", type=float, default=90.0, help="seconds of calls per endpoint, at most")
    parser.add_argument("--no-http", action="store_true")
    parser.add_argument(
        "--reuse", action="store_true", help="measure the data a previous run left (--sqlite-path)"
    )
    parser.add_argument("--sqlite-path", default=None, help="SQLite: keep the database in this file")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory(dir=os.environ.get("TMPDIR")) as tmp:
        url = args.database_url or f"sqlite:///{args.sqlite_path or Path(tmp) / 'analytics.db'}"
        reused = _reusable(url) if args.reuse else None
        if reused is None and url.startswith("postgresql"):
            recreate_database(url)
        engine = make_engine(url)
        migrate.upgrade(engine)
        db = Database(engine)
        if reused is not None:
            with db.write() as session:
                _, secret = workspace_service.create_key(session=session, workspace_id=reused, kind="secret")
            ws_id = reused
            print(f"reusing the data of workspace {ws_id} in {url}", flush=True)
        else:
            with db.write() as session:
                ws = workspace_service.create_workspace(session=session, name="analytics bench")
                offers_service.load_catalog(
                    session=session, workspace_id=ws.id, text=(DEMO / "offers.yaml").read_text()
                )
            ws_id, secret = ws.id, ws.secret_key
            t = time.perf_counter()
            sizes = generate(engine, ws_id, args)
            print(f"generated in {time.perf_counter() - t:.1f} s: {json.dumps(sizes)}", flush=True)
        state = fill_state(db, ws_id)
        if state:
            print(f"analytics state rebuilt ({load()}): {json.dumps(state)}", flush=True)

        results: dict[str, dict[str, float]] = {}
        for label, (fn, _, _) in calls(ws_id).items():

            def once(fn: Callable[[Any], Any] = fn) -> None:
                with db.read() as session:
                    fn(session)

            cpu: list[float] = []
            times = timed(once, args.runs, args.budget, cpu)
            results[label] = {
                "in_process_p95": percentile(times, 95),
                "in_process_p50": percentile(times, 50),
                "cpu_p50": percentile(cpu, 50),
                "runs": len(times),
            }
            print(f"{label}: in-process p50 {percentile(times, 50):.3f} s, p95 {percentile(times, 95):.3f} s, "
                  f"CPU p50 {percentile(cpu, 50):.3f} s ({load()})", flush=True)  # fmt: skip
        engine.dispose()

        if not args.no_http:
            os.environ["OFFERLOOP_PIPELINE_WORKERS"] = "0"  # the bench wrote the log: nothing to process
            os.environ["OFFERLOOP_WORKER_THREADS"] = "0"
            server = ServerProcess(url, log_path=Path(tmp) / "server.log")
            server.start(timeout_s=300)
            try:
                headers = {"Authorization": f"Bearer {secret}"}
                with httpx.Client(base_url=server.url, headers=headers, timeout=120) as client:
                    for label, (_, path, params) in calls(ws_id).items():

                        def get(path: str = path, params: dict[str, str] = params) -> None:
                            r = client.get(path, params=params)
                            r.raise_for_status()

                        assert server.proc is not None
                        before = tree_cpu_seconds(server.proc.pid)
                        times = timed(get, args.runs, args.budget)
                        # the server's CPU (it runs the SQL on SQLite; PostgreSQL's backend is not counted)
                        server_cpu = (tree_cpu_seconds(server.proc.pid) - before) / (len(times) + 1)
                        results[label]["http_p95"] = percentile(times, 95)
                        results[label]["http_runs"] = len(times)
                        results[label]["server_cpu"] = server_cpu
                        print(f"{label}: HTTP p50 {percentile(times, 50):.3f} s, p95 {percentile(times, 95):.3f} s, "
                              f"server CPU/call {server_cpu:.3f} s ({load()})", flush=True)  # fmt: skip
            finally:
                server.stop()

    print()
    print(f"{'PostgreSQL' if url.startswith('postgresql') else 'SQLite'}: {machine()}; {load()}")
    print(
        "| endpoint | in-process p50 | in-process p95 (runs) | CPU p50 | HTTP p95 (runs) | server CPU/call |"
    )
    print("|---|---:|---:|---:|---:|---:|")
    for label, r in results.items():
        http = f"{r['http_p95']:.3f} s ({r['http_runs']:.0f})" if "http_p95" in r else "—"
        server_cpu = f"{r['server_cpu']:.3f} s" if "server_cpu" in r else "—"
        print(
            f"| {label} | {r['in_process_p50']:.3f} s | {r['in_process_p95']:.3f} s ({r['runs']:.0f}) | "
            f"{r['cpu_p50']:.3f} s | {http} | {server_cpu} |"
        )


if __name__ == "__main__":
    main()
