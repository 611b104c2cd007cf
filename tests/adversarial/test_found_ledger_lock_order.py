"""Two POST /v1/orders/{id}/paid (or a paid and a refund) committing at once on PostgreSQL deadlocked: each entry
moved its accounts' running balances (ledger_balances, one row locked per account and currency until commit) in
its postings' order, and a refund posts to the accounts of a sale in the opposite order. Seen live: four threads
paying and refunding orders of one workspace, one 500 ``deadlock detected`` in ``_add_to_balance``. Every entry
now moves its balances in (account, currency) order, so two transactions wait for each other instead."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import event

from offerloop.core.money import Money
from offerloop.db.uow import Database
from offerloop.ledger import service
from offerloop.ledger.postings import refund_entry, sale_entry
from offerloop.workspaces.schemas import WorkspaceCreated

NOV = datetime(2026, 11, 5, tzinfo=UTC)


def test_found_every_entry_moves_its_balances_in_one_order(db: Database, workspace: WorkspaceCreated) -> None:
    moved: list[str] = []

    def seen(conn, cursor, statement, parameters, context, executemany) -> None:  # type: ignore[no-untyped-def]
        if statement.lstrip().upper().startswith("INSERT INTO LEDGER_BALANCES"):
            moved.append(dict(parameters)["account"] if isinstance(parameters, dict) else parameters[1])

    sale = sale_entry("o-1", gross=Money("USD", 4900), processor_fee=Money("USD", 172), occurred_at=NOV)
    refund = refund_entry("o-1", prior=[sale], amount=Money("USD", 1000), occurred_at=NOV)
    engine = db.bind.engine
    event.listen(engine, "before_cursor_execute", seen)
    try:
        orders = []
        for entry in (sale, refund):
            moved.clear()
            with db.write() as session:
                service.record(session=session, workspace_id=workspace.id, entry=entry, tags={})
            orders.append(list(moved))
    finally:
        event.remove(engine, "before_cursor_execute", seen)
    assert all(len(o) >= 2 and o == sorted(o) for o in orders), orders
