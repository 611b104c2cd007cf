"""Journeys started by an entitlement grant, by an end coming within a window and by a schedule — through
the API and the real jobs, the clock moved by passing ``now`` to the job runner."""

from __future__ import annotations

from datetime import UTC, datetime, time, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select
from tests.checkout.test_checkout_flow import buy, pay
from tests.delivery.test_journeys import identify, track

from offerloop.core.clock import utcnow
from offerloop.db.uow import Database
from offerloop.delivery import repository, schedule
from offerloop.delivery.journeys import engine
from offerloop.jobs import runner
from offerloop.models import Job, JourneyTick, JourneyVersion
from offerloop.worker import registry

registry.load()
MINUTE = timedelta(minutes=1)


def put_journey(client: TestClient, headers: dict[str, str], text: str) -> dict[str, Any]:
    r = client.put(
        "/v1/delivery/settings",
        headers=headers,
        json={"send_window": {"start": "00:00", "end": "00:00"}, "caps": {}, "overall_cap": None},
    )
    assert r.status_code == 200, r.text
    name = text.split("name:", 1)[1].split()[0]
    r = client.put(f"/v1/journeys/{name}", headers=headers, json={"yaml": text})
    assert r.status_code == 200, r.text
    return dict(r.json())


def runs(client: TestClient, headers: dict[str, str], journey: str) -> list[dict[str, Any]]:
    r = client.get("/v1/journey-runs", headers=headers, params={"journey": journey})
    assert r.status_code == 200, r.text
    return sorted(r.json()["items"], key=lambda x: x["id"])


def buyer_id(client: TestClient, headers: dict[str, str], user: str) -> str:
    r = client.get("/v1/buyers/lookup", headers=headers, params={"user_id": user})
    assert r.status_code == 200, r.text
    return str(r.json()["id"])


def clock(db: Database, now: datetime) -> list[str]:
    """A runner starting at ``now`` (it queues the recurring clock job), then every clock pass due."""
    runner.ensure_recurring(db, now=now, only=(schedule.CLOCK,))
    done: list[str] = []
    for _ in range(50):
        ran = runner.run_due(db, owner="t", now=now, only=(schedule.CLOCK,))
        if not ran:
            return done
        done += [r.status for r in ran]
    raise AssertionError("the clock never finished its passes")


def grant(client: TestClient, headers: dict[str, str], buyer: str, component: str, ref: str,
          ends: datetime | None = None, source: str = "admin-grant") -> dict[str, Any]:  # fmt: skip
    body = {"buyer_id": buyer, "component": component, "ref": ref, "source": source,
            "access_ends_at": ends.isoformat() if ends else None}  # fmt: skip
    r = client.post("/v1/entitlements", headers=headers, json=body)
    assert r.status_code == 200, r.text
    return dict(r.json())


# -- entitlement granted ----------------------------------------------------------------------------------

GRANTED = """
name: lesson_welcome
category: transactional
trigger: {entitlement: {granted: "module:lesson-*"}}
reentry: always
steps:
  - send: {channel: inapp, subject: "Lesson unlocked", text: "{{ event.properties.ref }} is yours"}
"""


def test_a_grant_starts_the_journey_once_per_start_of_access(
    client, db, write_headers, secret_headers
) -> None:
    put_journey(client, secret_headers, GRANTED)
    identify(client, write_headers, "gia")
    gia = buyer_id(client, secret_headers, "gia")
    first = grant(client, secret_headers, gia, "module", "lesson-1")
    grant(client, secret_headers, gia, "download", "lesson-1")  # another component: no match
    grant(client, secret_headers, gia, "module", "course-2")  # another ref: no match
    grant(
        client, secret_headers, gia, "module", "lesson-1"
    )  # granted again while active: a renewal, no new grant
    started = runs(client, secret_headers, "lesson_welcome")
    assert [(r["buyer_id"], r["trigger_message_id"]) for r in started] == [
        (gia, f"entitlement-{first['id']}-granted")
    ]
    events = client.get(f"/v1/buyers/{gia}/events", headers=secret_headers).json()["items"]
    assert sorted(e["properties"]["ref"] for e in events if e["name"] == "Entitlement Granted") == [
        "course-2", "lesson-1", "lesson-1"]  # fmt: skip
    # Revoked, then given back: access starts again, so the journey starts again (re-entry always).
    r = client.post(f"/v1/entitlements/{first['id']}/revoke", headers=secret_headers, json={"reason": "test"})
    assert r.status_code == 200, r.text
    runner.run_due(db, owner="t", now=utcnow(), only=(engine.RUN, engine.SEND), limit=50)
    grant(client, secret_headers, gia, "module", "lesson-1")
    assert len(runs(client, secret_headers, "lesson_welcome")) == 2


