"""Next best action: candidates → eligibility rules → learning policy (or rules order) → top k, logged.
Outcomes, learning and evaluation live in ``decisions.learning``; this module re-exports them (the service is
what other domains call)."""

from __future__ import annotations

import hashlib
import math
import random
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from offerloop.core.cache import VersionedCache
from offerloop.core.clock import utcnow
from offerloop.core.errors import ValidationFailed
from offerloop.core.ids import new_id
from offerloop.core.pages import decode_cursor, page_of
from offerloop.decisions import repository
from offerloop.decisions.exceptions import DecisionNotFound, UnknownCandidates
from offerloop.decisions.learning import CLOSE_KIND as CLOSE_KIND
from offerloop.decisions.learning import LEARN_KIND as LEARN_KIND
from offerloop.decisions.learning import _schedule_close
from offerloop.decisions.learning import close_due_windows as close_due_windows
from offerloop.decisions.learning import close_windows as close_windows
from offerloop.decisions.learning import configure_learning as configure_learning
from offerloop.decisions.learning import current_policy as current_policy
from offerloop.decisions.learning import evaluate as evaluate
from offerloop.decisions.learning import learn as learn
from offerloop.decisions.learning import learn_key as learn_key
from offerloop.decisions.learning import new_policy as new_policy
from offerloop.decisions.learning import on_events as on_events
from offerloop.decisions.learning import publish as publish
from offerloop.decisions.rules import BuyerView, ineligible_reason
from offerloop.decisions.schemas import (
    ActionIn,
    ActionPage,
    ActionRead,
    DecidedItem,
    DecideRequest,
    DecideResponse,
    DecisionRead,
    ExperimentArm,
    ModelVersionRead,
    PersonaBrief,
)
from offerloop.entitlements import service as entitlements_service
from offerloop.experiments import service as experiments_service
from offerloop.experiments.schemas import Arm
from offerloop.features import service as features_service
from offerloop.identity import service as identity_service
from offerloop.identity.exceptions import BuyerNotFound
from offerloop.ml.base import Action as ModelAction
from offerloop.ml.base import Scored, sample
from offerloop.models import Action, Decision
from offerloop.personas import service as persona_service

ATTRIBUTE_FIELDS = (
    "tags", "level", "format", "price_band", "price_minor", "persona_fit", "placements", "prerequisites",
    "min_stage", "frequency_cap", "requires", "when", "completed_when", "requires_entitlement", "unless_entitled",
)  # fmt: skip

# Per workspace its current catalog version (offerloop.core.cache).
_catalogs: VersionedCache[Catalog] = VersionedCache(max_size=1024)


@dataclass(frozen=True, slots=True)
class Catalog:
    """A workspace's actions as the decision path needs them, built once per catalog version."""

    actions: list[Action]  # detached, read-only; priority order
    by_key: dict[str, Action]
    models: dict[str, ModelAction]  # the policy's view (action features)
    views: dict[str, dict[str, Any]]  # the eligibility rules' view
    # Per action, what its rules read of the buyer (precomputed: the decide path asks for every candidate).
    entitled: frozenset[str]  # keys of actions whose rules depend on the buyer's entitlements
    completed: dict[str, tuple[str, str]]  # key -> (event, property) of its completed_when
    logged: dict[str, dict[str, Any]]  # key -> the action as a decision's log row lists it (read-only)


# -- catalog ---------------------------------------------------------------------------------------


def _read(action: Action) -> ActionRead:
    return ActionRead(
        id=action.id, key=action.key, kind=action.kind, title=action.title, outcome=action.outcome,
        priority=action.priority, active=action.active, created_at=action.created_at, updated_at=action.updated_at,
        **action.attributes,
    )  # fmt: skip


def upsert_actions(*, session: Session, workspace_id: str, actions: Sequence[ActionIn]) -> list[ActionRead]:
    keys = [item.key for item in actions]
    if len(set(keys)) != len(keys):  # one row per key: a repeated key is ambiguous, not a 500
        repeated = sorted({k for k in keys if keys.count(k) > 1})
        raise ValidationFailed(f"action keys repeat in one request: {repeated}", details={"keys": repeated},
                               code="duplicate_action_keys")  # fmt: skip
    existing = repository.actions_by_key(session, workspace_id)
    now = utcnow()
    out = []
    for item in actions:
        attributes = item.model_dump(mode="json", include=set(ATTRIBUTE_FIELDS))
        row = existing.get(item.key)
        if row is None:
            row = Action(id=new_id("act"), workspace_id=workspace_id, key=item.key, created_at=now)
            repository.add(session, row)
        row.kind, row.title, row.attributes = item.kind, item.title, attributes
        row.outcome, row.priority, row.active, row.updated_at = (
            item.outcome.model_dump(mode="json"),
            item.priority,
            item.active,
            now,
        )
        out.append(row)
    session.flush()
    return [_read(a) for a in out]


