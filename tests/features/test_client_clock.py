"""Local-time features read the skew-corrected event time, never the device clock; the `share` kind
(issue 9, item 12)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from offerloop.db.uow import Database
from offerloop.events import service as event_service
from offerloop.features import service as features_service
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
ARRIVAL = datetime(2026, 12, 2, 15, 0, tzinfo=UTC)  # a Wednesday
NEW_YORK = ZoneInfo("America/New_York")
SKEWS = [timedelta(0), timedelta(hours=2), timedelta(hours=-2), timedelta(hours=2, minutes=17, seconds=3)]


def _iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _a_late_friday(now: datetime) -> datetime:
    """23:30 on a Friday in New York, at least a week before ``now`` (so the Monday after is past too)."""
    day = (now - timedelta(days=7)).astimezone(NEW_YORK).date()
    friday = day - timedelta(days=(day.weekday() - 4) % 7)
    return datetime(friday.year, friday.month, friday.day, 23, 30, tzinfo=NEW_YORK)


def _sdk_batch(
    user: str, events: list[tuple[str, str, datetime, dict[str, Any]]], skew: timedelta
) -> dict[str, Any]:
    """What an SDK on a device whose clock is ``skew`` off sends now: timestamp and sentAt on that clock."""
    sent = datetime.now(UTC)
    return {
        "batch": [
            {"messageId": f"{user}-{i}", "type": kind, "userId": user, **({"event": name} if kind == "track" else {"name": name}),
             "timestamp": _iso(at + skew), "properties": props, "context": {"timezone": "America/New_York"}}
            for i, (kind, name, at, props) in enumerate(events)
        ],
        "sentAt": _iso(sent + skew),
    }  # fmt: skip


def test_a_device_clock_off_by_hours_changes_no_local_time_feature(
    client: Any, write_headers: dict[str, str], secret_headers: dict[str, str]
) -> None:
    """Over HTTP: the same three events from devices whose clocks are right, 2 h fast, 2 h slow and 2 h 17 min
    fast (each with a consistent sentAt) give the same weekend share, active hour and drop delay.  On the device
    clock they would be 2/3 or 1/3 weekend, hour 1 or 21, and 125 or 0 minutes."""
    friday = _a_late_friday(datetime.now(UTC))
    release = friday - timedelta(minutes=5)
    events = [
        ("track", "Drop Viewed", friday, {"drop_id": "d1", "release_at": _iso(release)}),
        ("page", "Drops", friday + timedelta(minutes=15), {}),
        ("page", "Home", friday + timedelta(days=2, hours=1), {}),  # Monday 00:30
    ]
    seen = []
    for n, skew in enumerate(SKEWS):
        response = client.post("/v1/batch", json=_sdk_batch(f"clock{n}", events, skew), headers=write_headers)
        assert response.status_code == 200, response.text
        assert (response.json()["accepted"], response.json()["errors"]) == (3, [])
        buyer = client.get(
            "/v1/buyers/lookup", params={"user_id": f"clock{n}"}, headers=secret_headers
        ).json()
        features = client.get(f"/v1/buyers/{buyer['id']}/state", headers=secret_headers).json()["features"]
        seen.append((features["weekend_share"], features["active_hour"], features["drop_views"]))
        # 5 minutes plus the time the request took (the server reads its own clock on arrival)
        assert features["minutes_to_first_drop_view"] == pytest.approx(5.0, abs=1 / 60), skew
    assert seen == [(0.0, 23, 1)] * len(SKEWS)


def test_a_backfill_without_sent_at_keeps_its_timestamps(db: Database, workspace: WorkspaceCreated) -> None:
    """Segment's historical import: a server sends ``timestamp`` and no ``sentAt`` (nothing to correct), so a
    history arriving months later keeps its weekdays and delays; a merge's replay gives the same values."""
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
    assert (live["weekend_share"], live["active_hour"]) == (1.0, 9)
    assert live["minutes_to_first_drop_view"] == 3.0
    assert live["drop_views"] == 2.0
    with db.write() as session:
        rebuilt = features_service.rebuild(session=session, workspace_id=workspace.id, buyer_ids=[buyer.id])
    assert (rebuilt[buyer.id]["weekend_share"], rebuilt[buyer.id]["active_hour"]) == (1.0, 9)
    assert rebuilt[buyer.id]["minutes_to_first_drop_view"] == 3.0


def test_a_history_whose_sent_at_is_months_old_lands_on_its_arrival_day(
    db: Database, workspace: WorkspaceCreated
) -> None:
    """The other side of the correction: a sender that stamps ``sentAt`` at the event time and delivers months
    later is, for the server, a device whose clock is months slow -- the events are stored on arrival."""
    saturday = datetime(2026, 8, 1, 16, 3, tzinfo=UTC)
    with db.write() as session:
        message = {**_message(1, saturday), "sentAt": _iso(saturday + timedelta(seconds=2))}
        batch = event_service.prepare_batch([message], received_at=ARRIVAL, max_event_bytes=32768)
        assert event_service.ingest(session=session, workspace_id=workspace.id, batch=batch).accepted == 1
    with db.read() as session:
        buyer = identity_service.lookup(session=session, workspace_id=workspace.id, user_id="u1")
        live = features_service.read(session=session, workspace_id=workspace.id, buyer_id=buyer.id)
    assert (live["weekend_share"], live["active_hour"]) == (0.0, 6)  # Wednesday 06:59:58 in Los Angeles


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
    with pytest.raises(ValueError) as info:
        spec_of({"name": "s", "kind": "share", "of": [{"type": "page"}]})
    assert str(info.value) == "features[0]: missing required key 'match' for kind share"


def _message(i: int, when: datetime, **extra: Any) -> dict[str, Any]:
    return {
        "messageId": f"m{i}", "type": "track", "event": "Drop Viewed", "userId": "u1",
        "timestamp": when.isoformat(),
        "properties": {"drop_id": "d1", "release_at": "2026-08-01T16:00:00Z"},
        "context": {"timezone": "America/Los_Angeles"}, **extra,
    }  # fmt: skip


@pytest.mark.parametrize(
    ("when", "zone"),
    [
        # the last hour there is, already in year 10000 in Kiritimati (UTC+14): UTC's Friday
        (datetime(9999, 12, 31, 23, 0, tzinfo=UTC), "Pacific/Kiritimati"),
        (datetime(9999, 12, 31, 23, 0, tzinfo=UTC), "America/New_York"),  # Friday 18:00 there
        (datetime(1970, 1, 1, 0, 0, tzinfo=UTC), "America/New_York"),  # Wednesday 19:00 in 1969
    ],
)
def test_local_time_at_the_edges_of_time_never_breaks_ingest(when: datetime, zone: str) -> None:
    spec = spec_of(WEEKEND, HOUR, TO_DROP)
    event = ev("Drop Viewed", when, {"release_at": "2026-08-01T00:00:00Z"}, tz=zone)
    assert run(spec, [event])["weekend_share"] == 0.0


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
