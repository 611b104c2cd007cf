"""Next best action: candidates → eligibility rules → learning policy (or rules order) → top k, logged."""

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
from offerloop.decisions import evaluation, repository
from offerloop.decisions.exceptions import DecisionNotFound, UnknownCandidates
from offerloop.decisions.rules import BuyerView, ineligible_reason
from offerloop.decisions.schemas import (
    ActionIn,
    ActionPage,
    ActionRead,
    DecidedItem,
    DecideRequest,
    DecideResponse,
    DecisionRead,
    PersonaBrief,
)
from offerloop.entitlements import service as entitlements_service
from offerloop.features import service as features_service
from offerloop.identity import service as identity_service
from offerloop.identity.exceptions import BuyerNotFound
from offerloop.jobs import queue
from offerloop.ml.base import Action as ModelAction
from offerloop.ml.base import Policy, Scored, load_policy, sample
from offerloop.ml.policies import MAX_ABS_VALUE, VWContextualBandit
from offerloop.models import Action, Decision, PolicySnapshot
from offerloop.personas import service as persona_service

ATTRIBUTE_FIELDS = (
    "tags", "level", "format", "price_band", "price_minor", "persona_fit", "placements", "prerequisites",
    "min_stage", "frequency_cap", "requires", "when", "completed_when", "requires_entitlement", "unless_entitled",
)  # fmt: skip

# Per workspace (and placement) its current version: one bounded cache each (offerloop.core.cache).
_policies: VersionedCache[Policy] = VersionedCache(max_size=4096)
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


def new_policy(seed: int = 0) -> Policy:
    """The default learner: VW contextual bandit with epsilon-greedy exploration over action features."""
    return VWContextualBandit(exploration="epsilon", epsilon=0.1, seed=seed)


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
    entry = Catalog(
        actions=rows,
        by_key={a.key: a for a in rows},
        models={a.key: model_action(a) for a in rows},
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
    )
    _catalogs.put(workspace_id, version, entry)
    return entry


# -- policy snapshots ------------------------------------------------------------------------------


def current_policy(
    session: Session, workspace_id: str, placement: str, version: int | None = None
) -> tuple[int, Policy | None]:
    """The newest snapshot, loaded once per process and reloaded whenever a newer version appears
    (``version``: the latest version when the caller already read it)."""
    version = repository.latest_version(session, workspace_id, placement) if version is None else version
    if version == 0:
        return 0, None

    def load() -> Policy:
        snap = repository.snapshot(session, workspace_id, placement, version)
        assert snap is not None
        return load_policy(snap.payload)

    return version, _policies.get_or_load((workspace_id, placement), version, load)


# -- decide ----------------------------------------------------------------------------------------


def _in_holdout(workspace_id: str, buyer_key: str, share: float) -> bool:
    """A stable per-buyer draw: the same buyer stays in (or out of) the holdout group."""
    digest = hashlib.sha256(f"holdout:{workspace_id}:{buyer_key}".encode()).digest()
    return int.from_bytes(digest[:8], "big") / 2**64 < share


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
    catalog_version, policy_version = repository.versions(session, workspace_id, request.placement)
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
    version, policy = current_policy(session, workspace_id, request.placement, policy_version)
    context = _context(features, posterior, request.context)
    actions = [model_actions[a.key] for a in eligible]
    if holdout:
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
            candidates=[{"id": a.id, "features": dict(a.features)} for a in actions],
            items=[i.model_dump() for i in items], excluded=excluded,
            chosen_key=first.key if first else None, chosen_index=chosen.index if chosen else None,
            propensity=chosen.probability if chosen else None,
            outcome_event=outcome["event"] if outcome else None,
            window_ends_at=window_ends,
    )  # fmt: skip
    if log is None:
        repository.add(session, Decision(**row))
        _schedule_close(session, workspace_id, [window_ends])
    else:
        log.append(row)
    return DecideResponse(
        decision_id=decision_id,
        items=items,
        persona=PersonaBrief(name=persona["name"], confidence=persona["confidence"]) if persona else None,
        model_version=version if mode == "model" else 0,
        holdout=holdout,
        policy=mode,
    )


