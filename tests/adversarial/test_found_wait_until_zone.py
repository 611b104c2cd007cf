"""``wait_until: "09:00"`` is the next 09:00 on the buyer's own wall clock; the buyer's zone is the trait
``timezone``, else the trigger event's ``context.timezone``, else the workspace's ``default_timezone``
(docs/delivery.md). The run's wait fell back to UTC instead of the workspace's zone: a New York creator's
"09:00" reached buyers with no zone of their own at 04:00 or 05:00 local time."""

from __future__ import annotations

from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from tests.delivery.test_journeys import identify, run_jobs, track

from offerloop.core.clock import utcnow
from offerloop.delivery import rules

MORNING = """
name: morning
trigger: {event: Signed Up}
steps:
  - wait_until: "09:00"
  - send: {channel: inapp, subject: "Good morning", text: "hi"}
"""


def test_found_wait_until_without_a_buyer_zone_is_on_the_workspaces_clock(
    client, db, write_headers, secret_headers
) -> None:
    r = client.put("/v1/delivery/settings", headers=secret_headers, json={
        "send_window": {"start": "00:00", "end": "00:00"}, "caps": {}, "overall_cap": None,
        "default_timezone": "America/New_York"})  # fmt: skip
    assert r.status_code == 200, r.text
    assert (
        client.put("/v1/journeys/morning", headers=secret_headers, json={"yaml": MORNING}).status_code == 200
    )
    identify(client, write_headers, "nz")  # no timezone trait, no context.timezone
    track(client, write_headers, "nz", "Signed Up", {}, "s-nz")
    now = utcnow() + timedelta(seconds=1)
    run_jobs(db, now)
    [run] = client.get("/v1/journey-runs", headers=secret_headers).json()["items"]
    assert (run["state"], run["step"]) == ("active", "0")
    due = datetime.fromisoformat(run["due_at"])
    assert due == rules.next_local(now, "09:00", ZoneInfo("America/New_York"))
    assert due.astimezone(ZoneInfo("America/New_York")).strftime("%H:%M") == "09:00"


NEWS = """
name: news
trigger: {event: Signed Up}
steps:
  - send: {channel: inapp, subject: "News", text: "hi"}
"""


def test_found_the_send_window_of_a_buyer_known_only_by_the_events_zone_is_on_their_clock(
    client, db, write_headers, secret_headers
) -> None:
    """The send gate read the trait and then the workspace's zone, skipping the trigger event's
    ``context.timezone``: a Tokyo buyer's marketing went out at Tokyo's 3 a.m. inside a UTC window."""
    assert client.put("/v1/journeys/news", headers=secret_headers, json={"yaml": NEWS}).status_code == 200
    identify(client, write_headers, "tk")
    r = client.post("/v1/track", headers=write_headers, json={
        "userId": "tk", "event": "Signed Up", "messageId": "s-tk", "timestamp": utcnow().isoformat(),
        "context": {"timezone": "Asia/Tokyo"}})  # fmt: skip
    assert r.status_code == 200, r.text
    now = utcnow() + timedelta(seconds=1)
    start = now.replace(minute=0, second=0, microsecond=0)  # a UTC window open now, shut in Tokyo (UTC+9)
    window = {"start": start.strftime("%H:%M"), "end": (start + timedelta(hours=2)).strftime("%H:%M")}
    r = client.put("/v1/delivery/settings", headers=secret_headers,
                   json={"send_window": window, "caps": {}, "overall_cap": None})  # fmt: skip
    assert r.status_code == 200, r.text
    run_jobs(db, now)
    [message] = client.get("/v1/messages", headers=secret_headers).json()["items"]
    assert message["status"] == "queued"
    detail = client.get(f"/v1/messages/{message['id']}", headers=secret_headers).json()
    assert datetime.fromisoformat(detail["not_before"]) == rules.next_local(
        now, window["start"], ZoneInfo("Asia/Tokyo")
    )
