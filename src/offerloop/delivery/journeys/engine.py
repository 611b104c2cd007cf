"""Running journeys: entering buyers on their trigger events, ending runs on goals, and advancing a run
through its steps (waits, branches, decisions, sends) when it is due.

A run advances in a job of kind ``delivery.run`` keyed by the run's id; a wait returns the time the job is
next due. Sending queues a message in the outbox (unique per journey version, step, buyer and occurrence)
for the ``delivery.send`` job; nothing leaves the machine inside a run's transaction.
"""

from __future__ import annotations

import fnmatch
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final

from sqlalchemy.orm import Session

from offerloop.core import conditions
from offerloop.core.cache import VersionedCache
from offerloop.db import locks
from offerloop.decisions import service as decisions_service
from offerloop.decisions.schemas import DecideRequest
from offerloop.delivery import audience, repository, rules, sending, templates
from offerloop.delivery.exceptions import JourneyError
from offerloop.delivery.journeys import spec
from offerloop.delivery.journeys.loading import journey_from_data
from offerloop.delivery.links import Links
from offerloop.entitlements import service as entitlements_service
from offerloop.events import service as events_service
from offerloop.experiments import service as experiments_service
from offerloop.experiments.exceptions import ExperimentNotFound
from offerloop.identity import service as identity_service
from offerloop.jobs import queue
from offerloop.models import JourneyRun, JourneyVersion
from offerloop.personas import service as personas_service
from offerloop.pipeline.registry import LogEvent

RUN: Final = "delivery.run"
SEND: Final = "delivery.send"
MAX_STEPS_PER_PASS: Final = 50  # a run that loops without waiting is stopped here, then continues later

_parsed: VersionedCache[spec.Journey] = VersionedCache(max_size=4096)


def definition(row: JourneyVersion) -> spec.Journey:
    """The validated journey of a stored version (parsed once per process and version); JourneyError when
    this release no longer reads it (a bound added since it was stored)."""
    return _parsed.get_or_load(
        (row.workspace_id, row.name), row.id, lambda: journey_from_data(row.definition)
    )


def readable(row: JourneyVersion) -> spec.Journey | None:
    """``definition``, or None for a stored version this release no longer reads: it starts and advances no
    run (the API still shows it), instead of failing the workspace's event consumer on every event."""
    try:
        return definition(row)
    except JourneyError:
        return None


# -- entering and leaving ---------------------------------------------------------------------------------


def on_events(session: Session, workspace_id: str, events: Sequence[LogEvent], now: datetime) -> None:
    """Goals first (an event can end one run and start another), then triggers: each track event for the
    journeys it names, and each buyer's newest persona change for the journeys waiting for that persona."""
    tracks = [e for e in events if e.type == "track" and e.buyer_id and e.name]
    journeys = [
        (row, journey)
        for row in repository.latest_journeys(session, workspace_id)
        if (journey := readable(row)) is not None
    ]
    if not journeys:
        return
    by_version = {(row.name, row.version): d for row, d in journeys}
    live = [(row, j) for row, j in journeys if not row.paused]
    for event in tracks:
        _goals(session, workspace_id, event, by_version, now)
        if event.name in spec.SENDING_EVENTS:
            continue  # a journey stored before the lint refused these triggers still cannot loop on its sends
        client = events_service.origin_of(event.context) == "client"
        for row, journey in live:
            if client and journey.category == "transactional" and journey.trigger.event is not None:
                # A write key is public (web pages): a buyer-side event cannot make offerloop send mail that
                # skips consent (receipts, dunning) — those come from the server or the creator's secret key.
                continue
            if _fires(session, workspace_id, journey.trigger, event, now):
                tz = (event.context or {}).get("timezone")
                enter(session, workspace_id, row, journey, Entry(
                    buyer_id=event.buyer_id or "", trigger_id=event.message_id, name=event.name or "",
                    properties=event.properties or {}, timezone=tz if isinstance(tz, str) else None,
                    timestamp=event.timestamp, seq=event.seq), now)  # fmt: skip
    by_persona = [(row, j) for row, j in live if j.trigger.persona is not None]
    buyers = sorted({e.buyer_id for e in events if e.buyer_id})
    last_seq = {e.buyer_id: e.seq for e in events if e.buyer_id}
    if by_persona and buyers:
        changes = personas_service.latest_changes(
            session=session, workspace_id=workspace_id, buyer_ids=buyers
        )
        for buyer_id, (change_id, persona, at) in sorted(changes.items()):
            for row, journey in by_persona:
                if journey.trigger.persona == persona:
                    enter(session, workspace_id, row, journey, Entry(
                        buyer_id=buyer_id, trigger_id=f"persona:{change_id}", name=f"persona {persona}",
                        properties={"persona": persona}, timezone=None, timestamp=at,
                        seq=last_seq[buyer_id]), now)  # fmt: skip


