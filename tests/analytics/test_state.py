"""The analytics state kept by the ``analytics`` consumer: the purchase definition over real ingestion (creator,
server and write-key events), checkout orders and their own events counted once, refunds, events out of order,
replays, merges and erasure — and the rebuild giving the same rows as the consumer."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import orjson
from fastapi.testclient import TestClient
from sqlalchemy import select, update
from tests.analytics.helpers import buyer_of
from tests.conftest import basic, bearer

from offerloop.analytics import consumers, service, state
from offerloop.db.uow import Database
from offerloop.events import service as event_service
from offerloop.models import (
    AnalyticsBuyer,
    AnalyticsPersonaFirst,
    AnalyticsPersonaPurchase,
    AnalyticsPurchase,
    Event,
    Order,
)
from offerloop.pipeline.registry import LogEvent
from offerloop.workspaces.schemas import WorkspaceCreated


def _order(user: str, mid: str, ts: str, order_id: str, total: int, **extra: Any) -> dict[str, Any]:
    return {"type": "track", "event": "Order Completed", "userId": user, "messageId": mid, "timestamp": ts,
            "properties": {"order_id": order_id, "total_minor": total, "currency": "USD", **extra}}  # fmt: skip


def _refund(user: str, mid: str, ts: str, order_id: str, **props: Any) -> dict[str, Any]:
    return {"type": "track", "event": "Order Refunded", "userId": user, "messageId": mid, "timestamp": ts,
            "properties": {"order_id": order_id, "currency": "USD", **props}}  # fmt: skip


def _post(client: TestClient, key: str, batch: list[dict[str, Any]]) -> None:
    r = client.post("/v1/batch", headers=basic(key), content=orjson.dumps({"batch": batch}))
    assert r.status_code == 200, r.text
    assert r.json()["accepted"] == len(batch), r.text


def _purchases(db: Database, ws: str) -> list[tuple[str, str, str, int, int, str]]:
    """(buyer, key, UTC instant, amount, refunded, source), by buyer then time."""
    p = AnalyticsPurchase
    with db.read() as session:
        rows = session.execute(
            select(p.buyer_id, p.purchase_key, p.at_us, p.amount_minor, p.refunded_minor, p.source).where(
                p.workspace_id == ws
            )
        ).all()
    out = []
    for b, k, us, amount, refunded, source in rows:
        at = datetime.fromtimestamp(us / 1_000_000, UTC).strftime("%Y-%m-%dT%H:%M")
        out.append((b, k, at, amount, refunded, source))
    return sorted(out, key=lambda r: (r[0], r[2], r[1]))


def _snapshot(db: Database, ws: str) -> tuple[list[Any], list[Any], list[Any], list[Any]]:
    """Every analytics row of the workspace, sorted."""
    with db.read() as session:
        return tuple(  # type: ignore[return-value]
            sorted(
                tuple(r) for r in session.execute(select(*m.__table__.c).where(m.workspace_id == ws)).all()
            )
            for m in (AnalyticsPurchase, AnalyticsBuyer, AnalyticsPersonaFirst, AnalyticsPersonaPurchase)
        )


def test_creator_and_server_orders_count_a_write_key_clients_do_not(
    client: TestClient, workspace: WorkspaceCreated, db: Database
) -> None:
    _post(client, workspace.secret_key, [
        _order("u1", "a-1", "2026-01-05T10:00:00Z", "o1", 1000),
        _order("u1", "a-2", "2026-01-06T10:00:00Z", "o1", 1000),  # a resend: the same order, at its first event
        _order("u1", "a-3", "2026-02-01T10:00:00Z", "o2", 2000),
        _refund("u1", "a-4", "2026-02-02T10:00:00Z", "o2"),  # an imported refunded row: no `full` -> all of it
        _order("u1", "a-5", "2026-02-03T10:00:00Z", "o3", 3000),
        _refund("u1", "a-6", "2026-02-04T10:00:00Z", "o3", amount_minor=500, full=False),
        _order("u1", "a-7", "2026-02-05T10:00:00Z", "o4", 0),  # zero-value orders count
        {"type": "track", "event": "Order Completed", "userId": "u1", "messageId": "a-8",
         "timestamp": "2026-02-06T10:00:00Z", "properties": {"total_minor": 700, "currency": "xyz"}},  # no currency
    ])  # fmt: skip
    # anyone holding the write key could mint revenue: a client's Order Completed is no purchase
    _post(
        client,
        workspace.write_key,
        [
            _order("u1", "c-1", "2026-02-07T10:00:00Z", "o5", 99_900),
            _order("u2", "c-2", "2026-02-07T10:00:00Z", "o6", 99_900),
        ],
    )
    u1 = buyer_of(db, workspace.id, "u1")
    assert _purchases(db, workspace.id) == [
        (u1, "o1", "2026-01-05T10:00", 1000, 0, "event"),
        (u1, "o3", "2026-02-03T10:00", 2500, 500, "event"),
        (u1, "o4", "2026-02-05T10:00", 0, 0, "event"),
    ]
    with db.read() as session:
        row = session.get(AnalyticsBuyer, (workspace.id, u1))
        assert row is not None
        assert (row.first_day, row.second_day, row.first_month, row.purchases) == (20458, 20487, 2026 * 12, 3)
        s = service.summary(session=session, workspace_id=workspace.id)
    assert (s.buyers, s.revenue_minor, s.currency) == (1, 3500, "USD")
    r = client.get("/v1/attribution", headers=bearer(workspace.secret_key),
                   params={"model": "last", "start": "2026-01-01", "end": "2026-03-01"})  # fmt: skip
    assert r.status_code == 200, r.text
    assert [(c["channel"], c["conversions"], c["value"]) for c in r.json()["channels"]] == [
        ("(none)", 3, 3500)
    ]


def _checkout_order(db: Database, ws: str, buyer_id: str, order_id: str, total: int, paid: str) -> None:
    """A paid order as checkout stores it, and its ``Order Completed`` events (server origin, one per line)."""
    at = datetime.fromisoformat(paid).replace(tzinfo=UTC)
    with db.write() as session:
        session.add(Order(id=order_id, workspace_id=ws, buyer_id=buyer_id, status="paid", provider="manual",
                          currency="USD", subtotal=total, discount=0, tax=0, total=total, refunded=0, lines=[],
                          created_at=at, paid_at=at, updated_at=at))  # fmt: skip
        lines = [("a", total // 2), ("b", total - total // 2)]
        messages = [
            {"type": "track", "event": "Order Completed", "userId": "buyer-c", "messageId": f"{order_id}-{k}",
             "timestamp": at.isoformat(), "properties": {"order_id": order_id, "total_minor": v, "currency": "USD"}}
            for k, v in lines
        ]  # fmt: skip
        batch = event_service.prepare_batch(messages, received_at=at, max_event_bytes=32_000, origin="server")
        event_service.ingest(session=session, workspace_id=ws, batch=batch)


def test_a_checkout_order_and_its_events_count_once_and_refunds_follow_the_order(
    client: TestClient, workspace: WorkspaceCreated, db: Database
) -> None:
    _post(client, workspace.secret_key, [{"type": "identify", "userId": "buyer-c", "messageId": "id-c"}])
    buyer = buyer_of(db, workspace.id, "buyer-c")
    _checkout_order(db, workspace.id, buyer, "ord_1", 5000, "2026-03-01T09:00:00")
    assert _purchases(db, workspace.id) == [(buyer, "ord_1", "2026-03-01T09:00", 5000, 0, "checkout")]
    # a partial refund through checkout: the order's net, once its event is logged
    with db.write() as session:
        session.execute(
            update(Order).where(Order.id == "ord_1").values(status="partially_refunded", refunded=1200)
        )
    _post(client, workspace.secret_key, [_refund("buyer-c", "r-1", "2026-03-02T09:00:00Z", "ord_1",
                                                 amount_minor=1200, full=False)])  # fmt: skip
    assert _purchases(db, workspace.id) == [(buyer, "ord_1", "2026-03-01T09:00", 3800, 1200, "checkout")]
    with db.write() as session:
        session.execute(update(Order).where(Order.id == "ord_1").values(status="refunded", refunded=5000))
    _post(client, workspace.secret_key, [_refund("buyer-c", "r-2", "2026-03-03T09:00:00Z", "ord_1",
                                                 amount_minor=3800, full=True)])  # fmt: skip
    assert _purchases(db, workspace.id) == []
    with db.read() as session:
        assert session.get(AnalyticsBuyer, (workspace.id, buyer)) is None


def test_an_earlier_event_arriving_late_moves_the_first_purchase(
    client: TestClient, workspace: WorkspaceCreated, db: Database
) -> None:
    _post(client, workspace.secret_key, [_order("u3", "l-1", "2026-05-10T10:00:00Z", "late-2", 300)])
    u3 = buyer_of(db, workspace.id, "u3")
    with db.read() as session:
        row = session.get(AnalyticsBuyer, (workspace.id, u3))
        assert row is not None and (row.first_day, row.second_day, row.first_month) == (
            20583,
            None,
            2026 * 12 + 4,
        )
    _post(client, workspace.secret_key, [_order("u3", "l-2", "2026-04-01T10:00:00Z", "late-1", 100)])
    with db.read() as session:
        row = session.get(AnalyticsBuyer, (workspace.id, u3))
        assert row is not None and (row.first_day, row.second_day, row.first_month) == (
            20544,
            20583,
            2026 * 12 + 3,
        )
        cohort_months = set(
            session.scalars(
                select(AnalyticsPurchase.cohort_month).where(AnalyticsPurchase.workspace_id == workspace.id)
            )
        )
    assert cohort_months == {2026 * 12 + 3}  # every purchase row follows the buyer's new cohort


def test_a_replay_and_a_rebuild_change_nothing(
    client: TestClient, workspace: WorkspaceCreated, db: Database
) -> None:
    _post(client, workspace.secret_key, [
        _order("u4", "p-1", "2026-01-05T10:00:00Z", "r1", 1000),
        _order("u5", "p-2", "2026-01-06T10:00:00Z", "r2", 2000),
        _order("u4", "p-3", "2026-03-01T10:00:00Z", "r3", 500),
    ])  # fmt: skip
    before = _snapshot(db, workspace.id)
    assert len(before[0]) == 3 and len(before[1]) == 2
    with db.read() as session:
        stored = session.execute(
            select(Event).where(Event.workspace_id == workspace.id).order_by(Event.id)
        ).scalars()
        events = [
            LogEvent(e.id, e.workspace_id, e.message_id, e.type, e.name, e.buyer_id, e.user_id, e.anonymous_id,
                     e.group_id, e.previous_id, e.timestamp, e.original_timestamp, e.sent_at, e.received_at,
                     e.properties, e.traits, e.context, e.weight, e.confidence, e.high_signal, e.suppressed)
            for e in stored
        ]  # fmt: skip
    for _ in range(2):  # the consumer shown the same events again (a replay), twice
        with db.write() as session:
            consumers.keep_state(session, workspace.id, events)
        assert _snapshot(db, workspace.id) == before
    with db.write() as session:
        assert (
            state.refresh(session=session, workspace_id=workspace.id, buyer_ids=[e.buyer_id for e in events])
            == 0
        )
    with db.write() as session:
        assert service.rebuild(session=session, workspace_id=workspace.id) == 2
    assert _snapshot(db, workspace.id) == before


def test_a_merge_moves_the_losers_rows_to_the_survivor(
    client: TestClient, workspace: WorkspaceCreated, other_workspace: WorkspaceCreated, db: Database
) -> None:
    anon = {"type": "track", "event": "Order Completed", "anonymousId": "anon-9", "messageId": "m-1",
            "timestamp": "2026-01-02T10:00:00Z",
            "properties": {"order_id": "g1", "total_minor": 400, "currency": "USD"}}  # fmt: skip
    _post(client, workspace.secret_key, [anon, _order("u9", "m-2", "2026-02-02T10:00:00Z", "g2", 600)])
    with db.read() as session:
        loser_rows = {r[0] for r in _purchases(db, workspace.id)}
    assert len(loser_rows) == 2  # two buyers so far
    survivor = buyer_of(db, workspace.id, "u9")
    (loser,) = loser_rows - {survivor}
    # a checkout order stays keyed by the buyer who paid it; the merge does not move orders
    with db.write() as session:
        at = datetime(2026, 1, 3, 9, tzinfo=UTC)
        session.add(Order(id="ord_l", workspace_id=workspace.id, buyer_id=loser, status="paid", provider="manual",
                          currency="USD", subtotal=250, discount=0, tax=0, total=250, refunded=0, lines=[],
                          created_at=at, paid_at=at, updated_at=at))  # fmt: skip
    _post(client, workspace.secret_key, [
        {"type": "identify", "userId": "u9", "anonymousId": "anon-9", "messageId": "m-3",
         "timestamp": "2026-02-03T10:00:00Z"},
    ])  # fmt: skip
    winner = buyer_of(db, workspace.id, "u9")
    assert _purchases(db, workspace.id) == [
        (winner, "g1", "2026-01-02T10:00", 400, 0, "event"),
        (winner, "ord_l", "2026-01-03T09:00", 250, 0, "checkout"),
        (winner, "g2", "2026-02-02T10:00", 600, 0, "event"),
    ]
    with db.read() as session:
        buyers = session.scalars(
            select(AnalyticsBuyer.buyer_id).where(AnalyticsBuyer.workspace_id == workspace.id)
        )
        assert list(buyers) == [winner]
        s = service.summary(session=session, workspace_id=workspace.id)
    assert (s.buyers, s.revenue_minor) == (1, 1250)
    # a second merge (anon-7 into the survivor): the rebuild's single pass over the workspace gives the
    # consumer's rows, and leaves another workspace's rows alone
    _post(client, workspace.secret_key, [
        {"type": "track", "event": "Order Completed", "anonymousId": "anon-7", "messageId": "m-4",
         "timestamp": "2026-01-01T08:00:00Z", "properties": {"order_id": "g0", "total_minor": 70, "currency": "USD"}},
        {"type": "identify", "userId": "u9", "anonymousId": "anon-7", "messageId": "m-5",
         "timestamp": "2026-02-04T10:00:00Z"},
    ])  # fmt: skip
    _post(client, other_workspace.secret_key, [_order("u9", "m-1", "2026-01-02T10:00:00Z", "g1", 999)])
    theirs = _snapshot(db, other_workspace.id)
    assert len(theirs[0]) == 1
    consumer_rows = _snapshot(db, workspace.id)
    assert [r[1:3] for r in consumer_rows[0]] == [("g0", winner), ("g1", winner), ("g2", winner),
                                                  ("ord_l", winner)]  # fmt: skip
    with db.write() as session:
        # candidates: the survivor (the merges moved the events to it) and the loser whose checkout order stays
        assert service.rebuild(session=session, workspace_id=workspace.id) == 2
    assert _snapshot(db, workspace.id) == consumer_rows
    assert _snapshot(db, other_workspace.id) == theirs
    # undoing the first merge gives the loser its purchases back at once, not at its next event
    merges = client.get(f"/v1/merges?buyer_id={winner}", headers=bearer(workspace.secret_key))
    assert merges.status_code == 200, merges.text
    first = next(m for m in merges.json()["items"] if m["loser_id"] == loser)
    undone = client.post(f"/v1/merges/{first['id']}/undo", headers=bearer(workspace.secret_key))
    assert undone.status_code == 200, undone.text
    owners = {r[1]: r[0] for r in _purchases(db, workspace.id)}
    assert owners == {"g0": winner, "g1": loser, "ord_l": loser, "g2": winner}
    with db.write() as session:
        assert state.refresh(session=session, workspace_id=workspace.id, buyer_ids=[winner, loser]) == 0


def test_erasure_deletes_the_buyers_rows(
    client: TestClient, workspace: WorkspaceCreated, db: Database
) -> None:
    _post(client, workspace.secret_key, [
        _order("gone", "e-1", "2026-01-05T10:00:00Z", "x1", 1000),
        _order("kept", "e-2", "2026-01-05T10:00:00Z", "x2", 2000),
    ])  # fmt: skip
    gone, kept = buyer_of(db, workspace.id, "gone"), buyer_of(db, workspace.id, "kept")
    with db.write() as session:
        from offerloop.models import PersonaChange

        session.add(PersonaChange(workspace_id=workspace.id, buyer_id=gone, from_persona=None, to_persona="p",
                                  confidence=0.9, at=datetime(2026, 1, 1, tzinfo=UTC)))  # fmt: skip
        session.flush()
        state.refresh(session=session, workspace_id=workspace.id, buyer_ids=[gone])
    assert {r[0] for r in _snapshot(db, workspace.id)[2]} == {workspace.id}
    r = client.delete(f"/v1/buyers/{gone}", headers=bearer(workspace.secret_key))
    assert r.status_code == 200, r.text
    assert [r[0] for r in _purchases(db, workspace.id)] == [kept]
    _, buyers, firsts, spent = _snapshot(db, workspace.id)
    assert [b[1] for b in buyers] == [kept] and firsts == [] and spent == []
    # a late event of the erased buyer (or a rebuild) brings nothing back
    with db.write() as session:
        assert state.refresh(session=session, workspace_id=workspace.id, buyer_ids=[gone]) == 0
        service.rebuild(session=session, workspace_id=workspace.id)
    assert [r[0] for r in _purchases(db, workspace.id)] == [kept]


def test_hostile_order_fields_never_break_the_consumer(
    client: TestClient, workspace: WorkspaceCreated, db: Database
) -> None:
    def odd(mid: str, props: dict[str, Any]) -> dict[str, Any]:
        return {"type": "track", "event": "Order Completed", "userId": "h1", "messageId": mid,
                "timestamp": "2026-06-01T10:00:00Z", "properties": props}  # fmt: skip

    _post(client, workspace.secret_key, [{"type": "identify", "userId": "buyer-c", "messageId": "id-c"}])
    _checkout_order(
        db, workspace.id, buyer_of(db, workspace.id, "buyer-c"), "ord_real", 100, "2026-05-01T09:00:00"
    )
    _post(client, workspace.secret_key, [
        odd("h-1", {"order_id": {"a": 1}, "total_minor": 500, "currency": "USD"}),  # not an id: its own purchase
        odd("h-2", {"order_id": True, "total_minor": 700, "currency": "USD"}),
        odd("h-3", {"order_id": "x" * 500, "total_minor": "1e400", "currency": "USD"}),  # value unusable: 0
        odd("h-4", {"order_id": "neg", "total_minor": -10**18, "currency": "USD"}),
        odd("h-5", {"order_id": "nan", "total_minor": "NaN", "revenue": "12.5", "currency": "usd"}),
        odd("h-6", {"order_id": "ord_real", "total_minor": 10**12, "currency": "USD"}),  # a checkout order's id
        odd("h-7", {"order_id": "nocur", "total_minor": 100}),
        odd("h-8", None),  # type: ignore[arg-type]
    ])  # fmt: skip
    h1 = buyer_of(db, workspace.id, "h1")
    rows = [(k, amount) for b, k, _, amount, _, _ in _purchases(db, workspace.id) if b == h1]
    assert sorted(rows) == sorted([
        ("event:" + str(_seq(db, workspace.id, "h-1")), 500), ("event:" + str(_seq(db, workspace.id, "h-2")), 700),
        (service.order_key("x" * 500), 0), ("neg", 0), ("nan", 1250),
    ])  # fmt: skip
    r = client.get("/v1/analytics/summary", headers=bearer(workspace.secret_key))
    assert r.status_code == 200, r.text
    assert (r.json()["buyers"], r.json()["revenue_minor"]) == (
        2,
        2450 + 100,
    )  # ord_real once, at its own total


def _seq(db: Database, ws: str, message_id: str) -> int:
    with db.read() as session:
        found = session.scalar(
            select(Event.id).where(Event.workspace_id == ws, Event.message_id == message_id)
        )
    assert found is not None
    return int(found)
