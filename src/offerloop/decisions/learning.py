"""Outcomes and learning: rewards from outcome events and closed windows, the learning jobs, policy
snapshots (published, and loaded once per version), and the out-of-sample evaluation of the log."""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from offerloop.core.cache import VersionedCache
from offerloop.core.clock import utcnow
from offerloop.decisions import evaluation, repository
from offerloop.jobs import queue
from offerloop.ml.base import Action as ModelAction
from offerloop.ml.base import Policy, load_policy
from offerloop.ml.policies import MAX_ABS_VALUE, VWContextualBandit
from offerloop.models import Decision, PolicySnapshot

# Per workspace and placement its current version (offerloop.core.cache).
_policies: VersionedCache[Policy] = VersionedCache(max_size=4096)


def new_policy(seed: int = 0) -> Policy:
    """The default learner: VW contextual bandit with epsilon-greedy exploration over action features."""
    return VWContextualBandit(exploration="epsilon", epsilon=0.1, seed=seed)


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
    since: datetime | None = None, until: datetime | None = None,
) -> dict[str, Any]:  # fmt: skip
    """Out-of-sample estimates (IPS, SNIPS, DR) of the learned model, rules-only, random and popularity on
    the logged, rewarded decisions made at or after ``since`` (and before ``until``: later ones are left out
    altogether), and the online lift of the model over the holdout group (see ``decisions.evaluation``).

    Progressive validation: each decision is scored by the placement's snapshot that existed before it was
    made; baselines and DR's reward model are fitted on the decisions made before it (including those
    before ``since``, which are not scored themselves)."""
    decisions = [
        d
        for d in repository.decisions_for_evaluation(session, workspace_id, placement)
        if d.chosen_index is not None and d.candidates and _usable_reward(d.reward) is not None
        and (until is None or d.created_at < until)
    ]  # fmt: skip
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