def test_a_tracked_look_alike_of_a_grant_starts_nothing(client, db, write_headers, secret_headers) -> None:
    put_journey(client, secret_headers, GRANTED)
    identify(client, write_headers, "eve")
    track(client, write_headers, "eve", "Entitlement Granted",
          {"component": "module", "ref": "lesson-9", "entitlement_id": "ent_forged"}, "forged-1")  # fmt: skip
    assert runs(client, secret_headers, "lesson_welcome") == []


# -- an end within a window -------------------------------------------------------------------------------

ACCESS_ENDING = """
name: access_ending
category: transactional
trigger: {expiring: {what: entitlement, within: 3d, component: "module:*"}}
reentry: always
steps:
  - send: {channel: inapp, subject: "Access ends soon", text: "until {{ event.properties.ends_at }}"}
"""


def test_an_access_end_fires_once_when_it_comes_within_the_window(
    client, db, write_headers, secret_headers
) -> None:
    put_journey(client, secret_headers, ACCESS_ENDING)
    identify(client, write_headers, "ola")
    ola = buyer_id(client, secret_headers, "ola")
    t0 = utcnow()
    ends = t0 + timedelta(days=5)
    row = grant(client, secret_headers, ola, "module", "m-1", ends)
    grant(client, secret_headers, ola, "download", "d-1", ends)  # not a module: the journey's filter
    grant(client, secret_headers, ola, "module", "m-forever")  # no end: never expiring
    clock(db, t0 + timedelta(days=2) - MINUTE)
    assert runs(client, secret_headers, "access_ending") == []  # 3d before the end is not reached
    clock(db, t0 + timedelta(days=2) + MINUTE)
    key = f"expiring:entitlement:{row['id']}:{ends.astimezone(UTC).isoformat()}"
    assert [r["trigger_message_id"] for r in runs(client, secret_headers, "access_ending")] == [key]
    # A restarted runner passes again at once: the occurrence key keeps it to one run.
    clock(db, t0 + timedelta(days=2) + 2 * MINUTE)
    clock(db, t0 + timedelta(days=3))
    assert len(runs(client, secret_headers, "access_ending")) == 1
    # Extended (a renewal): a new end is a new occurrence, when it in turn comes within the window.
    runner.run_due(db, owner="t", now=t0 + timedelta(days=3), only=(engine.RUN, engine.SEND), limit=50)
    later = t0 + timedelta(days=10)
    grant(client, secret_headers, ola, "module", "m-1", later)
    clock(db, t0 + timedelta(days=6))
    assert len(runs(client, secret_headers, "access_ending")) == 1
    clock(db, t0 + timedelta(days=7) + MINUTE)
    assert [r["trigger_message_id"] for r in runs(client, secret_headers, "access_ending")] == [
        key, f"expiring:entitlement:{row['id']}:{later.astimezone(UTC).isoformat()}"]  # fmt: skip


def test_the_window_is_read_a_page_at_a_time(client, db, write_headers, secret_headers, monkeypatch) -> None:
    monkeypatch.setattr(schedule, "PAGE", 2)
    monkeypatch.setattr(schedule, "BUDGET", 2)
    put_journey(client, secret_headers, ACCESS_ENDING)
    t0 = utcnow()
    buyers = []
    for i in range(5):
        identify(client, write_headers, f"pg{i}")
        buyers.append(buyer_id(client, secret_headers, f"pg{i}"))
        grant(client, secret_headers, buyers[-1], "module", "m", t0 + timedelta(days=1, minutes=i))
    # Two entries a pass: 2 + 2 + 1, each pass but the last asking to run again at once.
    assert clock(db, t0 + MINUTE) == ["again"] * 3
    assert sorted(r["buyer_id"] for r in runs(client, secret_headers, "access_ending")) == sorted(buyers)
    with db.read() as session:
        job_at = session.scalar(select(Job.run_at).where(Job.kind == schedule.CLOCK))
    assert job_at == t0 + MINUTE + timedelta(seconds=schedule.EVERY_S)