def record(*, session: Session, decisions: Iterable[dict[str, Any]]) -> None:
    """Write decisions made with ``decide(log=...)`` (a short write after a read-only decision)."""
    rows = list(decisions)
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


def get_decision(*, session: Session, workspace_id: str, decision_id: str) -> DecisionRead:
    """Why a decision was made: what the model saw, what was excluded and why, and what happened."""
    d = repository.get_decision(session, workspace_id, decision_id)
    if d is None:
        raise DecisionNotFound(f"decision {decision_id} does not exist in this workspace")
    return DecisionRead(
        id=d.id, buyer_id=d.buyer_id, placement=d.placement, created_at=d.created_at, policy=d.policy,
        holdout=d.holdout, model_version=d.model_version,
        persona=PersonaBrief(name=d.persona, confidence=d.persona_confidence or 0.0) if d.persona else None,
        items=d.items, excluded=d.excluded, chosen=d.chosen_key, propensity=d.propensity,
        context={k: v for k, v in d.context.items() if k != "_outcome"}, outcome=d.context.get("_outcome"),
        window_ends_at=d.window_ends_at, reward=d.reward, reward_at=d.reward_at, reward_source=d.reward_source,
    )  # fmt: skip


# -- outcomes and learning -------------------------------------------------------------------------


def _usable_reward(value: float | None) -> float | None:
    """A reward the models and estimators can take: finite and within the models' range (else None)."""
    if value is None:
        return 0.0
    return float(value) if math.isfinite(value) and abs(value) <= MAX_ABS_VALUE else None


def _reward_value(outcome: Mapping[str, Any], properties: Mapping[str, Any]) -> float | None:
    """The reward an outcome event carries; None (no reward) for a value that is missing, not a number,
    infinite, NaN or beyond the models' range — one buyer's "inf" must not poison learning or evaluation."""
    if outcome.get("value_property"):
        raw = properties.get(outcome["value_property"])
        if isinstance(raw, bool) or not isinstance(raw, int | float | str):
            return None
        try:
            value = float(raw) / float(outcome.get("value_scale") or 1.0)
        except (ValueError, OverflowError, ZeroDivisionError):
            return None
        return value if math.isfinite(value) and abs(value) <= MAX_ABS_VALUE else None
    fixed = outcome.get("value")
    return 1.0 if fixed is None else float(fixed)


def on_events(
    *,
    session: Session,
    workspace_id: str,
    events: Iterable[tuple[str, str | None, Mapping[str, Any], datetime, str]],
) -> int:
    """Turn outcome events into rewards of the open decisions they belong to (inside the window)."""
    batch = [e for e in events if e[1]]
    if not batch:
        return 0
    open_ = repository.open_decisions(
        session, workspace_id, {b for b, *_ in batch}, {n for _, n, *_ in batch if n}
    )
    if not open_:
        return 0
    rewarded = 0
    placements: set[str] = set()
    for buyer_id, name, properties, at, message_id in sorted(batch, key=lambda e: e[3]):
        for d in open_:
            if d.reward is not None or d.buyer_id != buyer_id or d.outcome_event != name:
                continue
            if not (d.created_at <= at <= (d.window_ends_at or at)):
                continue
            outcome = d.context.get("_outcome") or {}
            prop = outcome.get("match_property")
            if prop and str(properties.get(prop)) != d.chosen_key:
                continue
            value = _reward_value(outcome, properties)
            if value is None:
                continue
            d.reward, d.reward_at, d.reward_source = value, at, message_id
            rewarded += 1
            placements.add(d.placement)
    _schedule_learning(session, workspace_id, placements, utcnow())
    return rewarded


def close_windows(*, session: Session, workspace_id: str, now: datetime | None = None) -> int:
    """Decisions whose window closed without an outcome get their outcome's default reward."""
    return len(_close(session, workspace_id, now or utcnow()))


