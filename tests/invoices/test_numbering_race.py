"""Numbers under concurrency: threads issue invoices and credit notes, each in its own committed transaction
(PostgreSQL: real concurrent transactions queueing on the counter row; SQLite: one writer at a time), every
document asked for twice at once. The numbers come out 1..N with no gap and no repeat, one per source."""

from __future__ import annotations

import random
import threading
from concurrent.futures import ThreadPoolExecutor

from tests.checkout.log import forget_queued_work, processed
from tests.invoices.helpers import documents, load_catalog, paid_order

from offerloop.checkout import service as checkout_service
from offerloop.db.uow import Database
from offerloop.invoices import service as invoices_service
from offerloop.workspaces import service as workspace_service

ORDERS = 24
THREADS = 6


def test_concurrent_issuing_is_gapless_and_once_per_source(engine) -> None:
    db = Database(engine)  # not inline: the consumers run at the end, over what the threads committed
    with db.write() as session:
        ws = workspace_service.create_workspace(session=session, name="numbering race").id
    try:
        _race(db, ws)
    finally:
        forget_queued_work(db, ws)


def _race(db: Database, ws: str) -> None:
    load_catalog(db, ws)
    orders = [paid_order(db, ws, f"racer-{i}") for i in range(ORDERS)]
    for order_id in orders[::2]:
        with db.write() as session:
            checkout_service.refund(
                session=session, workspace_id=ws, order_id=order_id, amount=700, actor="t"
            )

    work = [("invoice", o) for o in orders for _ in range(2)]
    work += [("credit_note", o) for o in orders[::2] for _ in range(2)]
    random.Random(7).shuffle(work)
    start = threading.Barrier(THREADS)
    issued: list[tuple[str, str]] = []
    lock = threading.Lock()

    def issue(item: tuple[str, str]) -> None:
        kind, order_id = item
        with db.write() as session:
            if kind == "invoice":
                row = invoices_service.issue_invoice(session=session, workspace_id=ws, order_id=order_id)
            else:
                row = invoices_service.issue_credit_note(session=session, workspace_id=ws, order_id=order_id,
                                                         source_key=f"{order_id}-refund-700", amount=700)  # fmt: skip
            assert row is not None
            number = row.number
        with lock:
            issued.append((number, order_id))

    def first_round(item: tuple[str, str]) -> None:
        start.wait(timeout=30)  # the first THREADS items start together
        issue(item)

    with ThreadPoolExecutor(THREADS) as pool:
        list(pool.map(first_round, work[:THREADS]))
        list(pool.map(issue, work[THREADS:]))

    invoices = documents(db, ws, "invoice")
    notes = documents(db, ws, "credit_note")
    assert [d.number for d in invoices] == [f"INV-{n:06d}" for n in range(1, ORDERS + 1)]
    assert [d.number for d in notes] == [f"CN-{n:06d}" for n in range(1, ORDERS // 2 + 1)]
    assert sorted(d.order_id for d in invoices) == sorted(orders)
    assert sorted(d.order_id for d in notes) == sorted(orders[::2])
    by_number = {d.number: d.order_id for d in invoices + notes}
    assert sorted(set(issued)) == sorted(by_number.items())  # both callers of a pair got the same document
    for note in notes:
        assert note.total == 700 and by_number[note.refers_to or ""] == note.order_id

    processed(db, ws)  # the consumers then see every event: nothing more is issued
    assert [d.number for d in documents(db, ws)] == [d.number for d in notes + invoices]