def _fires(
    session: Session, workspace_id: str, trigger: spec.Trigger, event: LogEvent, now: datetime
) -> bool:
    if trigger.event is not None:
        return trigger.event == event.name
    if trigger.entitlement is None or event.name != entitlements_service.GRANTED_EVENT:
        return False
    props = event.properties or {}
    component, ref = props.get("component"), props.get("ref")
    if not isinstance(component, str) or not isinstance(ref, str):
        return False
    if not granted_matches(trigger.entitlement.granted, component, ref):
        return False
    # Anyone with a write key can track an event of that name: only a grant the buyer really holds counts.
    return entitlements_service.check(session=session, workspace_id=workspace_id, buyer_id=event.buyer_id or "",
                                      component=component, ref=ref, now=now).allowed  # fmt: skip


def granted_matches(pattern: str, component: str, ref: str) -> bool:
    """``module`` matches every ref of the component; ``module:lesson-*`` its refs by wildcard."""
    if ":" in pattern:
        return fnmatch.fnmatchcase(f"{component}:{ref}", pattern)
    return fnmatch.fnmatchcase(component, pattern)


@dataclass(frozen=True)
class Entry:
    """What starts a run: an event or a persona change, named by ``trigger_id`` (one run per trigger)."""

    buyer_id: str
    trigger_id: str
    name: str
    properties: dict[str, Any]
    timezone: str | None
    timestamp: datetime
    seq: int  # the log position of the trigger: only later events reach the goal
    start_at: datetime | None = None  # when the run's first step is due (default: now)


def _holds(
    where: Any,
    session: Session,
    workspace_id: str,
    buyer_id: str,
    properties: dict[str, Any] | None,
    now: datetime,
) -> bool:
    if where is None:
        return True
    who = audience.recipient(session, workspace_id, buyer_id)
    if who is None:
        return False
    return conditions.evaluate(where, audience.facts(session, workspace_id, who, properties, now), now=now)


def _goals(
    session: Session,
    workspace_id: str,
    event: LogEvent,
    by_version: dict[tuple[str, int], spec.Journey],
    now: datetime,
) -> None:
    for run in repository.active_runs(session, workspace_id, event.buyer_id or ""):
        journey = by_version.get((run.journey, run.version))
        if journey is None:
            stored = repository.journey(session, workspace_id, run.journey, run.version)
            journey = readable(stored) if stored is not None else None
        if journey is None or journey.goal is None or journey.goal.event != event.name:
            continue
        if event.seq <= int(run.context.get("event", {}).get("seq", -1)):
            continue  # the trigger itself, or an event logged before it, is no conversion (client clocks don't matter)
        if _holds(journey.goal.where, session, workspace_id, event.buyer_id or "", event.properties, now):
            _end(run, "converted", f"goal {event.name} ({event.message_id})", now)