def _close(session: Session, workspace_id: str, now: datetime) -> list[Decision]:
    expired = repository.expire(session, workspace_id, now)
    for d in expired:
        outcome: dict[str, Any] = d.context.get("_outcome") or {}
        d.reward = float(outcome.get("default_reward", 0.0))
        d.reward_at, d.reward_source = d.window_ends_at, "default"
    session.flush()  # sessions do not autoflush: a learn() in the same transaction must see these
    return expired


# Learning runs as jobs: one per (workspace, placement) (kind decisions.learn, the key is the one writer),
# queued when rewards arrive to run one interval later, so a placement learns at most once per interval;
# and one per workspace (kind decisions.close_windows) queued for the earliest open outcome window's end.
LEARN_KIND = "decisions.learn"
CLOSE_KIND = "decisions.close_windows"
_learning = {"interval_s": 60.0}


def configure_learning(*, interval_s: float) -> None:
    """The process's learning interval (the server's setting); 0 queues no learning at all."""
    _learning["interval_s"] = interval_s


def learn_key(workspace_id: str, placement: str) -> str:
    return f"{workspace_id}:{placement}"


def _schedule_learning(session: Session, workspace_id: str, placements: Iterable[str], now: datetime) -> None:
    interval = _learning["interval_s"]
    if interval <= 0:
        return
    for placement in sorted(set(placements)):
        queue.ensure(session, kind=LEARN_KIND, key=learn_key(workspace_id, placement), workspace_id=workspace_id,
                     run_at=now + timedelta(seconds=interval), now=now)  # fmt: skip


def _schedule_close(session: Session, workspace_id: str, window_ends: Iterable[datetime | None]) -> None:
    ends = [end for end in window_ends if end is not None]
    if ends and _learning["interval_s"] > 0:
        queue.ensure(session, kind=CLOSE_KIND, key=workspace_id, workspace_id=workspace_id, run_at=min(ends))


def close_due_windows(*, session: Session, workspace_id: str, now: datetime) -> datetime | None:
    """The close-windows job: default rewards for the windows ended by ``now``, their placements queued to
    learn; returns when to run again (the next window's end, an interval away at least), None if none is open."""
    closed = _close(session, workspace_id, now)
    _schedule_learning(session, workspace_id, {d.placement for d in closed}, now)
    following = repository.next_window_end(session, workspace_id)
    if following is None:
        return None
    return max(following, now + timedelta(seconds=max(_learning["interval_s"], 1.0)))


def learn(*, session: Session, workspace_id: str, placement: str, limit: int = 50_000) -> dict[str, int]:
    """Feed rewarded decisions to the placement's policy and save a new snapshot version."""
    repository.lock_learner(session, workspace_id, placement)
    version, policy = current_policy(session, workspace_id, placement)
    policy = load_policy(policy.to_payload()) if policy is not None else new_policy()
    batch = repository.unlearned(session, workspace_id, placement, limit)
    for d in batch:
        actions = [ModelAction(id=c["id"], features=c["features"]) for c in d.candidates]
        reward = _usable_reward(
            d.reward
        )  # a value stored before rewards were checked is skipped, not learned
        if d.chosen_index is None or not actions or reward is None:
            continue
        context = {k: v for k, v in d.context.items() if k != "_outcome"}
        policy.learn_one(context, actions, d.chosen_index, d.propensity or 1.0, reward)
    if not batch:
        return {"version": version, "learned": 0}
    repository.mark_learned(session, workspace_id, [d.id for d in batch], utcnow())
    return {"version": publish(session=session, workspace_id=workspace_id, placement=placement, policy=policy,
                               rewards_learned=len(batch)), "learned": len(batch)}  # fmt: skip


