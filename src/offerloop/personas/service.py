"""Micro-personas: a posterior over the workspace's templates, recomputed whenever features change."""

from __future__ import annotations

import dataclasses
from collections import defaultdict
from datetime import UTC, date, datetime, time, timedelta
from typing import Any, Literal

from sqlalchemy.orm import Session

from offerloop.core.cache import VersionedCache
from offerloop.core.clock import utcnow
from offerloop.core.errors import ValidationFailed
from offerloop.core.pages import decode_cursor, page_of
from offerloop.personas import repository
from offerloop.personas.exceptions import NoPersonaTemplates
from offerloop.personas.inference import PersonaPosterior, infer, signal_confidence_from
from offerloop.personas.schemas import (
    PersonaChangeRead,
    PersonaCount,
    PersonaCountPage,
    PersonaRead,
    PersonaSeries,
    PersonaTimeline,
    TemplatesRead,
)
from offerloop.personas.templates import PersonaSet, load_templates
from offerloop.workspaces import service as workspace_service

REASONS_KEPT = 5
_sets: VersionedCache[PersonaSet | None] = VersionedCache(max_size=1024)  # per workspace, its current version


def templates_for(session: Session, workspace_id: str) -> tuple[int, PersonaSet | None]:
    return workspace_service.cached_config(
        session=session, workspace_id=workspace_id, field="persona_templates", cache=_sets,
        parse=lambda stored: None if stored is None else load_templates(stored),
    )  # fmt: skip


def set_templates(*, session: Session, workspace_id: str, source: str | dict[str, Any], actor: str) -> int:
    """Validate and store persona templates (YAML text or a mapping); returns the new version."""
    # load_templates raises TemplateError (a 422 domain error listing every problem with its field path).
    persona_set = load_templates(source)
    version = workspace_service.set_config(
        session=session, workspace_id=workspace_id, field="persona_templates", value=persona_set.to_mapping()
    )
    workspace_service.audit(
        session, workspace_id, actor=actor, action="personas.update", target_type="workspace",
        target_id=workspace_id, details={"version": version},
    )  # fmt: skip
    return version


def _reason(contribution: Any) -> dict[str, Any]:
    if dataclasses.is_dataclass(contribution):
        # A contribution's fields are scalars: a shallow copy is what asdict() would give, without its
        # deep-copying recursion (this runs for the top reasons of every buyer of every batch).
        return {f.name: getattr(contribution, f.name) for f in dataclasses.fields(contribution)}
    return dict(contribution.model_dump())


def refresh(
    *,
    session: Session,
    workspace_id: str,
    features: dict[str, dict[str, Any]],
    at: dict[str, datetime],
) -> dict[str, PersonaPosterior]:
    """Infer the persona of every buyer in ``features``; keep a history row whenever it changes."""
    plan = plan_refresh(session=session, workspace_id=workspace_id, features=features, at=at)
    if plan is None:
        return {}
    _save(session, workspace_id, plan)
    return plan.posteriors


@dataclasses.dataclass
class RefreshPlan:
    """:func:`refresh`'s reads and inference, not yet written (see :func:`save_refresh`)."""

    version: int
    before: dict[str, str]  # each buyer's persona when it was read
    rows: list[dict[str, Any]]
    changes: list[dict[str, Any]]
    posteriors: dict[str, PersonaPosterior]


def plan_refresh(
    *, session: Session, workspace_id: str, features: dict[str, dict[str, Any]], at: dict[str, datetime]
) -> RefreshPlan | None:
    """Read and infer as :func:`refresh` does, writing nothing (None: no templates, or no buyers)."""
    version, personas = templates_for(session, workspace_id)
    if personas is None or not features:
        return None
    before = repository.current(session, workspace_id, features)
    now = utcnow()
    rows, changes, out = [], [], {}
    for buyer_id, feats in features.items():
        posterior = infer(feats, personas, signal_confidence=signal_confidence_from(feats))
        out[buyer_id] = posterior
        rows.append(
            {
                "buyer_id": buyer_id,
                "workspace_id": workspace_id,
                "persona": posterior.name,
                "confidence": posterior.confidence,
                "posterior": posterior.posterior,
                "reasons": [_reason(c) for c in posterior.contributions[:REASONS_KEPT]],
                "templates_version": version,
                "updated_at": now,
            }
        )
        previous = before.get(buyer_id)
        if previous != posterior.name:
            changes.append(
                {
                    "workspace_id": workspace_id,
                    "buyer_id": buyer_id,
                    "from_persona": previous,
                    "to_persona": posterior.name,
                    "confidence": posterior.confidence,
                    "at": at.get(buyer_id, now),
                }
            )
    return RefreshPlan(version, before, rows, changes, out)


def stale_buyers(*, session: Session, workspace_id: str, plan: RefreshPlan) -> set[str]:
    """The buyers of a plan made in an earlier transaction whose current persona (which decides insert or
    update, and the history row) is no longer what it read; every buyer when the templates changed."""
    if templates_for(session, workspace_id)[0] != plan.version:
        return set(plan.posteriors)
    now = repository.current(session, workspace_id, plan.posteriors)
    return {b for b in plan.posteriors if now.get(b) != plan.before.get(b)}


def refresh_without(plan: RefreshPlan, buyers: set[str]) -> RefreshPlan:
    """The plan for its other buyers only."""
    return dataclasses.replace(
        plan,
        before={b: p for b, p in plan.before.items() if b not in buyers},
        rows=[r for r in plan.rows if r["buyer_id"] not in buyers],
        changes=[c for c in plan.changes if c["buyer_id"] not in buyers],
        posteriors={b: p for b, p in plan.posteriors.items() if b not in buyers},
    )


