"""Refunds racing fulfilment (issue 8, item 3): 40 paid orders refunded by 4 threads while 2 fulfilment
workers deliver them, each step its own committed transaction on SQLite or PostgreSQL. Whichever commits
first, no refunded order leaves an active grant, and every task ends delivered-then-revoked or canceled."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from tests.checkout.log import forget_queued_work, processed

from offerloop.checkout import repository as checkout_repository
from offerloop.checkout import service as checkout_service
from offerloop.db.uow import Database
from offerloop.entitlements import repository as entitlements_repository
from offerloop.ledger import service as ledger_service
from offerloop.offers import service as offers_service
from offerloop.workspaces import service as workspace_service

CATALOG = (Path(__file__).resolve().parents[2] / "examples" / "demo" / "offers.yaml").read_text()
ORDERS = 40


def test_no_grant_survives_a_refund_that_races_fulfilment(engine) -> None:
    db = Database(engine)
    with db.write() as session:
        ws = workspace_service.create_workspace(session=session, name="refund race").id
        offers_service.load_catalog(session=session, workspace_id=ws, text=CATALOG)
    orders: list[tuple[str, str]] = []
    for i in range(ORDERS):
        with db.write() as session:
            buyer = checkout_service.buyer_for(session=session, workspace_id=ws, user_id=f"racer-{i}")
            order = checkout_service.begin(session=session, workspace_id=ws, buyer_id=buyer,
                                           offer_key="pricing-playbook", currency="USD")  # fmt: skip
            checkout_service.mark_paid(session=session, workspace_id=ws, order_id=order.id, actor="t")
            orders.append((order.id, buyer))

    stop = threading.Event()

    def fulfil() -> None:
        while not stop.is_set():
            checkout_service.run_fulfilment(db=db, limit=5)

    def refund(order_id: str) -> None:
        with db.write() as session:
            checkout_service.refund(session=session, workspace_id=ws, order_id=order_id, actor="t")

    workers = [threading.Thread(target=fulfil) for _ in range(2)]
    for w in workers:
        w.start()
    with ThreadPoolExecutor(4) as pool:
        list(pool.map(refund, [o for o, _ in orders]))
    stop.set()
    for w in workers:
        w.join()
    checkout_service.run_fulfilment(db=db)

    with db.read() as session:
        for order_id, buyer in orders:
            active = [
                e for e in entitlements_repository.of_buyer(session, ws, (buyer,)) if e.status == "active"
            ]
            assert active == [], (order_id, [(e.component, e.ref) for e in active])
            tasks = checkout_repository.tasks(session, ws, order_id)
            assert {t.status for t in tasks} <= {"done", "canceled"}, [(t.component, t.status) for t in tasks]
        assert ledger_service.unbalanced_orders(session=session, workspace_id=ws) == []
    processed(db, ws)
    forget_queued_work(db, ws)
