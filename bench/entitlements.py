"""Entitlement checks with 100,000 buyers holding a few entitlements each.

    python bench/entitlements.py                       # SQLite
    python bench/entitlements.py --buyers 20000        # a quicker run
    python bench/entitlements.py --database-url postgresql+psycopg://postgres@127.0.0.1:5432/test

Target: check p99 <= 5 ms over HTTP (GET /v1/entitlements/check, one keep-alive connection). Also
measured in-process: the service call in its own read transaction, as a request has it (buyer lookup
by user_id, then one indexed query of the buyer's rows of the component), and the entitlement query
alone for a known buyer id.
"""

from __future__ import annotations

import argparse
import http.client
import random
import shutil
import tempfile
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path

from _common import create_workspace, load_average, machine, percentile, start_server
from lookup import load
from sqlalchemy import delete, insert, text

from offerloop.db import migrate
from offerloop.db.engine import make_engine
from offerloop.db.uow import Database
from offerloop.entitlements import service as entitlement_service
from offerloop.models import Entitlement, Workspace

MODULES = 20


def load_entitlements(db: Database, workspace_id: str, n: int) -> int:
    """Per buyer: two modules (one of them revoked for every 10th buyer), a community space whose access
    ended for every 4th, a coaching quota; every 50th buyer has an admin deny on its first module."""
    granted = datetime(2026, 1, 1, tzinfo=UTC)
    ended, future = datetime(2026, 6, 1, tzinfo=UTC), datetime(2099, 1, 1, tzinfo=UTC)
    rows: list[dict[str, object]] = []
    total = 0

    def row(i: int, k: int, component: str, ref: str, source: str, **kw: object) -> dict[str, object]:
        return {"id": f"ent_bench{i:012d}{k}", "workspace_id": workspace_id, "buyer_id": f"byr_bench{i:012d}",
                "component": component, "ref": ref, "source": source, "status": "active", "override": None,
                "quantity": None, "granted_at": granted, "access_ends_at": None, "revoked_at": None,
                "reason": None, **kw}  # fmt: skip

    with db.write() as session:
        for i in range(n):
            order = f"ord_bench{i:012d}"
            rows += [
                row(i, 0, "module", f"m{i % MODULES}", order),
                row(i, 1, "module", f"m{(i + 1) % MODULES}", order,
                    **({"status": "revoked", "revoked_at": ended, "reason": "refund"} if i % 10 == 0 else {})),
                row(i, 2, "community_space", "inner-circle", f"sub_bench{i:012d}",
                    access_ends_at=ended if i % 4 == 0 else future),
                row(i, 3, "coaching_quota", "calls", order, quantity=i % 4),
            ]  # fmt: skip
            if i % 50 == 0:
                rows.append(row(i, 4, "module", f"m{i % MODULES}", "admin", override="deny", reason="bench"))
            if len(rows) >= 20_000:
                session.execute(insert(Entitlement), rows)
                total += len(rows)
                rows = []
        if rows:
            session.execute(insert(Entitlement), rows)
            total += len(rows)
        if db.dialect == "postgresql":
            session.execute(text("ANALYZE entitlements"))
    return total


def timed(n: int, one: Callable[[int], None]) -> list[float]:
    out: list[float] = []
    for i in range(n):
        t = time.perf_counter()
        one(i)
        out.append(time.perf_counter() - t)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--database-url", default=None)
    parser.add_argument("--buyers", type=int, default=100_000)
    parser.add_argument("--checks", type=int, default=20_000)
    args = parser.parse_args()
    started_load = load_average()
    tmp = tempfile.mkdtemp(prefix="offerloop-bench-")
    url = args.database_url or f"sqlite:///{Path(tmp) / 'entitlements.db'}"

    ws = create_workspace(url, "entitlements-bench")
    engine = make_engine(url)
    migrate.upgrade(engine)
    db = Database(engine)
    t0 = time.perf_counter()
    load(db, ws["id"], args.buyers)
    rows = load_entitlements(db, ws["id"], args.buyers)
    load_s = time.perf_counter() - t0

    rng = random.Random(7)
    components = ("module", "module", "community_space", "coaching_quota")

    def ask() -> tuple[int, str, str]:
        i = rng.randrange(args.buyers)
        component = components[rng.randrange(len(components))]
        ref = {"module": f"m{rng.randrange(MODULES)}", "community_space": "inner-circle"}.get(
            component, "calls"
        )
        return i, component, ref

    reasons: dict[str, int] = {}
    now = datetime.now(UTC) + timedelta(seconds=1)

    def in_process(_: int) -> None:
        i, component, ref = ask()
        with db.read() as session:
            r = entitlement_service.check_for(
                session=session, workspace_id=ws["id"], user_id=f"u{i}", component=component, ref=ref, now=now
            )
        reasons[r.reason] = reasons.get(r.reason, 0) + 1

    def query_only(_: int) -> None:
        i, component, ref = ask()
        with db.read() as session:
            entitlement_service.check(
                session=session, workspace_id=ws["id"], buyer_id=f"byr_bench{i:012d}", component=component,
                ref=ref, now=now,
            )  # fmt: skip

    full = timed(args.checks, in_process)
    query = timed(args.checks, query_only)
    engine.dispose()

    server = start_server(url)
    try:
        conn = http.client.HTTPConnection("127.0.0.1", server.port)
        headers = {"Authorization": f"Bearer {ws['secret_key']}"}

        def over_http(_: int) -> None:
            i, component, ref = ask()
            conn.request("GET", f"/v1/entitlements/check?user_id=u{i}&component={component}&ref={ref}",
                         headers=headers)  # fmt: skip
            resp = conn.getresponse()
            resp.read()
            assert resp.status == 200, resp.status

        timed(200, over_http)  # warm-up: key cache, statement caches, connection pool
        http_times = timed(min(args.checks, 5000), over_http)
    finally:
        server.stop()
        if db.dialect == "postgresql":  # a shared database: leave it as it was
            with db.write() as session:
                session.execute(delete(Workspace).where(Workspace.id == ws["id"]))
            engine.dispose()
        shutil.rmtree(tmp, ignore_errors=True)

    def ms(xs: list[float]) -> str:
        return f"p50 {percentile(xs, 50) * 1000:.2f} ms, p99 {percentile(xs, 99) * 1000:.2f} ms"

    print(f"machine: {machine()}; load average at the end: {load_average()} (start: {started_load})")
    print(
        f"backend: {url.split(':', 1)[0]}; {args.buyers:,} buyers, {rows:,} entitlements "
        f"(loaded in {load_s:.0f} s); answers: {dict(sorted(reasons.items()))}"
    )
    print(f"check in-process (lookup by user_id + entitlement query): {ms(full)} ({len(full):,} checks)")
    print(f"check in-process, entitlement query only (known buyer id): {ms(query)} ({len(query):,} checks)")
    print(f"check over HTTP (GET /v1/entitlements/check): {ms(http_times)} ({len(http_times):,} checks)")


if __name__ == "__main__":
    main()