def enter(
    session: Session,
    workspace_id: str,
    row: JourneyVersion,
    journey: spec.Journey,
    entry: Entry,
    now: datetime,
    where: Any = None,
) -> bool:
    """Start a run for ``entry`` unless its trigger started one already, re-entry forbids it or the
    condition (the trigger's ``where``, or ``where`` given) does not hold; whether it started one."""

    def attempt() -> bool:
        if repository.run_for_trigger(session, workspace_id, journey.name, entry.buyer_id, entry.trigger_id):
            # this trigger already started a run (the consumer sees an event again after a replay)
            return False
        last = repository.last_run(session, workspace_id, journey.name, entry.buyer_id)
        if last is not None:
            if journey.reentry == "never" or (last.state == "active" and journey.reentry != "always"):
                # "always": every trigger its own run, alongside the ones still running (a receipt each)
                return False
            if not isinstance(journey.reentry, str) and now - last.started_at < timedelta(
                seconds=journey.reentry
            ):
                return False
        condition = where if where is not None else journey.trigger.where
        if not _holds(condition, session, workspace_id, entry.buyer_id, entry.properties, now):
            return False
        start = max(now, entry.start_at or now)
        run = JourneyRun(
            workspace_id=workspace_id, journey=journey.name, version=row.version, buyer_id=entry.buyer_id,
            occurrence=(last.occurrence + 1) if last is not None else 1, state="active", step="0", due_at=start,
            context={"event": {"name": entry.name, "message_id": entry.trigger_id, "properties": entry.properties,
                               "timestamp": entry.timestamp.isoformat(), "seq": entry.seq},
                     "timezone": entry.timezone, "decisions": {}},
            trigger_message_id=entry.trigger_id[:255], started_at=now,
        )  # fmt: skip
        repository.add_run(session, run)
        queue.enqueue(session, kind=RUN, key=str(run.id), workspace_id=workspace_id, run_at=start, now=now)
        return True

    # The events of a merged buyer lie in several partitions, whose journeys steps run at once (PostgreSQL): two
    # may read the buyer's last run and insert the same next occurrence. The second waits for the first to commit
    # and then decides again from the runs it sees (re-entry, the occurrence after the other's); before, its
    # unique violation failed the step into its backoff.
    return locks.retry_on_conflict(session, attempt)


def _merged_into_an_earlier_run(
    session: Session, workspace_id: str, run: JourneyRun, journey: spec.Journey, buyer_id: str
) -> str | None:
    """Why ``run`` ends because its buyer is one with others that entered the journey before it (the reason), or
    None. Buyers who entered separately and merged later are one person: under ``reentry: never`` only the first
    run goes on; under a re-entry duration, only the first of the runs still active (``enter`` would have refused
    the later one for one buyer). ``always`` keeps every run (a receipt per order)."""
    if journey.reentry == "always":
        return None
    family = identity_service.lineage(session=session, workspace_id=workspace_id, buyer_id=buyer_id)
    if len(family) < 2:
        return None  # never merged: nothing else to compare with
    earlier = repository.earlier_run(
        session, workspace_id, run.journey, family, run, active_only=journey.reentry != "never"
    )
    return None if earlier is None else f"buyers merged: run {earlier.id} of {buyer_id} goes on"


def _end(run: JourneyRun, state: str, reason: str, now: datetime) -> None:
    run.state, run.step, run.due_at, run.ended_at, run.end_reason = state, None, None, now, reason[:200]


# -- advancing a run --------------------------------------------------------------------------------------


_HELD: Final = "offerloop.delivery.held_runs"


def hold_runs(session: Session, keys: list[tuple[str, str]]) -> None:
    """Read and lock, in one statement per workspace, the runs a transaction's batch of run jobs will advance."""
    wanted: dict[str, list[int]] = {}
    for workspace_id, key in keys:
        if key.isdigit():
            wanted.setdefault(workspace_id, []).append(int(key))
    held: dict[tuple[str, int], JourneyRun] = {}
    for workspace_id, ids in wanted.items():
        for run in repository.runs_by_id(session, workspace_id, ids, lock=True):
            held[(workspace_id, run.id)] = run
    session.info[_HELD] = held