def publish(
    *,
    session: Session,
    workspace_id: str,
    placement: str,
    policy: Policy,
    rewards_learned: int = 0,
    note: str | None = None,
) -> int:
    """Save ``policy`` as the placement's next snapshot version; every server picks it up on its next decision."""
    version = repository.latest_version(session, workspace_id, placement) + 1
    payload = policy.to_payload()
    repository.add(
        session,
        PolicySnapshot(
            workspace_id=workspace_id, placement=placement, version=version, kind=str(payload["kind"]),
            payload=payload, rewards_learned=rewards_learned, created_at=utcnow(), note=note,
        ),
    )  # fmt: skip
    session.flush()
    return version


def _snapshot_before(
    timeline: Sequence[tuple[int, datetime]], made_at: datetime, learned_at: datetime | None
) -> int:
    """The newest snapshot version created before a decision was made and before it was learned (so it
    cannot have learned from it); 0 when there is none. ``timeline`` is (version, created_at), oldest first."""
    best = 0
    for version, at in timeline:
        if at < made_at and (learned_at is None or at < learned_at):
            best = version
    return best


def evaluate(
    *, session: Session, workspace_id: str, placement: str | None = None, level: float = 0.95,
    since: datetime | None = None,
) -> dict[str, Any]:  # fmt: skip
    """Out-of-sample estimates (IPS, SNIPS, DR) of the learned model, rules-only, random and popularity on
    the logged, rewarded decisions made at or after ``since``, and the online lift of the model over the
    holdout group (see ``decisions.evaluation``).

    Progressive validation: each decision is scored by the placement's snapshot that existed before it was
    made; baselines and DR's reward model are fitted on the decisions made before it (including those
    before ``since``, which are not scored themselves)."""
    decisions = [
        d
        for d in repository.decisions_for_evaluation(session, workspace_id, placement)
        if d.chosen_index is not None and d.candidates and _usable_reward(d.reward) is not None
    ]
    timelines: dict[str, list[tuple[int, datetime]]] = {}
    for name, version, at in repository.snapshot_times(
        session, workspace_id, {d.placement for d in decisions}
    ):
        timelines.setdefault(name, []).append((version, at))
    snapshots: list[evaluation.SnapshotKey | None] = []
    served: dict[str, int] = {}
    first_scored: datetime | None = None
    rows: list[evaluation.LoggedRow] = []
    for d in decisions:
        assert d.chosen_index is not None  # filtered above
        scored = since is None or d.created_at >= since
        version = _snapshot_before(timelines.get(d.placement, []), d.created_at, d.learned_at)
        snapshots.append((d.placement, version) if version and scored else None)
        if version and scored:
            served[f"{d.placement} v{version}"] = served.get(f"{d.placement} v{version}", 0) + 1
            first_scored = first_scored or d.created_at
        rows.append(
            evaluation.LoggedRow(
                context={k: v for k, v in d.context.items() if k != "_outcome"},
                actions=[ModelAction(id=c["id"], features=c["features"]) for c in d.candidates],
                chosen=d.chosen_index,
                propensity=float(d.propensity or 1.0),
                reward=float(d.reward or 0.0),
                policy=d.policy,
                holdout=d.holdout,
                persona=d.persona,
                model_version=d.model_version,
                scored=scored,
                during_model=_snapshot_before(timelines.get(d.placement, []), d.created_at, None) > 0,
            )
        )
    n = sum(r.scored for r in rows)
    report: dict[str, Any] = {
        "decisions": n,
        "placement": placement,
        "method": f"out-of-sample: progressive validation over {n} decisions",
        "policies": {},
    }
    if n < 2:
        return report

    def load(key: evaluation.SnapshotKey) -> Policy:
        snap = repository.snapshot(session, workspace_id, *key)
        assert snap is not None  # listed by snapshot_times in this transaction
        return load_policy(snap.payload)

    model = evaluation.progressive_model(snapshots, load)
    result = evaluation.evaluate_log(rows, {"model": model}, level=level)
    report["policies"] = result["policies"]
    if "model" in report["policies"]:
        report["policies"]["model"]["snapshots"] = dict(sorted(served.items()))
        report["policies"]["model"]["first_decision_at"] = first_scored
    report["online"] = result["online"]
    return report