def list_actions(*, session: Session, workspace_id: str) -> list[ActionRead]:
    return [_read(a) for a in repository.actions(session, workspace_id)]


def actions_page(
    *,
    session: Session,
    workspace_id: str,
    limit: int,
    cursor: str | None = None,
    kind: str | None = None,
    active: bool | None = None,
) -> ActionPage:
    """The catalog in rules order (priority, then key), optionally one kind or only (in)active actions."""
    after = decode_cursor(cursor, types=(int, str))
    rows = [
        a for a in repository.actions(session, workspace_id)
        if (kind is None or a.kind == kind) and (active is None or a.active == active)
        and (after is None or (-a.priority, a.key) > (-after[0], after[1]))
    ]  # fmt: skip
    return ActionPage(**dict(page_of(rows, limit, key=lambda a: (a.priority, a.key), item=_read)))


def _rule_view(action: Action) -> dict[str, Any]:
    return {"key": action.key, "active": action.active, **action.attributes}


def model_action(action: Action) -> ModelAction:
    attrs = action.attributes
    features: dict[str, float | int | str | bool] = {
        "kind": action.kind, "level": int(attrs.get("level", 1)), "format": str(attrs.get("format", "")),
        "price_band": str(attrs.get("price_band", "")),
    }  # fmt: skip
    for tag in attrs.get("tags") or []:
        features[f"tag={tag}"] = 1.0
    for persona in attrs.get("persona_fit") or []:
        features[f"fit={persona}"] = 1.0
    return ModelAction(id=action.key, features=features)


def cached_catalog(session: Session, workspace_id: str, version: tuple[Any, int] | None = None) -> Catalog:
    """The catalog (with each action's model features), reloaded only when an action changed (``version``:
    the catalog version when the caller already read it)."""
    version = version or repository.catalog_version(session, workspace_id)
    cached = _catalogs.get(workspace_id, version)
    if cached is not None:
        return cached
    rows = repository.actions(session, workspace_id)
    for row in rows:
        session.expunge(row)  # kept across sessions: read-only snapshots
    models = {a.key: model_action(a) for a in rows}
    entry = Catalog(
        actions=rows,
        by_key={a.key: a for a in rows},
        models=models,
        views={a.key: _rule_view(a) for a in rows},
        entitled=frozenset(
            a.key
            for a in rows
            if a.attributes.get("requires_entitlement") or a.attributes.get("unless_entitled")
        ),
        completed={
            a.key: (a.attributes["completed_when"]["event"], a.attributes["completed_when"]["property"])
            for a in rows
            if a.attributes.get("completed_when")
        },
        logged={key: {"id": key, "features": dict(m.features)} for key, m in models.items()},
    )
    _catalogs.put(workspace_id, version, entry)
    return entry


# -- decide ----------------------------------------------------------------------------------------