def advance(
    session: Session, workspace_id: str, run_id: int, now: datetime, links: Links, holdout_share: float
) -> datetime | None:
    """Run the run's steps that are due; when it is next due (None: finished, ended or gone)."""
    run = session.info.get(_HELD, {}).get((workspace_id, run_id))
    if run is None:
        run = repository.run(session, workspace_id, run_id, lock=True)
    if run is None or run.state != "active" or run.step is None:
        return None
    latest = sending.reads_of(session).journey(workspace_id, run.journey)  # once per transaction (a batch)
    if latest is not None and latest.paused:
        _end(run, "exited", "journey paused (kill switch)", now)
        return None
    stored = latest if latest is not None and latest.version == run.version else None
    stored = stored or repository.journey(session, workspace_id, run.journey, run.version)
    if stored is None:
        _end(run, "failed", "journey version missing", now)
        return None
    journey = readable(stored)
    if journey is None:
        _end(run, "failed", "this journey version is no longer valid: store a corrected version", now)
        return None
    who = audience.recipient(session, workspace_id, run.buyer_id)
    if who is None or who.deleted:
        _end(run, "exited", "buyer deleted", now)
        return None
    merged = _merged_into_an_earlier_run(session, workspace_id, run, journey, who.buyer_id)
    if merged is not None:
        _end(run, "exited", merged, now)
        return None
    context = dict(run.context or {})
    for _ in range(MAX_STEPS_PER_PASS):
        path = run.step
        if path is None:
            _end(run, "completed", "all steps done", now)
            break
        step = spec.step_at(journey, path)
        if step is None:
            _end(run, "failed", f"step {path} does not exist", now)
            break
        waiting = context.get("waiting")
        if isinstance(step, spec.WaitStep | spec.WaitUntilStep):
            if waiting is None or waiting.get("step") != path:
                until = _wait_until(step, now, _zone(session, workspace_id, context, who))
                context["waiting"] = {"step": path, "until": until.isoformat()}
                run.context, run.due_at = context, until
                return until
            until = datetime.fromisoformat(waiting["until"])
            if now < until:
                run.due_at = until
                return until
            context.pop("waiting", None)
            run.step = spec.after(journey, path)
            continue
        if isinstance(step, spec.BranchStep):
            facts = audience.facts(
                session, workspace_id, who, context.get("event", {}).get("properties"), now
            )
            keys = spec.experiment_keys(step.branch.when)
            if keys:
                facts["experiments"] = _arms(session, workspace_id, run.buyer_id, keys, now)
                context["experiments"] = {**context.get("experiments", {}), **facts["experiments"]}
            arm = "then" if conditions.evaluate(step.branch.when, facts, now=now) else "else"
            run.step = spec.first_of(journey, f"{path}.{arm}")
            continue
        if isinstance(step, spec.ExitStep):
            _end(run, "exited", step.exit, now)
            break
        if isinstance(step, spec.DecideStep):
            context["decisions"] = {**context.get("decisions", {}), step.decide.as_: _decide(
                session, workspace_id, who, step.decide, holdout_share, now)}  # fmt: skip
        elif isinstance(step, spec.SendStep):
            _queue_send(session, workspace_id, run, journey, step, path, who, context, links, now)
        run.step = spec.after(journey, path)
    else:
        run.context, run.due_at = context, now
        return now  # more steps than one pass runs: continue in the next pass
    run.context = context
    return None


def _arms(
    session: Session, workspace_id: str, buyer_id: str, keys: list[str], now: datetime
) -> dict[str, str]:
    """The buyer's arm in each experiment a branch reads: assigned on first use and its exposure logged (sticky;
    outside the experiment's run, the control, nothing logged). An experiment gone since the journey was
    stored reads as missing (so the condition tests nothing but ``exists: false``/``ne``)."""
    out: dict[str, str] = {}
    for key in keys:
        try:
            assignment = experiments_service.arm_for(
                session=session, workspace_id=workspace_id, key=key, buyer_id=buyer_id, now=now
            )
        except ExperimentNotFound:
            continue
        out[key] = assignment.arm
    return out


