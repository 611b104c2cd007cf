"""1,000 concurrent checkout attempts on a drop of 100 units: exactly 100 sell — on SQLite and PostgreSQL.

Each attempt is its own transaction on its own connection (a real engine, not the rolled-back test
connection), from 16 threads at once, as requests from many buyers would arrive.
"""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from tests.checkout.log import forget_queued_work, processed

from offerloop.checkout import service as checkout_service
from offerloop.checkout.exceptions import SoldOut
from offerloop.core.clock import utcnow
from offerloop.db.uow import Database
from offerloop.events import service as event_service
from offerloop.identity import service as identity_service
from offerloop.offers import service as offers_service
from offerloop.offers.exceptions import NotForSale
from offerloop.workspaces import service as workspace_service

CATALOG = (Path(__file__).resolve().parents[2] / "examples" / "demo" / "offers.yaml").read_text()
ATTEMPTS, UNITS = 1000, 100


def test_exactly_the_stock_sells_under_concurrent_checkouts(engine):
    db = Database(engine)
    with db.write() as session:
        ws = workspace_service.create_workspace(session=session, name="oversell").id
        offers_service.load_catalog(session=session, workspace_id=ws, text=CATALOG)
        offers_service.sign_off(session=session, workspace_id=ws, key="drop-limited-print", actor="creator")
    identify = [
        {"type": "identify", "userId": f"buyer-{i}", "messageId": f"id-{i}"} for i in range(ATTEMPTS + 2)
    ]
    for start in range(0, len(identify), 100):
        batch = event_service.prepare_batch(
            identify[start : start + 100], received_at=utcnow(), max_event_bytes=32768
        )
        with db.write() as session:
            event_service.ingest(session=session, workspace_id=ws, batch=batch)
    processed(db, ws)  # the identity consumer makes the buyers (no runner threads here)
    with db.read() as session:
        buyers = [identity_service.lookup(session=session, workspace_id=ws, user_id=f"buyer-{i}").id
                  for i in range(ATTEMPTS + 2)]  # fmt: skip

    def attempt(i: int) -> str | None:
        try:
            with db.write() as session:
                order = checkout_service.begin(session=session, workspace_id=ws, buyer_id=buyers[i],
                                               offer_key="drop-limited-print", currency="USD")  # fmt: skip
                return order.id
        except SoldOut:
            return None

    with ThreadPoolExecutor(16) as pool:
        orders = [o for o in pool.map(attempt, range(ATTEMPTS)) if o is not None]
    assert len(orders) == UNITS
    with db.read() as session:
        stock = offers_service.repository.stock(session, ws, "drop-limited-print")
        assert stock is not None and (stock.total, stock.sold, stock.held) == (UNITS, 0, UNITS)

    # paying them concurrently converts every hold exactly once
    def settle(order_id: str) -> str:
        with db.write() as session:
            return checkout_service.mark_paid(
                session=session, workspace_id=ws, order_id=order_id, actor="t"
            ).status

    with ThreadPoolExecutor(8) as pool:
        assert set(pool.map(settle, orders)) == {"paid"}
    with db.read() as session:
        stock = offers_service.repository.stock(session, ws, "drop-limited-print")
        assert stock is not None and (stock.sold, stock.held) == (UNITS, 0)
        state = offers_service.state_of(session=session, workspace_id=ws,
                                        offer=offers_service.get_offer(session=session, workspace_id=ws, key="drop-limited-print"))  # fmt: skip
        assert state == "closed"
    # one more buyer: sold out
    try:
        attempt(ATTEMPTS + 1)
    except NotForSale:
        pass
    else:
        raise AssertionError("a sold-out drop must refuse checkout")
    # Deliver what was paid, as a server's job threads would (each grant is an event on the buyer's record, so
    # the consumers run after it), then drop the rest of what it queued: nothing this test committed is left
    # due for the next test's passes over the same database.
    checkout_service.run_fulfilment(db=db)
    processed(db, ws)
    forget_queued_work(db, ws)
