"""The moneyreads migration: the newest-first indexes of orders and ledger entries, an entry's postings by
index, and ledger_balances filled from the postings (equal to their sums) and kept by every posting after;
both ways, on the suite's database. On SQLite, the console's list statements read the new indexes in order
(no sort of the whole workspace)."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import Engine, func, insert, select, text
from sqlalchemy.orm import Session
from tests.reads.test_keys import _indexes, _migrate, fresh_engine  # noqa: F401  (fixture)

from offerloop.checkout.repository import orders_page
from offerloop.db.uow import Database
from offerloop.ledger import repository as ledger_repository
from offerloop.ledger import service as ledger_service
from offerloop.models import LedgerBalance, LedgerEntry, LedgerPosting, Order
from offerloop.workspaces import service as workspace_service

AT = datetime(2026, 12, 1, tzinfo=UTC)
BEFORE, AFTER = "portal_20261207", "moneyreads_20261207"


def _seed(engine: Engine) -> str:
    with Session(engine) as session:
        ws = workspace_service.create_workspace(session=session, name="Money").id
        session.commit()
    with engine.begin() as conn:
        for i in range(3):
            conn.execute(insert(Order), {"id": f"ord_{i}", "workspace_id": ws, "buyer_id": "byr_1", "status": "paid",
                                         "provider": "manual", "currency": "USD", "subtotal": 2700, "discount": 0,
                                         "tax": 0, "total": 2700, "refunded": 0, "lines": [], "created_at": AT,
                                         "paid_at": AT, "updated_at": AT, "tax_percent": "0",
                                         "platform_fee_percent": "5"})  # fmt: skip
            conn.execute(insert(LedgerEntry), {"id": 100 + i, "workspace_id": ws, "order_id": f"ord_{i}",
                                               "kind": "sale", "occurred_at": AT, "tags": {}})  # fmt: skip
            for account, amount, cur in (("buyer_payments", 2700, "USD"), ("revenue", -2700, "USD"),
                                         ("buyer_payments", 100 * i, "EUR"), ("revenue", -100 * i, "EUR")):  # fmt: skip
                conn.execute(insert(LedgerPosting), {"workspace_id": ws, "entry_id": 100 + i, "account": account,
                                                     "amount": amount, "currency": cur, "memo": ""})  # fmt: skip
    return ws


def _balances(engine: Engine, ws: str) -> list[tuple[str, str, int]]:
    with Session(engine) as session:
        return ledger_repository.account_balances(session, ws)


def test_moneyreads_adds_the_indexes_and_fills_the_balances_both_ways(fresh_engine: Engine) -> None:  # noqa: F811
    _migrate(fresh_engine, BEFORE)
    ws = _seed(fresh_engine)
    assert ("workspace_id", "status") in _indexes(fresh_engine, "orders")
    _migrate(fresh_engine, AFTER)
    assert {("workspace_id", "id"), ("workspace_id", "status", "id")} <= _indexes(fresh_engine, "orders")
    assert ("workspace_id", "status") not in _indexes(fresh_engine, "orders")
    assert {("workspace_id", "id"), ("workspace_id", "kind", "id")} <= _indexes(
        fresh_engine, "ledger_entries"
    )
    assert ("workspace_id", "entry_id") in _indexes(fresh_engine, "ledger_postings")
    assert ("workspace_id", "order_id", "occurred_at") in _indexes(fresh_engine, "ledger_entries")
    assert ("workspace_id", "order_id") not in _indexes(fresh_engine, "ledger_entries")
    assert _balances(fresh_engine, ws) == [
        ("buyer_payments", "EUR", 300), ("buyer_payments", "USD", 8100), ("revenue", "EUR", -300),
        ("revenue", "USD", -8100),
    ]  # fmt: skip
    # a posting through the ledger moves its balance at once; a rebuild from the postings agrees
    with Session(fresh_engine) as session:
        ledger_repository.add_posting(
            session, ws, entry_id=100, account="refunds", amount=500, currency="USD"
        )
        ledger_repository.add_posting(
            session, ws, entry_id=100, account="buyer_payments", amount=-500, currency="USD"
        )
        session.commit()
    kept = _balances(fresh_engine, ws)
    assert ("buyer_payments", "USD", 7600) in kept and ("refunds", "USD", 500) in kept
    with Session(fresh_engine) as session:
        assert ledger_service.rebuild_balances(session=session, workspace_id=ws) == 5
        session.commit()
    assert _balances(fresh_engine, ws) == kept
    with fresh_engine.connect() as conn:
        sums = conn.execute(select(LedgerPosting.account, LedgerPosting.currency, func.sum(LedgerPosting.amount))
                            .group_by(LedgerPosting.account, LedgerPosting.currency)
                            .order_by(LedgerPosting.account, LedgerPosting.currency)).all()  # fmt: skip
        assert [(a, c, int(s)) for a, c, s in sums] == kept
        assert conn.scalar(select(func.count()).select_from(LedgerBalance)) == 5
    _migrate(fresh_engine, BEFORE, down=True)
    assert ("workspace_id", "status") in _indexes(fresh_engine, "orders")
    assert ("workspace_id", "id") not in _indexes(fresh_engine, "orders")
    assert ("workspace_id", "entry_id") not in _indexes(fresh_engine, "ledger_postings")
    assert ("workspace_id", "order_id") in _indexes(fresh_engine, "ledger_entries")
    with fresh_engine.connect() as conn:
        assert conn.scalar(select(func.count()).select_from(Order)) == 3


def test_the_newest_first_lists_read_an_index_in_order(db: Database, workspace) -> None:
    """SQLite's plan for the console's lists: an index search, no temporary sort of the workspace's rows."""
    with db.read() as session:
        if session.get_bind().dialect.name != "sqlite":
            return  # PostgreSQL's planner picks by statistics: bench/RESULTS.md records its plans
        statements = {
            "orders": orders_page(
                session, workspace.id, limit=50, before_id=None, status=None, buyer_ids=None
            ),
            "orders of a status": orders_page(
                session, workspace.id, limit=50, before_id=None, status="paid", buyer_ids=None
            ),
        }
        assert statements == {"orders": [], "orders of a status": []}
        plans = {}
        for name, sql in {
            "orders": "SELECT id FROM orders WHERE workspace_id = :w ORDER BY id DESC LIMIT 51",
            "orders of a status": "SELECT id FROM orders WHERE workspace_id = :w AND status = 'paid' "
                                  "ORDER BY id DESC LIMIT 51",
            "entries": "SELECT id FROM ledger_entries WHERE workspace_id = :w ORDER BY id DESC LIMIT 51",
            "entries of a kind": "SELECT id FROM ledger_entries WHERE workspace_id = :w AND kind = 'refund' "
                                 "ORDER BY id DESC LIMIT 51",
            "postings of entries": "SELECT id FROM ledger_postings WHERE workspace_id = :w AND entry_id IN (1, 2)",
            "an order's entries": "SELECT e.id, p.id FROM ledger_entries e JOIN ledger_postings p ON p.entry_id = e.id "
                                  "WHERE e.workspace_id = :w AND p.workspace_id = :w AND e.order_id = 'o' "
                                  "ORDER BY e.occurred_at, e.id, p.id",
        }.items():  # fmt: skip
            rows = session.execute(text(f"EXPLAIN QUERY PLAN {sql}"), {"w": workspace.id}).all()
            plans[name] = " | ".join(r[-1] for r in rows)
    assert plans == {
        "orders": "SEARCH orders USING COVERING INDEX ix_orders_workspace_id_id (workspace_id=?)",
        "orders of a status": "SEARCH orders USING COVERING INDEX ix_orders_workspace_id_status_id "
                              "(workspace_id=? AND status=?)",
        "entries": "SEARCH ledger_entries USING COVERING INDEX ix_ledger_entries_workspace_id_id (workspace_id=?)",
        "entries of a kind": "SEARCH ledger_entries USING COVERING INDEX ix_ledger_entries_workspace_id_kind_id "
                             "(workspace_id=? AND kind=?)",
        "postings of entries": "SEARCH ledger_postings USING COVERING INDEX ix_ledger_postings_workspace_id_entry_id "
                               "(workspace_id=? AND entry_id=?)",
        "an order's entries": "SEARCH e USING COVERING INDEX ix_ledger_entries_workspace_id_order_id_occurred_at "
                              "(workspace_id=? AND order_id=?) | SEARCH p USING COVERING INDEX "
                              "ix_ledger_postings_workspace_id_entry_id (workspace_id=? AND entry_id=?)",
    }  # fmt: skip
