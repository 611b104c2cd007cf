"""The demo templates on a simulated audience whose true personas are known (issue 9, item 12).

A seeded audience goes through the real ingest path (validation, identity, features and personas at
ingest, one transaction per batch of 100) on the test database; then every buyer the simulator
identified is compared with its true persona. The templates may only read behaviour that real ingestion
provides: the second half of this file checks that against the messages the simulator emits.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import orjson

from offerloop.cli.persona_truth import ingest_in_process, persona_confusion
from offerloop.core.clock import utcnow
from offerloop.db.uow import Database
from offerloop.events import service as event_service
from offerloop.features.spec import BUILTIN_FEATURES, load_feature_spec
from offerloop.features.state import new_state, read_features
from offerloop.personas import service as persona_service
from offerloop.personas.templates import load_templates_file
from offerloop.sim.audience import PERSONAS, Audience
from offerloop.workspaces.schemas import WorkspaceCreated

DEMO = Path(__file__).resolve().parents[2] / "examples" / "demo"
TEMPLATES = load_templates_file(DEMO / "personas.yaml")
SPEC = load_feature_spec((DEMO / "features.yaml").read_text())
# Small enough to ingest in well under a minute on SQLite, large enough for 40+ identified buyers a persona.
AUDIENCE = {"buyers": 700, "events": 28_000, "seed": 11}
# Identify traits the simulator derives from the hidden persona rather than from behaviour: every
# simulated loyalist carries plan=inner_circle, subscribed or not. A template must never reach them.
PERSONA_DERIVED_FIELDS = {"plan"}


def test_demo_templates_recover_the_simulated_personas(db: Database, workspace: WorkspaceCreated) -> None:
    audience = Audience(**AUDIENCE)
    with db.write() as session:
        event_service.set_signal_config(
            session=session, workspace_id=workspace.id, source=(DEMO / "signals.yaml").read_text(), actor="t"
        )
        persona_service.set_templates(
            session=session, workspace_id=workspace.id, source=(DEMO / "personas.yaml").read_text(), actor="t"
        )
    ingest_in_process(db, workspace.id, audience.batches(100, sent_at=utcnow))
    with db.read() as session:
        confusion = persona_confusion(session=session, workspace_id=workspace.id, buyers=audience.buyers)

    identified = [b for b in audience.buyers if b.user_id is not None]
    assert confusion.total == len(identified)
    assert confusion.personas == PERSONAS
    assert min(confusion.support(p) for p in PERSONAS) >= 40, confusion.format()
    assert confusion.accuracy >= 0.85, confusion.format()
    for persona in PERSONAS:
        assert confusion.recall(persona) >= 0.70, f"{persona}\n{confusion.format()}"
    assert confusion.unassigned_share <= 0.05, confusion.format()


# ---- the templates read behaviour only ----------------------------------------------------------


def _matches(feature: dict[str, Any]) -> Iterator[dict[str, Any]]:
    for key in ("match", "of", "set_on", "clear_on"):
        yield from feature.get(key) or []
    for stage in feature.get("stages") or []:
        yield from stage.get("match") or []
        for requirement in stage.get("all") or []:
            yield from requirement.get("match") or []


def _reads(feature: dict[str, Any]) -> set[tuple[str | None, str | None, str]]:
    """(event name glob, message type, property path) for every property a feature definition reads."""
    out: set[tuple[str | None, str | None, str]] = set()
    paths = [
        feature.get("value"),
        feature.get("since_property"),
        (feature.get("fallback") or {}).get("value"),
    ]
    for match in _matches(feature):
        for path in [*match["where"], *(p for p in paths if p)]:
            out.add((match["event"], match["type"], path))
    return out


def _has_path(data: Any, path: str) -> bool:
    if not isinstance(data, dict):
        return False
    if path in data:
        return True
    head, _, rest = path.partition(".")
    return bool(rest) and _has_path(data.get(head), rest)


def test_template_features_are_computed_from_events_by_the_demo_spec() -> None:
    produced = set(read_features(new_state(), SPEC, now=datetime(2026, 9, 1, tzinfo=UTC))) | set(
        BUILTIN_FEATURES
    )
    used = {signal.feature for persona in TEMPLATES.personas for signal in persona.signals}
    assert used <= produced, used - produced


def test_templates_reference_no_simulator_only_field() -> None:
    """Each event and property the templates' features read is in what ingestion receives from the
    simulator -- the Segment messages -- and none names or derives from the hidden persona."""
    used = {signal.feature for persona in TEMPLATES.personas for signal in persona.signals}
    definitions = {f["name"]: f for f in SPEC.model_dump(mode="json")["features"] if f["name"] in used}
    reads = set().union(*(_reads(f) for f in definitions.values()))
    events = {m["event"] for f in definitions.values() for m in _matches(f) if m["event"]}
    assert reads and events

    seen_events: set[str] = set()
    found: set[tuple[str | None, str | None, str]] = set()
    for message in Audience(buyers=300, events=12_000, seed=5).messages():
        text = orjson.dumps(message).decode()
        assert not any(persona in text for persona in PERSONAS)  # the label never reaches ingestion
        name = message.get("event") if message.get("type") == "track" else None
        if name:
            seen_events.add(name)
        payload = message.get("traits") if message.get("type") == "identify" else message.get("properties")
        for event, kind, path in reads:
            if event is not None and not (name and fnmatch.fnmatch(name.casefold(), event.casefold())):
                continue
            if kind is not None and message.get("type") != kind:
                continue
            if _has_path(payload, path):
                found.add((event, kind, path))

    unseen = {e for e in events if not any(fnmatch.fnmatch(s.casefold(), e.casefold()) for s in seen_events)}
    assert unseen == {"Subscription Cancel*"}  # the simulator's members never cancel; a real shop sends it
    assert found == reads, reads - found
    assert not {path.split(".")[0] for _, _, path in reads} & PERSONA_DERIVED_FIELDS