def holdout_draw(workspace_id: str, buyer_key: str) -> float:
    """The buyer's stable draw in [0, 1): in the holdout group when it is below the holdout share."""
    digest = hashlib.sha256(f"holdout:{workspace_id}:{buyer_key}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64


def _in_holdout(workspace_id: str, buyer_key: str, share: float) -> bool:
    """A stable per-buyer draw: the same buyer stays in (or out of) the holdout group."""
    return holdout_draw(workspace_id, buyer_key) < share


def in_holdout(workspace_id: str, buyer_key: str, share: float) -> bool:
    """Whether /v1/decide puts this buyer (their buyer id) in the holdout group: for measuring its lift."""
    return _in_holdout(workspace_id, buyer_key, share)


def _entitlements(
    session: Session,
    workspace_id: str,
    buyer_id: str | None,
    pool: Sequence[str],
    catalog: Catalog,
    now: datetime,
) -> frozenset[str]:
    """The buyer's usable entitlements, read only when a candidate's rules depend on them."""
    if buyer_id is None or catalog.entitled.isdisjoint(pool):
        return frozenset()
    return entitlements_service.active_keys(
        session=session, workspace_id=workspace_id, buyer_id=buyer_id, now=now
    )


def _squash(value: Any) -> Any:
    """Counts, amounts and durations on a log scale for the model: a buyer with 80 page views and one with
    8 differ, but not by ten times the weight; the linear learner stays stable across feature scales."""
    if isinstance(value, bool) or not isinstance(value, int | float) or not math.isfinite(value):
        return value
    return round(math.copysign(math.log1p(abs(value)), value), 6)


def _context(
    features: Mapping[str, Any], posterior: Mapping[str, float], request: Mapping[str, Any]
) -> dict[str, Any]:
    context: dict[str, Any] = {
        name: _squash(value)
        for name, value in features.items()
        if isinstance(value, int | float | str | bool) and value != ""
    }
    for name, p in posterior.items():
        context[f"persona={name}"] = float(p)
    for name, value in request.items():
        context[f"req_{name}"] = value
    return context


def decide(
    *, session: Session, workspace_id: str, request: DecideRequest, buyer_id: str | None, consent_personalization: bool | None,
    holdout_share: float = 0.1, now: datetime | None = None, log: list[dict[str, Any]] | None = None,
) -> DecideResponse:  # fmt: skip
    """Rank eligible actions for one buyer and log the decision: in the caller's transaction, or, with
    ``log``, appended there (as the row's column values) for the caller to write with ``record`` (deciding
    then needs only reads)."""
    now = now or utcnow()
    decision_id = new_id("dec")
    catalog_version, policy_version, experiment_key = repository.versions(
        session, workspace_id, request.placement
    )
    catalog = cached_catalog(session, workspace_id, catalog_version)
    by_key, model_actions = catalog.by_key, catalog.models
    if request.candidates is not None:
        unknown = sorted(set(request.candidates) - set(by_key))
        if unknown:
            raise UnknownCandidates(
                f"{len(unknown)} candidate(s) are not in the catalog", details={"unknown": unknown[:50]}
            )
        pool = [by_key[k] for k in dict.fromkeys(request.candidates)]
    else:
        pool = catalog.actions

    features = (
        features_service.read(session=session, workspace_id=workspace_id, buyer_id=buyer_id, now=now)
        if buyer_id
        else {}
    )
    persona = (
        persona_service.brief(session=session, workspace_id=workspace_id, buyer_id=buyer_id)
        if buyer_id
        else None
    )
    posterior: Mapping[str, float] = (
        persona["posterior"] if persona else persona_service.prior(session=session, workspace_id=workspace_id)
    )
    pool_keys = [a.key for a in pool]
    specs = {spec for key in pool_keys if (spec := catalog.completed.get(key))}
    view = BuyerView(
        features=features,
        completed=frozenset(repository.completed_values(session, workspace_id, buyer_id, specs))
        if buyer_id
        else frozenset(),
        impressions=repository.impressions(session, workspace_id, buyer_id, now - timedelta(days=365))
        if buyer_id
        else {},
        stage_order=features_service.stage_order(session=session, workspace_id=workspace_id),
        now=now,
        entitlements=_entitlements(session, workspace_id, buyer_id, pool_keys, catalog, now),
        persona=persona["name"] if persona else None,
    )
    exclude = frozenset(request.exclude)
    eligible: list[Action] = []
    excluded: list[dict[str, Any]] = []
    for action in pool:
        reason = ineligible_reason(
            catalog.views[action.key], view, placement=request.placement, exclude=exclude
        )
        if reason is None:
            eligible.append(action)
        else:
            excluded.append({"id": action.key, "reason": reason})

    buyer_key = buyer_id or request.anonymous_id or request.user_id or ""
    holdout = _in_holdout(workspace_id, buyer_key, holdout_share)
    arm = _policy_arm(session, workspace_id, experiment_key, buyer_id, now)
    if arm is not None:
        holdout = False  # the experiment's control is the comparison for its buyers, not the holdout
    version, policy = current_policy(session, workspace_id, request.placement, policy_version)
    context = _context(features, posterior, request.context)
    actions = [model_actions[a.key] for a in eligible]
    if holdout or (arm is not None and arm.value == "rules"):
        mode = "rules"
    elif consent_personalization is False:
        mode = "rules_no_consent"
    else:
        mode = "model"  # version 0 (nothing learned yet) explores uniformly below; no policy is built for it
    ranked: list[Scored]
    chosen: Scored | None = None
    if not eligible:
        ranked = []
    elif mode == "model" and version == 0:
        # Cold start: no model has learned yet, so every eligible action is equally likely (propensity 1/n).
        # This is the exploration the first snapshot learns from; an untrained model would instead always
        # exploit its first candidate and teach itself only about the catalog's order.
        order = list(range(len(eligible)))
        random.Random(decision_id).shuffle(order)
        ranked = [Scored(index=i, score=0.0, probability=1.0 / len(eligible)) for i in order]
        chosen = ranked[0]
    elif mode == "model":
        assert policy is not None
        ranked = policy.rank(context, actions)
        chosen = sample(ranked, random.Random(decision_id))
        ranked = [chosen, *[s for s in ranked if s.index != chosen.index]]
    else:
        # Rules-only order is the catalog order (priority, then key): deterministic, propensity 1 for the first.
        ranked = [
            Scored(index=i, score=float(-i), probability=1.0 if i == 0 else 0.0) for i in range(len(eligible))
        ]
        chosen = ranked[0]
    top = ranked[: request.k]
    best_score = max((s.score for s in ranked), default=0.0)
    items = []
    for position, scored in enumerate(top):
        action = eligible[scored.index]
        reasons = [f"policy: {mode}"]
        fit = set(action.attributes.get("persona_fit") or [])
        if persona and persona["name"] in fit:
            reasons.append(f"fits persona {persona['name']}")
        if position == 0 and mode == "model" and scored.score < best_score:
            reasons.append("exploration: not the model's top score")
        items.append(
            DecidedItem(
                id=action.key,
                score=round(scored.score, 6),
                expected_reward=None if scored.expected_reward is None else round(scored.expected_reward, 6),
                propensity=scored.probability,
                reasons=reasons,
            )
        )

    first = eligible[chosen.index] if chosen is not None else None
    outcome = first.outcome if first is not None else None
    window_ends = now + timedelta(days=float(outcome["window_days"])) if outcome else None
    row = dict(
            id=decision_id, workspace_id=workspace_id, buyer_id=buyer_id, placement=request.placement, created_at=now,
            policy=mode, holdout=holdout, model_version=version if mode == "model" else 0,
            persona=persona["name"] if persona else None, persona_confidence=persona["confidence"] if persona else None,
            context={**context, "_outcome": outcome} if outcome else context,
            candidates=[catalog.logged[a.id] for a in actions] if log is not None
            else [{"id": a.id, "features": dict(a.features)} for a in actions],
            items=[i.model_dump() for i in items], excluded=excluded,
            chosen_key=first.key if first else None, chosen_index=chosen.index if chosen else None,
            propensity=chosen.probability if chosen else None,
            outcome_event=outcome["event"] if outcome else None,
            window_ends_at=window_ends,
            experiment_key=arm.experiment if arm else None, experiment_arm=arm.arm if arm else None,
    )  # fmt: skip
    exposures = (
        [(arm.experiment, buyer_id, arm.arm, now)] if arm is not None and arm.expose and buyer_id else []
    )
    if log is None:
        repository.add(session, Decision(**row))
        _schedule_close(session, workspace_id, [window_ends])
        experiments_service.expose(session=session, workspace_id=workspace_id, exposures=exposures)
    else:
        log.append({**row, EXPOSURES: exposures} if exposures else row)
    return DecideResponse(
        decision_id=decision_id,
        items=items,
        persona=PersonaBrief(name=persona["name"], confidence=persona["confidence"]) if persona else None,
        model_version=version if mode == "model" else 0,
        holdout=holdout,
        policy=mode,
        experiment=ExperimentArm(key=arm.experiment, arm=arm.arm) if arm else None,
    )


# A logged row's first exposures to write with it ((experiment, buyer, arm, at)): not a column of decisions.
EXPOSURES = "_exposures"


def _policy_arm(
    session: Session, workspace_id: str, key: str | None, buyer_id: str | None, now: datetime
) -> Arm | None:
    """The buyer's arm in the placement's policy experiment (``key`` came with the catalog version: no query
    when there is none). A buyer never seen has no sticky identity to assign, and one not in the experiment
    (paused before they were exposed) is decided as without it."""
    if key is None or buyer_id is None:
        return None
    arm = experiments_service.peek_arm(session=session, workspace_id=workspace_id, key=key, buyer_id=buyer_id,
                                       now=now)  # fmt: skip
    return arm if arm is not None and arm.exposed else None


def record(*, session: Session, decisions: Iterable[dict[str, Any]]) -> None:
    """Write decisions made with ``decide(log=...)`` (a short write after a read-only decision), with the
    first exposures their policy experiment (or an offer's) found due."""
    rows = list(decisions)
    for row in rows:
        if EXPOSURES in row:
            experiments_service.expose(
                session=session, workspace_id=row["workspace_id"], exposures=row.pop(EXPOSURES)
            )
    repository.insert_decisions(session, rows)
    for workspace_id in sorted({r["workspace_id"] for r in rows}):
        _schedule_close(
            session, workspace_id, [r["window_ends_at"] for r in rows if r["workspace_id"] == workspace_id]
        )


def decide_for(
    *, session: Session, workspace_id: str, request: DecideRequest, holdout_share: float = 0.1,
    log: list[dict[str, Any]] | None = None,
) -> DecideResponse:  # fmt: skip
    """Resolve the request's buyer (a never-seen one starts cold, on the persona prior), then decide."""
    identifier = {"user_id": request.user_id} if request.user_id else {"anonymous_id": request.anonymous_id}
    try:
        buyer_id, consent = identity_service.find_buyer(
            session=session, workspace_id=workspace_id, **identifier
        )
    except BuyerNotFound:
        buyer_id, consent = None, None
    return decide(
        session=session, workspace_id=workspace_id, request=request, buyer_id=buyer_id,
        consent_personalization=consent, holdout_share=holdout_share, log=log,
    )  # fmt: skip


def resolve_buyer(*, session: Session, workspace_id: str, request: DecideRequest) -> str | None:
    """The request's buyer id, or None for someone never seen."""
    identifier = {"user_id": request.user_id} if request.user_id else {"anonymous_id": request.anonymous_id}
    try:
        return identity_service.find_buyer(session=session, workspace_id=workspace_id, **identifier)[0]
    except BuyerNotFound:
        return None


def model_versions(*, session: Session, workspace_id: str, limit: int = 50) -> list[ModelVersionRead]:
    """The newest model snapshots of every placement, newest first."""
    rows = repository.snapshots_newest(session, workspace_id, limit)
    return [
        ModelVersionRead(
            placement=p, version=int(v), kind=k, rewards_learned=int(n), created_at=at, note=note
        )
        for p, v, k, n, at, note in rows
    ]


def get_decision(*, session: Session, workspace_id: str, decision_id: str) -> DecisionRead:
    """Why a decision was made: what the model saw, what was excluded and why, and what happened."""
    d = repository.get_decision(session, workspace_id, decision_id)
    if d is None:
        raise DecisionNotFound(f"decision {decision_id} does not exist in this workspace")
    return _decision_read(d)


def buyer_decisions(*, session: Session, workspace_id: str, buyer_id: str, limit: int) -> list[DecisionRead]:
    """The buyer's newest ``limit`` decisions (at most 200), each with its items' reasons and its exclusions."""
    if not 1 <= limit <= 200:
        raise ValueError(f"limit must be from 1 to 200, got {limit}")
    return [_decision_read(d) for d in repository.buyer_decisions(session, workspace_id, buyer_id, limit)]


def _decision_read(d: Decision) -> DecisionRead:
    return DecisionRead(
        id=d.id, buyer_id=d.buyer_id, placement=d.placement, created_at=d.created_at, policy=d.policy,
        holdout=d.holdout, model_version=d.model_version,
        persona=PersonaBrief(name=d.persona, confidence=d.persona_confidence or 0.0) if d.persona else None,
        items=d.items, excluded=d.excluded, chosen=d.chosen_key, propensity=d.propensity,
        context={k: v for k, v in d.context.items() if k != "_outcome"}, outcome=d.context.get("_outcome"),
        window_ends_at=d.window_ends_at, reward=d.reward, reward_at=d.reward_at, reward_source=d.reward_source,
        experiment=ExperimentArm(key=d.experiment_key, arm=d.experiment_arm or "") if d.experiment_key else None,
    )  # fmt: skip
