"""Journeys the clock starts: an end coming within a window (``expiring``) and a schedule's ticks.

One recurring job (``delivery.clock``, ``schedule_tasks.py``) passes over every live journey with such a
trigger, in one transaction per pass, and enters buyers through the engine, whose occurrence key (the
run's ``trigger_message_id``) makes every entry happen once however often a pass runs again:

- ``expiring``: ``expiring:<what>:<id>:<end>`` — once per thing and end time; a renewal or extension moves
  the end, which is a new occurrence. The window is read a page at a time from a cursor kept in the
  journey's ``expiring`` tick row, restarting from the soonest end once it reaches the window's end.
- ``schedule``: ``schedule:<tick>`` — the buyers matching the schedule's ``where`` at each tick, scanned a
  page of buyer ids at a time from the tick row's cursor until done. In the workspace's zone the tick is an
  instant; in each buyer's zone it is a wall time, scanned when the first zone on Earth reaches it, and each
  buyer's run starts at that wall time in their own zone.

A pass considers at most ``BUDGET`` entries, then asks to run again at once; otherwise it runs again at the
next schedule tick or after ``EVERY_S``, whichever is sooner.
"""

from __future__ import annotations

import calendar
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, Final
from zoneinfo import ZoneInfo

from sqlalchemy.orm import Session

from offerloop.delivery import audience, clock_repository, rules, sending
from offerloop.delivery.exceptions import JourneyError
from offerloop.delivery.journeys import engine, spec
from offerloop.entitlements import service as entitlements_service
from offerloop.identity import service as identity_service
from offerloop.models import JourneyTick, JourneyVersion
from offerloop.pipeline import log as pipeline_log
from offerloop.subscriptions import service as subscriptions_service

CLOCK: Final = "delivery.clock"
EVERY_S: Final = 60.0
PAGE: Final = 200  # buyers or ending things read per query
BUDGET: Final = 2000  # entries considered per pass: one transaction stays small
JOURNEYS_PAGE: Final = 500
GRACE: Final = timedelta(days=1)  # a tick missed by more than this (the server was down) is skipped
EARLIEST: Final = ZoneInfo("Etc/GMT-14")  # UTC+14: the first zone where a wall time comes
EXPIRING_TICK: Final = "expiring"


@dataclass
class Pass:
    now: datetime
    budget: int
    more: bool = False
    next_at: datetime = field(default_factory=lambda: datetime.max.replace(tzinfo=UTC))


def run(session: Session, now: datetime) -> datetime:
    """One pass over every live journey with a clock trigger; when the clock should pass again."""
    done = Pass(now=now, budget=BUDGET, next_at=now + timedelta(seconds=EVERY_S))
    after: int | None = None
    while True:
        rows = clock_repository.live_journeys(session, after_id=after, limit=JOURNEYS_PAGE)
        for row in rows:
            try:
                journey = engine.definition(row)
            except JourneyError:
                continue  # a stored definition this release no longer reads: the API shows it
            if journey.trigger.expiring is not None:
                _expiring(session, row, journey, journey.trigger.expiring, done)
            elif journey.trigger.schedule is not None:
                _scheduled(session, row, journey, journey.trigger.schedule, done)
        if len(rows) < JOURNEYS_PAGE:
            break
        after = rows[-1].id
    return now if done.more else done.next_at


# -- expiring ---------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Ending:
    id: str
    buyer_id: str
    ends_at: datetime
    properties: dict[str, Any]


def _iso(at: datetime) -> str:
    return at.astimezone(UTC).isoformat()


def ending(
    session: Session, workspace_id: str, expiring: spec.Expiring, now: datetime,
    after: tuple[datetime, str] | None, limit: int,
) -> list[Ending]:  # fmt: skip
    """A page of the things whose end is within the window, soonest first, after ``after``."""
    end = now + timedelta(seconds=expiring.within)
    if expiring.what == "entitlement":
        grants = entitlements_service.ending_between(session=session, workspace_id=workspace_id, start=now,
                                                     end=end, after=after, limit=limit)  # fmt: skip
        return [
            Ending(
                g.id,
                g.buyer_id,
                g.access_ends_at,
                {
                    "what": "entitlement",
                    "entitlement_id": g.id,
                    "component": g.component,
                    "ref": g.ref,
                    "source": g.source,
                    "ends_at": _iso(g.access_ends_at),
                },
            )
            for g in grants
            if g.access_ends_at is not None
        ]
    found = subscriptions_service.ending_between(session=session, workspace_id=workspace_id, what=expiring.what,
                                                 start=now, end=end, after=after, limit=limit)  # fmt: skip
    return [
        Ending(
            sub.id,
            sub.buyer_id,
            at,
            {
                "what": expiring.what,
                "subscription_id": sub.id,
                "plan": sub.offer_key,
                "status": sub.status,
                "ends_at": _iso(at),
            },
        )
        for sub, at in found
    ]


def _cursor(text: str | None) -> tuple[datetime, str] | None:
    if not text or "|" not in text:
        return None
    at, _, object_id = text.partition("|")
    return datetime.fromisoformat(at), object_id