def save_refresh(*, session: Session, workspace_id: str, plan: RefreshPlan) -> None:
    """Write a plan (without its :func:`stale_buyers`)."""
    _save(session, workspace_id, plan)


def _save(session: Session, workspace_id: str, plan: RefreshPlan) -> None:
    repository.save(session, workspace_id, plan.rows, set(plan.before))
    repository.add_history(session, plan.changes)
    if plan.changes:
        # a change is no event of its own (a templates update re-scores without one): the analytics state of
        # these buyers (current persona, first assignments) follows in the same transaction
        from offerloop.analytics import service as analytics_service  # analytics reads personas

        analytics_service.refresh(
            session=session, workspace_id=workspace_id, buyer_ids={str(c["buyer_id"]) for c in plan.changes}
        )


def get(*, session: Session, workspace_id: str, buyer_id: str) -> PersonaRead | None:
    row = repository.get(session, workspace_id, buyer_id)
    if row is None:
        return None
    return PersonaRead(
        name=row.persona,
        confidence=row.confidence,
        posterior=row.posterior,
        reasons=row.reasons,
        templates_version=row.templates_version,
        updated_at=row.updated_at,
        history=[
            PersonaChangeRead(from_=h.from_persona, to=h.to_persona, confidence=h.confidence, at=h.at)
            for h in repository.history(session, workspace_id, buyer_id)
        ],
    )


def brief(*, session: Session, workspace_id: str, buyer_id: str) -> dict[str, Any] | None:
    """Name, confidence and posterior only (the decision path; no history)."""
    found = repository.brief(session, workspace_id, buyer_id)
    return None if found is None else {"name": found[0], "confidence": found[1], "posterior": found[2]}


def latest_changes(
    *, session: Session, workspace_id: str, buyer_ids: list[str]
) -> dict[str, tuple[int, str, datetime]]:
    """(change id, persona entered, when) of each buyer's most recent persona change."""
    found = repository.latest_changes(session, workspace_id, buyer_ids)
    return {b: (c.id, c.to_persona, c.at) for b, c in found.items()}


def distribution(*, session: Session, workspace_id: str) -> list[tuple[str, int]]:
    return repository.distribution(session, workspace_id)


def distribution_page(
    *, session: Session, workspace_id: str, limit: int, cursor: str | None = None
) -> PersonaCountPage:
    """How many buyers hold each persona, most first (ties by name): a workspace has a few dozen at most."""
    after = decode_cursor(cursor, types=(int, str))
    rows = sorted(distribution(session=session, workspace_id=workspace_id), key=lambda r: (-r[1], r[0]))
    if after is not None:
        rows = [r for r in rows if (-r[1], r[0]) > (-after[0], after[1])]
    page = page_of(
        rows, limit, key=lambda r: (r[1], r[0]), item=lambda r: PersonaCount(persona=r[0], buyers=r[1])
    )
    return PersonaCountPage(**dict(page))


MAX_PERIODS = 366


def timeline(
    *,
    session: Session,
    workspace_id: str,
    periods: int,
    bucket: Literal["day", "week"] = "day",
    today: date | None = None,
) -> PersonaTimeline:
    """How many buyers held each persona at the end of each of the last ``periods`` days (or ISO weeks, Monday
    first), up to today: today's counts less the net persona changes after each period. Reads the current
    counts and the changes of the period grouped by day, never the buyers one by one. Buyers erased since keep
    their history but not their persona, so a period before an erasure counts them no more (never below 0)."""
    if not 1 <= periods <= MAX_PERIODS:
        raise ValidationFailed(f"periods must be between 1 and {MAX_PERIODS}", details={"field": "periods"})
    today = today or utcnow().date()
    step = 7 if bucket == "week" else 1
    last = today - timedelta(days=today.weekday()) if bucket == "week" else today
    starts = [last - timedelta(days=step * (periods - 1 - i)) for i in range(periods)]
    since = datetime.combine(starts[0], time.min, tzinfo=UTC)
    current = dict(repository.distribution(session, workspace_id))
    net: dict[str, list[int]] = defaultdict(lambda: [0] * periods)
    entered: dict[str, list[int]] = defaultdict(lambda: [0] * periods)
    for day, source, target, n in repository.changes_by_day(session, workspace_id, since):
        i = min((day - starts[0]).days // step, periods - 1)
        if i < 0:
            continue
        net[target][i] += n
        entered[target][i] += n
        if source is not None:
            net[source][i] -= n
    names = sorted(set(current) | set(net), key=lambda p: (-current.get(p, 0), p))
    series = []
    for name in names:
        flows, held, after = net[name], [0] * periods, 0
        for i in range(periods - 1, -1, -1):
            held[i] = max(0, current.get(name, 0) - after)
            after += flows[i]
        series.append(PersonaSeries(persona=name, held=held, entered=entered[name]))
    return PersonaTimeline(bucket=bucket, periods=starts, personas=series)


def templates_read(*, session: Session, workspace_id: str) -> TemplatesRead:
    version, personas = templates_for(session, workspace_id)
    return TemplatesRead(version=version, templates=personas.to_mapping() if personas else None)


def forget(*, session: Session, workspace_id: str, buyer_ids: list[str]) -> None:
    repository.forget(session, workspace_id, buyer_ids)


def require_templates(*, session: Session, workspace_id: str) -> PersonaSet:
    _, personas = templates_for(session, workspace_id)
    if personas is None:
        raise NoPersonaTemplates("this workspace has no persona templates yet: PUT /v1/personas/templates")
    return personas


def prior(*, session: Session, workspace_id: str) -> dict[str, float]:
    """The templates' prior over personas: what a brand-new buyer is assumed to be (cold start)."""
    _, personas = templates_for(session, workspace_id)
    return dict(personas.priors()) if personas else {}