TRIAL = """
offers:
  - key: circle
    kind: subscription
    title: "Circle"
    prices: {USD: 3900}
    interval: month
    trial_days: 7
"""
TRIAL_ENDING = (
    Path(__file__).parents[2] / "examples" / "demo" / "journeys" / "trial_ending.yaml"
).read_text()


def test_the_shipped_trial_ending_journey_fires_three_days_before(
    client, db, write_headers, secret_headers
) -> None:
    assert client.put("/v1/offers/catalog", headers=secret_headers, json={"text": TRIAL}).status_code == 200
    put_journey(client, secret_headers, TRIAL_ENDING)
    identify(client, write_headers, "tia")
    order = buy(client, secret_headers, "circle", user="tia")
    pay(client, secret_headers, order["id"])
    subs = client.get("/v1/subscriptions", headers=secret_headers).json()["items"]
    assert [s["status"] for s in subs] == ["trialing"]
    trial_end = datetime.fromisoformat(subs[0]["state"]["trial_end"])
    clock(db, trial_end - timedelta(days=3) - MINUTE)
    assert runs(client, secret_headers, "trial_ending") == []
    clock(db, trial_end - timedelta(days=3) + MINUTE)
    clock(db, trial_end - timedelta(days=2))
    started = runs(client, secret_headers, "trial_ending")
    assert [r["trigger_message_id"] for r in started] == [
        f"expiring:trial:{subs[0]['id']}:{trial_end.astimezone(UTC).isoformat()}"
    ]


PERIOD_ENDING = """
name: renewal_coming
category: transactional
trigger: {expiring: {what: subscription, within: 7d}}
reentry: always
steps:
  - send: {channel: inapp, subject: "Renews soon", text: "{{ event.properties.ends_at }}"}
"""


def test_a_paying_subscription_period_end_fires_and_a_trial_does_not(client, db, write_headers,
                                                                      secret_headers) -> None:  # fmt: skip
    catalog = TRIAL + TRIAL.replace("offers:\n", "").replace("circle", "plain").replace(
        "trial_days: 7", "trial_days: 0"
    )
    assert client.put("/v1/offers/catalog", headers=secret_headers, json={"text": catalog}).status_code == 200
    put_journey(client, secret_headers, PERIOD_ENDING)
    for user, plan in (("pia", "plain"), ("tom", "circle")):
        identify(client, write_headers, user)
        pay(client, secret_headers, buy(client, secret_headers, plan, user=user)["id"])
    subs = {
        s["offer_key"]: s for s in client.get("/v1/subscriptions", headers=secret_headers).json()["items"]
    }
    assert {k: s["status"] for k, s in subs.items()} == {"plain": "active", "circle": "trialing"}
    ends = datetime.fromisoformat(subs["plain"]["state"]["current_period_end"])
    clock(db, ends - timedelta(days=7) - MINUTE)
    assert runs(client, secret_headers, "renewal_coming") == []
    clock(db, ends - timedelta(days=7) + MINUTE)
    assert [r["trigger_message_id"] for r in runs(client, secret_headers, "renewal_coming")] == [
        f"expiring:subscription:{subs['plain']['id']}:{ends.astimezone(UTC).isoformat()}"
    ]


# -- schedules --------------------------------------------------------------------------------------------

DIGEST = """
name: weekly_digest
trigger:
  schedule: {every: week, at: "09:00", days: [mon], where: {traits.plan: {eq: pro}}}
reentry: always
steps:
  - send: {channel: inapp, subject: "Your week", text: "tick {{ event.properties.tick }}"}
"""


