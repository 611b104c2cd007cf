"""Server time of the console's money pages (orders, an order, subscriptions, the ledger) and the review queue
with many orders and ledger entries in the workspace.

    python bench/console_money.py                         # SQLite, 100,000 paid orders (10 % refunded)
    python bench/console_money.py --orders 20000          # a quicker run
    python bench/console_money.py --database-url postgresql+psycopg://postgres@127.0.0.1:5432/test

Target (issue 14): every console page renders in <= 300 ms server time. Measured in-process through the whole
ASGI app (session lookup, page, template) with a signed-in owner: wall time per request and the CPU time of
the process per request (the machine is shared). Rows are written in bulk as checkout leaves them: each paid
order a balanced sale entry (buyer payments / revenue / platform fee / payouts pending), each refund a refund
entry.
"""

from __future__ import annotations

import argparse
import logging
import shutil
import statistics
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from _common import load_average, machine, percentile
from fastapi.testclient import TestClient
from lookup import load as load_buyers
from sqlalchemy import insert, text

from offerloop.api import create_app
from offerloop.config import Settings
from offerloop.console import service as console_service
from offerloop.db import migrate
from offerloop.db.engine import make_engine
from offerloop.db.uow import Database
from offerloop.ledger import service as ledger_service
from offerloop.models import LedgerEntry, LedgerPosting, Order
from offerloop.offers import service as offers_service
from offerloop.workspaces import service as workspace_service

PASSWORD = "a long bench password"


def load_orders(db: Database, workspace_id: str, n: int, buyers: int) -> None:
    start = datetime.now(UTC) - timedelta(days=60)
    orders, entries, postings = [], [], []
    entry_id = 10_000_000  # explicit ids so postings can name their entry in the same bulk insert

    def flush(session: object) -> None:
        session.execute(insert(Order), orders)  # type: ignore[attr-defined]
        session.execute(insert(LedgerEntry), entries)  # type: ignore[attr-defined]
        session.execute(insert(LedgerPosting), postings)  # type: ignore[attr-defined]
        orders.clear(), entries.clear(), postings.clear()

    with db.write() as session:
        for i in range(n):
            at = start + timedelta(seconds=i * 50)
            oid, refunded = f"ord_bench{i:016d}", 1000 if i % 10 == 0 else 0
            orders.append({"id": oid, "workspace_id": workspace_id, "buyer_id": f"byr_bench{i % buyers:012d}",
                           "status": "partially_refunded" if refunded else "paid", "provider": "manual",
                           "currency": "USD", "subtotal": 2700, "discount": 0, "tax": 0, "total": 2700,
                           "refunded": refunded, "lines": [{"offer_key": "pricing-playbook", "title": "Pricing playbook",
                           "role": "offer", "unit_amount": 2700, "quantity": 1, "subtotal": 2700, "discount": 0,
                           "total": 2700}], "created_at": at, "paid_at": at, "updated_at": at,
                           "tax_percent": "0", "platform_fee_percent": "5"})  # fmt: skip
            tags = {"offers": ["pricing-playbook"], "currency": "USD"}
            entry_id += 1
            entries.append({"id": entry_id, "workspace_id": workspace_id, "order_id": oid, "kind": "sale",
                            "occurred_at": at, "tags": tags, "reference": None})  # fmt: skip
            for account, amount in (("buyer_payments", 2700), ("revenue", -2700), ("platform_fees", 135),
                                    ("payouts_pending", -135)):  # fmt: skip
                postings.append({"workspace_id": workspace_id, "entry_id": entry_id, "account": account,
                                 "amount": amount, "currency": "USD", "memo": ""})  # fmt: skip
            if refunded:
                entry_id += 1
                entries.append({"id": entry_id, "workspace_id": workspace_id, "order_id": oid, "kind": "refund",
                                "occurred_at": at + timedelta(hours=1), "tags": tags, "reference": None})  # fmt: skip
                for account, amount in (("refunds", refunded), ("buyer_payments", -refunded)):
                    postings.append({"workspace_id": workspace_id, "entry_id": entry_id, "account": account,
                                     "amount": amount, "currency": "USD", "memo": ""})  # fmt: skip
            if len(postings) >= 40_000:
                flush(session)
        flush(session)
        ledger_service.rebuild_balances(session=session, workspace_id=workspace_id)  # postings bypassed it
        if db.dialect == "postgresql":
            session.execute(
                text(
                    "ANALYZE orders; ANALYZE ledger_entries; ANALYZE ledger_postings; ANALYZE ledger_balances"
                )
            )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--orders", type=int, default=100_000)
    parser.add_argument(
        "--buyers", type=int, default=50_000, help="buyers (with identities) the orders belong to"
    )
    parser.add_argument("--samples", type=int, default=30)
    parser.add_argument("--database-url", default=None)
    args = parser.parse_args()
    logging.getLogger("httpx").setLevel(logging.WARNING)
    tmp = Path(tempfile.mkdtemp(prefix="offerloop-bench-console-"))
    url = args.database_url or f"sqlite:///{tmp / 'bench.db'}"
    try:
        engine = make_engine(url)
        migrate.upgrade(engine)
        db = Database(engine)
        with db.write() as session:
            ws = workspace_service.create_workspace(session=session, name="Console bench")
            catalog = Path(__file__).resolve().parents[1] / "examples" / "demo" / "offers.yaml"
            offers_service.load_catalog(session=session, workspace_id=ws.id, text=catalog.read_text())
            console_service.create_user(session=session, workspace_id=ws.id, email="owner@bench.example",
                                        role="owner", password=PASSWORD)  # fmt: skip
        t = time.perf_counter()
        load_buyers(db, ws.id, args.buyers)
        load_orders(db, ws.id, args.orders, args.buyers)
        print(f"loaded {args.buyers} buyers and {args.orders} orders in {time.perf_counter() - t:.1f} s")
        settings = Settings(database_url=url, environment="development")
        with TestClient(create_app(settings)) as client:
            page = client.get("/console/login")
            token = page.text.split('name="login_token" value="', 1)[1].split('"', 1)[0]
            signed = client.post("/console/login", data={"email": "owner@bench.example", "password": PASSWORD,
                                                         "login_token": token, "next": "/console"},
                                 follow_redirects=False)  # fmt: skip
            assert signed.status_code == 303, signed.text
            one = f"/console/orders/ord_bench{args.orders // 2:016d}"
            pages = ["/console/orders", "/console/orders?status=partially_refunded", one, "/console/subscriptions",
                     "/console/ledger", "/console/ledger?kind=refund", "/console/assembly",
                     f"/console/ledger?start={datetime.now(UTC).date().replace(day=1).isoformat()}"]  # fmt: skip
            print(f"machine: {machine()}; load average (1 min) {load_average()}")
            print("| page | p50 ms | p95 ms | max ms | CPU ms / request |")
            print("|---|---:|---:|---:|---:|")
            for path in pages:
                warm = client.get(path)
                assert warm.status_code == 200, (
                    path,
                    warm.text[-600:],
                )  # warm: templates compiled, caches filled
                wall, cpu = [], []
                for _ in range(args.samples):
                    c, w = time.process_time(), time.perf_counter()
                    r = client.get(path)
                    wall.append((time.perf_counter() - w) * 1000)
                    cpu.append((time.process_time() - c) * 1000)
                    assert r.status_code == 200
                print(f"| `{path}` | {percentile(wall, 50):.1f} | {percentile(wall, 95):.1f} | {max(wall):.1f} | "
                      f"{statistics.median(cpu):.1f} |")  # fmt: skip
        engine.dispose()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__":
    main()