def _expiring(session: Session, row: JourneyVersion, journey: spec.Journey, expiring: spec.Expiring,
              done: Pass) -> None:  # fmt: skip
    workspace_id, now = row.workspace_id, done.now
    state = clock_repository.add_tick(session, workspace_id, journey.name, EXPIRING_TICK, now)
    after = _cursor(state.cursor)
    seq = pipeline_log.head(session, workspace_id)
    while done.budget > 0:
        page = ending(session, workspace_id, expiring, now, after, PAGE)
        for item in page:
            done.budget -= 1
            props = item.properties
            if expiring.component is not None and not engine.granted_matches(
                expiring.component, str(props["component"]), str(props["ref"])
            ):
                continue
            engine.enter(session, workspace_id, row, journey, engine.Entry(
                buyer_id=item.buyer_id, trigger_id=f"expiring:{expiring.what}:{item.id}:{props['ends_at']}",
                name=f"{expiring.what} ending", properties=props, timezone=None, timestamp=now, seq=seq), now)  # fmt: skip
        if len(page) < PAGE:
            state.cursor = None  # the whole window seen: the next pass starts again from its soonest end
            return
        after = (page[-1].ends_at, page[-1].id)
        state.cursor = f"{_iso(after[0])}|{after[1]}"
    done.more = True


# -- schedules --------------------------------------------------------------------------------------------


def _on(schedule: spec.Schedule, day: date) -> bool:
    if schedule.every == "day":
        return True
    if schedule.every == "week":
        return spec.WEEKDAYS[day.weekday()] in (schedule.days or ["mon"])
    wanted = [int(d) for d in (schedule.days or [1])]
    last = calendar.monthrange(day.year, day.month)[1]
    return day.day in wanted or (day.day == last and any(d > last for d in wanted))


def latest_tick(schedule: spec.Schedule, now: datetime, tz: ZoneInfo) -> datetime | None:
    """The last tick at or before ``now`` (within two months), as UTC."""
    clock, today = time.fromisoformat(schedule.at), now.astimezone(tz).date()
    for back in range(63):
        day = today - timedelta(days=back)
        if _on(schedule, day):
            at = rules.at_local(day, clock, tz)
            if at <= now:
                return at
    return None


def next_tick(schedule: spec.Schedule, now: datetime, tz: ZoneInfo) -> datetime | None:
    """The first tick after ``now`` (within two months), as UTC."""
    clock, today = time.fromisoformat(schedule.at), now.astimezone(tz).date()
    for ahead in range(63):
        day = today + timedelta(days=ahead)
        if _on(schedule, day):
            at = rules.at_local(day, clock, tz)
            if at > now:
                return at
    return None


def _scheduled(session: Session, row: JourneyVersion, journey: spec.Journey, schedule: spec.Schedule,
               done: Pass) -> None:  # fmt: skip
    workspace_id, now = row.workspace_id, done.now
    home = rules.zone(sending.workspace_rules(session, workspace_id).default_timezone)
    tz = EARLIEST if schedule.zone == "buyer" else home
    coming = next_tick(schedule, now, tz)
    if coming is not None:
        done.next_at = min(done.next_at, coming)
    due = latest_tick(schedule, now, tz)
    if due is None:
        return
    local = due.astimezone(tz)
    name = local.strftime("%Y-%m-%dT%H:%M") if schedule.zone == "buyer" else due.strftime("%Y-%m-%dT%H:%MZ")
    state = clock_repository.tick(session, workspace_id, journey.name, name)
    if state is None:
        if due < row.created_at or now - due > GRACE:
            return  # before the journey existed, or missed while the server was down
        state = clock_repository.add_tick(session, workspace_id, journey.name, name, now)
    if state.done:
        return
    _scan(session, row, journey, schedule, state, local.date(), home, done)


def _scan(session: Session, row: JourneyVersion, journey: spec.Journey, schedule: spec.Schedule,
          state: JourneyTick, day: date, home: ZoneInfo, done: Pass) -> None:  # fmt: skip
    workspace_id, now = row.workspace_id, done.now
    seq = pipeline_log.head(session, workspace_id)
    clock = time.fromisoformat(schedule.at)
    while done.budget > 0:
        ids = identity_service.live_buyer_ids(session=session, workspace_id=workspace_id, after=state.cursor,
                                              limit=PAGE)  # fmt: skip
        for buyer_id in ids:
            done.budget -= 1
            start, zone_name = None, None
            if schedule.zone == "buyer":
                who = audience.recipient(session, workspace_id, buyer_id)
                zone_name = who.timezone if who is not None else None
                start = rules.at_local(day, clock, rules.zone(zone_name, home.key))
            entered = engine.enter(session, workspace_id, row, journey, engine.Entry(
                buyer_id=buyer_id, trigger_id=f"schedule:{state.tick}", name=f"schedule {journey.name}",
                properties={"tick": state.tick}, timezone=zone_name, timestamp=now, seq=seq, start_at=start),
                now, where=schedule.where)  # fmt: skip
            state.entered += int(entered)
        if ids:
            state.cursor = ids[-1]
        if len(ids) < PAGE:
            state.done, state.finished_at = True, now
            return
    done.more = True