def _next_monday_at(after: datetime, clock_at: time, tz: ZoneInfo) -> datetime:
    day = after.astimezone(tz).date()
    while True:
        at = datetime.combine(day, clock_at, tzinfo=tz)
        if day.weekday() == 0 and at > after:
            return at.astimezone(UTC)
        day += timedelta(days=1)


def test_a_schedule_enters_the_matching_buyers_once_per_tick(client, db, write_headers, secret_headers,
                                                              monkeypatch) -> None:  # fmt: skip
    monkeypatch.setattr(schedule, "PAGE", 2)  # three buyers and the ones of other tests: several pages
    r = client.put("/v1/delivery/settings", headers=secret_headers,
                   json={"default_timezone": "Europe/Paris", "send_window": {"start": "00:00", "end": "00:00"},
                         "caps": {}, "overall_cap": None})  # fmt: skip
    assert r.status_code == 200, r.text
    r = client.put("/v1/journeys/weekly_digest", headers=secret_headers, json={"yaml": DIGEST})
    assert r.status_code == 200, r.text
    for user, plan in (("pa", "pro"), ("pb", "free"), ("pc", "pro")):
        identify(client, write_headers, user, plan=plan)
    pros = sorted(buyer_id(client, secret_headers, u) for u in ("pa", "pc"))
    tick = _next_monday_at(utcnow(), time(9, 0), ZoneInfo("Europe/Paris"))
    clock(db, tick - MINUTE)
    assert runs(client, secret_headers, "weekly_digest") == []
    clock(db, tick + MINUTE)
    name = tick.strftime("%Y-%m-%dT%H:%MZ")
    started = runs(client, secret_headers, "weekly_digest")
    assert sorted((r["buyer_id"], r["trigger_message_id"]) for r in started) == [
        (b, f"schedule:{name}") for b in pros
    ]
    clock(db, tick + 2 * MINUTE)  # a restart: the tick is done, nobody enters twice
    assert len(runs(client, secret_headers, "weekly_digest")) == 2
    with db.read() as session:
        ticks = session.query(JourneyTick.tick, JourneyTick.done, JourneyTick.entered).all()
    assert [tuple(t) for t in ticks] == [(name, True, 2)]
    # The next week's tick is a new occurrence (the runs of the first have finished).
    runner.run_due(db, owner="t", now=tick + 3 * MINUTE, only=(engine.RUN, engine.SEND), limit=50)
    clock(db, tick + timedelta(days=7) + MINUTE)
    assert len(runs(client, secret_headers, "weekly_digest")) == 4


BUYER_ZONE = """
name: morning_note
trigger:
  schedule: {every: day, at: "09:00", zone: buyer}
steps:
  - send: {channel: inapp, subject: "Good morning", text: "hi"}
"""


def test_a_schedule_in_the_buyers_zone_starts_each_run_at_their_own_wall_time(client, db, write_headers,
                                                                              secret_headers) -> None:  # fmt: skip
    put_journey(client, secret_headers, BUYER_ZONE)
    identify(client, write_headers, "tokyo", timezone="Asia/Tokyo")
    identify(client, write_headers, "nyc", timezone="America/New_York")
    ids = {u: buyer_id(client, secret_headers, u) for u in ("tokyo", "nyc")}
    # The first zone on Earth (UTC+14) reaches 09:00 of a day: that day's tick is scanned.
    first = ZoneInfo("Etc/GMT-14")
    day = utcnow().astimezone(first).date() + timedelta(days=1)
    scan_at = datetime.combine(day, time(9, 0), tzinfo=first).astimezone(UTC)
    clock(db, scan_at + MINUTE)
    started = {r["buyer_id"]: r for r in runs(client, secret_headers, "morning_note")}
    local = {u: datetime.combine(day, time(9, 0), tzinfo=ZoneInfo(z)).astimezone(UTC)
             for u, z in (("tokyo", "Asia/Tokyo"), ("nyc", "America/New_York"))}  # fmt: skip
    assert {u: datetime.fromisoformat(started[ids[u]]["due_at"]) for u in ids} == local
    assert {r["trigger_message_id"] for r in started.values()} == {f"schedule:{day.isoformat()}T09:00"}
    runner.run_due(db, owner="t", now=local["tokyo"] + MINUTE, only=(engine.RUN, engine.SEND), limit=50)
    inbox = client.get("/v1/messages", headers=secret_headers).json()["items"]
    assert [m["buyer_id"] for m in inbox] == [ids["tokyo"]]  # New York's morning has not come yet


