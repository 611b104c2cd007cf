"""The public write key cannot make data unreadable or a batch fail: every accepted value reads back,
every other one is quarantined with a reason, and its innocent neighbours are stored."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import orjson
import pytest
import sqlalchemy as sa

from offerloop.db import driver
from offerloop.db.types import JSONType, UTCDateTime
from offerloop.events.validation import dump_deep

INNOCENT = {"type": "track", "userId": "innocent", "event": "Lesson Completed", "messageId": "ok-1",
            "timestamp": "2026-11-01T10:00:00Z"}  # fmt: skip


def _batch(client, headers, batch, **extra):
    r = client.post("/v1/batch", headers=headers, content=orjson.dumps({"batch": batch, **extra}))
    assert r.status_code == 200, r.text
    return r.json()


@pytest.mark.parametrize(
    ("fields", "batch_extra"),
    [
        ({"timestamp": "0999-06-01T00:00:00Z"}, {}),
        ({"timestamp": "1969-12-31T23:59:59Z"}, {}),
        ({"timestamp": "0001-01-01T00:00:00Z", "sentAt": "9999-12-31T23:59:59Z"}, {}),  # skew overflows
        ({"timestamp": "9999-12-31T23:59:59Z", "sentAt": "0001-01-01T00:00:00Z"}, {}),
        ({"timestamp": "9999-12-31T23:59:59Z"}, {"sentAt": "0001-01-01T00:00:00Z"}),  # the batch's sentAt
        ({"timestamp": "1971-01-01T00:00:00Z", "sentAt": "9000-01-01T00:00:00Z"}, {}),  # each in range
    ],
)
def test_event_times_outside_1970_to_9999_are_quarantined_not_the_batch(
    client, write_headers, secret_headers, fields, batch_extra
) -> None:
    bad = {"type": "track", "userId": "old", "event": "Clicked", "messageId": "bad-1", **fields}
    body = _batch(client, write_headers, [bad, INNOCENT], **batch_extra)
    assert (body["accepted"], body["quarantined"]) == (1, 1)
    assert [(e["index"], e["code"], e["messageId"]) for e in body["errors"]] == [
        (0, "timestamp_out_of_range", "bad-1")
    ]
    # The buyer of the refused event was never created; everything else reads back.
    assert (
        client.get("/v1/buyers/lookup", params={"user_id": "old"}, headers=secret_headers).status_code == 404
    )
    buyer = client.get("/v1/buyers/lookup", params={"user_id": "innocent"}, headers=secret_headers)
    assert buyer.status_code == 200 and buyer.json()["event_count"] == 1
    q = client.get("/v1/quarantine", headers=secret_headers)
    assert q.status_code == 200
    assert [(i["reason_code"], i["payload"]) for i in q.json()["items"]] == [("timestamp_out_of_range", bad)]
    assert client.get("/v1/export", headers=secret_headers).status_code == 200


def test_the_edges_of_the_range_are_accepted_and_read_back(client, write_headers, secret_headers) -> None:
    edges = [
        {**INNOCENT, "userId": "first", "messageId": "e1", "timestamp": "1970-01-01T00:00:00Z"},
        {**INNOCENT, "userId": "last", "messageId": "e2", "timestamp": "9999-12-31T23:59:59.999999Z"},
    ]
    assert _batch(client, write_headers, edges)["accepted"] == 2
    for user, when in (("first", "1970-01-01T00:00:00Z"), ("last", "9999-12-31T23:59:59.999999Z")):
        buyer = client.get("/v1/buyers/lookup", params={"user_id": user}, headers=secret_headers).json()
        events = client.get(f"/v1/buyers/{buyer['id']}/events", headers=secret_headers).json()["items"]
        assert [e["timestamp"] for e in events] == [when]
        assert client.get(f"/v1/buyers/{buyer['id']}/export", headers=secret_headers).status_code == 200
        assert client.delete(f"/v1/buyers/{buyer['id']}", headers=secret_headers).status_code == 200


@pytest.mark.parametrize("depth", [255, 600, 1022])
def test_an_event_nested_deeper_than_storable_is_quarantined_as_text(
    client, write_headers, secret_headers, depth
) -> None:
    # The event is nested `depth` levels (over the 254 orjson writes), the body depth + 2 (within its 1024).
    props = '{"a":' * (depth - 1) + "1" + "}" * (depth - 1)
    deep = '{"type":"track","userId":"deep","event":"x","messageId":"deep-1","properties":' + props + "}"
    text = ('{"batch":[' + deep + "," + orjson.dumps(INNOCENT).decode() + "]}").encode()
    r = client.post("/v1/batch", headers=write_headers, content=text)
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["accepted"], body["quarantined"], body["errors"][0]["code"]) == (1, 1, "nesting_too_deep")
    item = client.get(f"/v1/quarantine/{body['errors'][0]['quarantine_id']}", headers=secret_headers).json()
    assert item["payload"] is None
    assert item["raw"] == deep  # nothing sent is lost


@pytest.mark.parametrize("value", [42, -7, 1.5, 2**63 - 1, "text", True, False, [1, [2]], []])
def test_quarantine_stores_and_lists_any_json_value(client, write_headers, secret_headers, value) -> None:
    body = _batch(client, write_headers, [value, INNOCENT])
    assert (body["accepted"], body["quarantined"], body["errors"][0]["code"]) == (1, 1, "invalid_message")
    r = client.get("/v1/quarantine", headers=secret_headers)
    assert r.status_code == 200
    assert [i["payload"] for i in r.json()["items"]] == [value]
    qid = body["errors"][0]["quarantine_id"]
    assert client.get(f"/v1/quarantine/{qid}", headers=secret_headers).json()["payload"] == value
    replay = client.post(f"/v1/quarantine/{qid}/replay", headers=secret_headers)
    assert (replay.status_code, replay.json()["code"]) == (422, "invalid_message")


def test_dump_deep_writes_the_json_a_client_sent() -> None:
    value = {"a": [1, {"b": None, "c": 'x"\u00e9'}, []], "d": {}, "e": 1.5, "f": True}
    assert json.loads(dump_deep(value)) == value
    nested: list[object] = []
    cursor = nested
    for _ in range(5000):
        cursor.append([])
        cursor = cursor[0]  # type: ignore[assignment]
    assert dump_deep(nested) == "[" * 5001 + "]" * 5001


# -- the column types round-trip every value they accept ----------------------------------------------


def test_datetime_and_json_columns_round_trip_every_accepted_value(engine) -> None:
    table = sa.Table(
        "roundtrip_probe", sa.MetaData(), sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("at", UTCDateTime()), sa.Column("doc", JSONType), prefixes=["TEMPORARY"],
    )  # fmt: skip
    times = [datetime(1, 1, 1, tzinfo=UTC), datetime(999, 6, 1, 12, tzinfo=UTC), datetime(1970, 1, 1, tzinfo=UTC),
             datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC)]  # fmt: skip
    docs = [42, 1.5, "42", True, None, [1], {"a": 2**63 - 1}]
    with engine.connect() as conn:
        table.create(conn)
        rows = [{"id": i, "at": times[i % len(times)], "doc": doc} for i, doc in enumerate(docs)]
        conn.execute(table.insert(), rows)
        got = conn.execute(sa.select(table.c.id, table.c.at, table.c.doc).order_by(table.c.id)).all()
        assert [(r.at, r.doc) for r in got] == [(r["at"], r["doc"]) for r in rows]
        if conn.dialect.name == "sqlite":
            # Rows an older version wrote through the driver with an unpadded year still read back.
            conn.exec_driver_sql(
                "INSERT INTO roundtrip_probe (id, at) VALUES (99, '999-06-01 00:00:00.000000')"
            )
            legacy = conn.execute(sa.select(table.c.at).where(table.c.id == 99)).scalar_one()
            assert legacy == datetime(999, 6, 1, tzinfo=UTC)
            assert driver.read_datetime("999-06-01 00:00:00.000000") == legacy
        conn.rollback()


def test_driver_writes_dates_as_the_orm_reads_them() -> None:
    for when in (datetime(5, 2, 3, tzinfo=UTC), datetime(999, 6, 1, 1, 2, 3, 4, tzinfo=UTC)):
        stored = driver._sqlite_value(when)
        assert stored[:4] == f"{when.year:04d}"
        assert driver.read_datetime(stored) == when


@pytest.mark.parametrize(
    ("context", "code"),
    [('{"library":{"name":"a\\u0000b"}}', "invalid_characters"),
     ('{"x":' + '{"a":' * 300 + "1" + "}" * 300 + "}", "nesting_too_deep")],
)  # fmt: skip
def test_a_batch_context_that_cannot_be_stored_quarantines_its_events_not_the_request(
    client, write_headers, secret_headers, context, code
) -> None:
    text = '{"batch":[' + orjson.dumps(INNOCENT).decode() + '],"context":' + context + "}"
    r = client.post("/v1/batch", headers=write_headers, content=text.encode())
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["accepted"], body["quarantined"], body["errors"][0]["code"]) == (0, 1, code)
    item = client.get(f"/v1/quarantine/{body['errors'][0]['quarantine_id']}", headers=secret_headers).json()
    event = orjson.dumps(INNOCENT).decode()
    assert item["raw"] == '{"context":' + context + ',"event":' + event + "}"  # the JSON text sent


def test_touchpoint_values_longer_than_their_columns_are_cut_or_flagged(client, write_headers, db) -> None:
    from sqlalchemy import select

    from offerloop.models import Touchpoint

    page = {"type": "page", "userId": "long", "name": "P", "messageId": "long-1",
            "context": {"page": {"url": "https://creator.example/?gclid=" + "g" * 400,
                                 "referrer": "https://" + "r" * 300 + ".example/"}}}  # fmt: skip
    body = _batch(client, write_headers, [page, INNOCENT])
    assert (body["accepted"], body["quarantined"]) == (2, 0)
    with db.read() as session:
        tp = session.scalars(select(Touchpoint).where(Touchpoint.click_id.is_not(None))).one()
        assert (tp.click_id, tp.referrer_host) == ("g" * 255, None)
        assert {"truncated:gclid", "malformed:referrer"} <= set(tp.flags)