def _zone(session: Session, workspace_id: str, context: dict[str, Any], who: audience.Recipient) -> Any:
    """The buyer's zone: the trait ``timezone``, else the trigger event's ``context.timezone``, else the
    workspace's ``default_timezone`` (each only if it is a zone this server knows)."""
    return sending.buyer_zone(session, workspace_id, who, context.get("timezone"))


def _wait_until(step: spec.WaitStep | spec.WaitUntilStep, now: datetime, tz: Any) -> datetime:
    if isinstance(step, spec.WaitStep):
        return now + timedelta(seconds=step.wait)
    return rules.next_local(now, step.wait_until, tz)


def _decide(
    session: Session, workspace_id: str, who: audience.Recipient, decide: spec.Decide, holdout_share: float,
    now: datetime,
) -> dict[str, Any]:  # fmt: skip
    """Ask the decision engine now; the decision is logged with its propensity like any other."""
    actions = {a.key: a for a in decisions_service.list_actions(session=session, workspace_id=workspace_id)}
    candidates = None
    if decide.candidates is not None:
        candidates = [k for k in actions if any(k == c or (c.endswith("*") and k.startswith(c[:-1]))
                                                for c in decide.candidates)]  # fmt: skip
        if not candidates:
            return {"decision_id": None, "action": None, "propensity": None, "title": None, "price_minor": None,
                    "items": []}  # fmt: skip
    request = DecideRequest(user_id=who.user_id or who.buyer_id, placement=decide.placement, k=decide.k,
                            candidates=candidates[:200] if candidates is not None else None)  # fmt: skip
    response = decisions_service.decide(
        session=session, workspace_id=workspace_id, request=request, buyer_id=who.buyer_id,
        consent_personalization=None, holdout_share=holdout_share, now=now,
    )  # fmt: skip
    top = response.items[0] if response.items else None
    action = actions.get(top.id) if top is not None else None
    return {
        "decision_id": response.decision_id,
        "action": top.id if top is not None else None,
        "propensity": top.propensity if top is not None else None,
        "title": action.title if action is not None else None,
        "price_minor": action.price_minor if action is not None else None,
        "items": [i.id for i in response.items],
    }


def message_id(workspace_id: str, key: str, domain: str) -> str:
    """The stable ``Message-ID`` of an outbox key: a re-send after a crash carries the same one."""
    digest = hashlib.sha256(f"{workspace_id}\x00{key}".encode()).hexdigest()[:32]
    return f"<{digest}@{domain}>"


def _queue_send(
    session: Session, workspace_id: str, run: JourneyRun, journey: spec.Journey, step: spec.SendStep, path: str,
    who: audience.Recipient, context: dict[str, Any], links: Links, now: datetime,
) -> None:  # fmt: skip
    key = f"{journey.name}@{run.version}/{spec.step_id(step, path)}/{run.buyer_id}/{run.occurrence}"
    row_id = repository.add_message(session, {
        "workspace_id": workspace_id, "key": key[:255], "run_id": run.id, "journey": journey.name,
        "step": spec.step_id(step, path)[:64], "buyer_id": run.buyer_id, "channel": step.send.channel,
        "category": journey.category, "status": "queued",
        "message_id": message_id(workspace_id, key, sending.mail_domain(links.public_url)),
        "recipient": None, "subject": None, "body": {}, "attempts": 0, "created_at": now,
    })  # fmt: skip
    if row_id is None:
        return  # already queued by an earlier pass of this step
    try:
        rendered = sending.render(session, workspace_id, row_id, step.send, journey, who, context, links, now)
    except templates.RenderError as exc:
        repository.fill_message(session, row_id, {"status": "failed", "detail": f"template: {exc}"[:2000]})
        return
    repository.fill_message(session, row_id, rendered)
    queue.enqueue(session, kind=SEND, key=str(row_id), workspace_id=workspace_id, run_at=now, now=now)
