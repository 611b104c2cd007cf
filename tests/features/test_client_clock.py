"""Local-time features read the client's own clock; the `share` kind (issue 9, item 12)."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from offerloop.db.uow import Database
from offerloop.events import service as event_service
from offerloop.features import service as features_service
from offerloop.features.state import FeatureEvent
from offerloop.identity import service as identity_service
from offerloop.workspaces.schemas import WorkspaceCreated

from .helpers import ev, run, spec_of

WEEKEND = {"name": "weekend_share", "kind": "weekday_share", "weekdays": [5, 6]}
HOUR = {"name": "active_hour", "kind": "top_local_hour"}
TO_DROP = {
    "name": "to_drop",
    "kind": "min_delay_minutes",
    "match": {"event": "Drop Viewed"},
    "since_property": "release_at",
}
IMPORT_DAY = datetime(2026, 12, 4, 15, 0, tzinfo=UTC)  # a Friday: where skew correction puts a replay
ARRIVAL = datetime(2026, 12, 2, 15, 0, tzinfo=UTC)  # a Wednesday


def on_client_clock(event: FeatureEvent, client: datetime) -> FeatureEvent:
    return dataclasses.replace(event, client_timestamp=client)


def test_weekday_and_hour_come_from_the_clients_clock_in_its_zone() -> None:
    spec = spec_of(WEEKEND, HOUR)
    events = [
        # Stored on the import day; the device said Saturday 2026-08-01 22:30 in New York (02:30Z Sunday).
        on_client_clock(ev("A", IMPORT_DAY, tz="America/New_York"), datetime(2026, 8, 2, 2, 30, tzinfo=UTC)),
        # Sunday 10:15 in Berlin (08:15Z).
        on_client_clock(ev("B", IMPORT_DAY, tz="Europe/Berlin"), datetime(2026, 8, 2, 8, 15, tzinfo=UTC)),
        # Wednesday 22:05 in New York.
        on_client_clock(ev("C", IMPORT_DAY, tz="America/New_York"), datetime(2026, 8, 6, 2, 5, tzinfo=UTC)),
        # No client time: the stored (corrected) time, Friday 15:00 UTC.
        ev("D", IMPORT_DAY),
    ]
    features = run(spec, events)
    assert features["weekend_share"] == 2 / 4
    assert features["active_hour"] == 22
    assert run(spec, events[3:])["weekend_share"] == 0.0  # without the client's clock: the import day


def test_drop_delay_is_measured_on_the_clients_clock() -> None:
    spec = spec_of(TO_DROP)
    release = {"release_at": "2026-08-20T18:00:00Z"}
    viewed = on_client_clock(
        ev("Drop Viewed", IMPORT_DAY, release), datetime(2026, 8, 20, 18, 4, 30, tzinfo=UTC)
    )
    later = on_client_clock(ev("Drop Viewed", IMPORT_DAY, release), datetime(2026, 8, 22, 18, 0, tzinfo=UTC))
    assert run(spec, [later, viewed])["to_drop"] == 4.5
    # Without a client time the stored time is used, as before.
    assert (
        run(spec, [ev("Drop Viewed", datetime(2026, 8, 20, 19, 0, tzinfo=UTC), release)])["to_drop"] == 60.0
    )


def test_share_kind() -> None:
    views = [{"type": "page"}, {"type": "screen"}, {"event": "Product Viewed"}]
    spec = spec_of(
        {"name": "pv_share", "kind": "share", "match": {"event": "Product Viewed"}, "of": views},
        {
            "name": "coupon_share",
            "kind": "share",
            "match": {"event": "Order Completed", "where": {"coupon": "X"}},
        },
        suppressed_factor=0.5,
    )
    events = [
        ev("Home", type="page"),
        ev("Library", type="screen"),
        ev("Pricing", type="page", suppressed=True),  # counts 0.5
        ev("Product Viewed", props={"product_id": "p1"}),
        ev("Product Viewed", props={"product_id": "p2"}),
        ev("Lesson Started"),  # in neither `of` nor `match` of pv_share
        ev("Order Completed", props={"coupon": "X"}),
        ev("Order Completed", props={}),
    ]
    features = run(spec, events)
    assert features["pv_share"] == 2 / 4.5
    assert features["coupon_share"] == 1 / 7.5  # without `of`: among every event
    assert run(spec, [])["pv_share"] == 0.0
    assert run(spec, [ev("Lesson Started")])["pv_share"] == 0.0


def test_share_needs_a_match() -> None:
    with pytest.raises(ValueError, match=r"features\[0\]\.match"):
        spec_of({"name": "s", "kind": "share", "of": [{"type": "page"}]})


def _message(i: int, when: datetime, **extra: Any) -> dict[str, Any]:
    sent = when + timedelta(seconds=2)
    return {
        "messageId": f"m{i}", "type": "track", "event": "Drop Viewed", "userId": "u1",
        "timestamp": when.isoformat(), "sentAt": sent.isoformat(),
        "properties": {"drop_id": "d1", "release_at": "2026-08-01T16:00:00Z"},
        "context": {"timezone": "America/Los_Angeles"}, **extra,
    }  # fmt: skip


def test_an_imported_history_keeps_the_buyers_weekends(db: Database, workspace: WorkspaceCreated) -> None:
    """Through ingest: the events' sentAt is months before they arrive, so the stored times are the arrival
    day; the buyer's weekdays and the drop delay still come out of the client's clock."""
    saturday = datetime(2026, 8, 1, 16, 3, tzinfo=UTC)  # Saturday 09:03 in Los Angeles
    sunday = datetime(2026, 8, 2, 18, 0, tzinfo=UTC)
    with db.write() as session:
        batch = event_service.prepare_batch(
            [_message(1, saturday), _message(2, sunday)], received_at=ARRIVAL, max_event_bytes=32768
        )
        assert event_service.ingest(session=session, workspace_id=workspace.id, batch=batch).accepted == 2
    with db.read() as session:
        buyer = identity_service.lookup(session=session, workspace_id=workspace.id, user_id="u1")
        live = features_service.read(session=session, workspace_id=workspace.id, buyer_id=buyer.id)
    assert live["weekend_share"] == 1.0
    assert live["minutes_to_first_drop_view"] == 3.0
    assert live["drop_views"] == 2.0
    # A merge replays the stored events: the same values from the stored original timestamps.
    with db.write() as session:
        rebuilt = features_service.rebuild(session=session, workspace_id=workspace.id, buyer_ids=[buyer.id])
    assert rebuilt[buyer.id]["weekend_share"] == 1.0
    assert rebuilt[buyer.id]["minutes_to_first_drop_view"] == 3.0


@pytest.mark.parametrize(
    ("client", "zone", "expected"),
    [
        # a client clock outside 1970..9999 is not believed: the stored time (a Friday) is used
        (datetime(1, 1, 1, tzinfo=UTC), "America/New_York", 0.0),
        (datetime(1969, 12, 27, tzinfo=UTC), "America/New_York", 0.0),
        # the last moment there is, already in year 10000 in Kiritimati (UTC+14): UTC's Friday
        (datetime(9999, 12, 31, 23, 0, tzinfo=UTC), "Pacific/Kiritimati", 0.0),
        (datetime(9999, 12, 31, 23, 0, tzinfo=UTC), "America/New_York", 0.0),  # Friday 18:00 there
    ],
)
def test_a_client_clock_at_the_edges_of_time_never_breaks_ingest(
    client: datetime, zone: str, expected: float
) -> None:
    spec = spec_of(WEEKEND, HOUR, TO_DROP)
    event = on_client_clock(
        ev("Drop Viewed", IMPORT_DAY, {"release_at": "2026-08-01T00:00:00Z"}, tz=zone), client
    )
    assert run(spec, [event])["weekend_share"] == expected


def test_edge_times_over_http(
    client: Any, write_headers: dict[str, str], secret_headers: dict[str, str]
) -> None:
    """Times a client may send: accepted (200), never a 500, features still read."""
    batch = {
        "batch": [
            {"type": "track", "event": "Drop Viewed", "userId": "edge", "messageId": f"e{i}", "timestamp": t,
             "sentAt": s, "properties": {"release_at": r}, "context": {"timezone": z}}
            for i, (t, s, r, z) in enumerate([
                ("0001-01-01T00:00:00Z", "0001-01-01T00:00:01Z", "0001-01-01T00:00:00Z", "America/New_York"),
                ("9999-12-31T23:59:00Z", "9999-12-31T23:59:01Z", "9999-12-31T00:00:00Z", "Pacific/Kiritimati"),
                ("2026-08-01T12:00:00Z", "2026-08-01T12:00:01Z", "not a time", "Nowhere/Else"),
            ])
        ]
    }  # fmt: skip
    response = client.post("/v1/batch", json=batch, headers=write_headers)
    assert response.status_code == 200, response.text
    assert (response.json()["accepted"], response.json()["errors"]) == (3, [])
    buyer = client.get("/v1/buyers/lookup", params={"user_id": "edge"}, headers=secret_headers).json()
    state = client.get(f"/v1/buyers/{buyer['id']}/state", headers=secret_headers)
    assert state.status_code == 200
    assert state.json()["features"]["drop_views"] == 3