@pytest.mark.parametrize(
    ("trigger", "problem"),
    [
        ("{schedule: {every: week, at: '9am'}}", "trigger.schedule.at: must be a local time HH:MM"),
        ("{schedule: {every: month, at: '09:00', days: [mon]}}", "every month takes days of the month"),
        ("{schedule: {every: day, at: '09:00'}, where: {traits.plan: {eq: pro}}}", "goes in schedule.where"),
        ("{expiring: {what: coupon, within: 3d}}", "trigger.expiring.what"),
        ("{expiring: {what: trial, within: soon}}", "must be a duration"),
        ("{expiring: {what: trial, within: 100000000w}}", "must be at most 3650d (ten years)"),
        ("{expiring: {what: trial, within: 3d, component: module}}", "only for what: entitlement"),
        ("{entitlement: {granted: 'Module Lesson'}}", "a component or component:ref"),
        ("{event: A, entitlement: {granted: module}}", "give exactly one of event, persona, entitlement"),
    ],
)
def test_trigger_mistakes_are_named_by_line(client, secret_headers, trigger: str, problem: str) -> None:
    text = f"name: bad\ntrigger: {trigger}\nsteps:\n  - send: {{channel: inapp, text: hi}}\n"
    r = client.put("/v1/journeys/bad", headers=secret_headers, json={"yaml": text})
    assert r.status_code == 422, r.text
    assert problem in r.text and ":2:" in r.text, r.text


def test_a_stored_version_this_release_no_longer_reads_stops_no_other_journey(
    client, db, write_headers, secret_headers, workspace
) -> None:
    """Found over HTTP: `within: 100000000w` was stored, and every clock pass then failed (a date past the
    year 9999), for every workspace's journeys. Durations are now at most ten years; a version stored before
    that bound is skipped by the clock and by the event consumer instead of failing them."""
    r = client.put("/v1/journeys/forever", headers=secret_headers, json={"yaml": (
        "name: forever\ntrigger: {expiring: {what: trial, within: 100000000w}}\nsteps: [{exit: done}]")})  # fmt: skip
    assert (r.status_code, r.json()["error"]["code"]) == (422, "invalid_journey")
    stored = {
        "forever": {"name": "forever", "trigger": {"expiring": {"what": "trial", "within": "100000000w"}},
                    "steps": [{"exit": "done"}]},
        "slow": {"name": "slow", "trigger": {"event": "Signed Up"}, "steps": [{"wait": "99999999999999999d"}]},
    }  # fmt: skip
    with db.write() as session:
        for name, definition in stored.items():
            repository.add_journey_version(session, workspace.id, JourneyVersion(
                workspace_id=workspace.id, name=name, version=1, latest=True, definition=definition,
                content_version=f"old-{name}", created_at=utcnow()))  # fmt: skip
    put_journey(client, secret_headers, ACCESS_ENDING)
    put_journey(
        client, secret_headers, "name: hello\ntrigger: {event: Signed Up}\nsteps: [{exit: said hello}]"
    )
    identify(client, write_headers, "ola")
    ola = buyer_id(client, secret_headers, "ola")
    t0 = utcnow()
    grant(client, secret_headers, ola, "module", "m-1", t0 + timedelta(days=2))
    assert set(clock(db, t0 + MINUTE)) == {"again"}  # the recurring clock: passed, and due again
    assert len(runs(client, secret_headers, "access_ending")) == 1
    track(client, write_headers, "ola", "Signed Up", {}, "su-ola")
    runner.run_due(db, owner="t", now=utcnow(), only=(engine.RUN,), limit=50)
    assert [r["state"] for r in runs(client, secret_headers, "hello")] == ["exited"]
    assert runs(client, secret_headers, "slow") == [] and runs(client, secret_headers, "forever") == []
