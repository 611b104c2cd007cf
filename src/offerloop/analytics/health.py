"""Model and data health: the reward rate by day against the holdout, off-policy estimates over a moving
window, drift of every numeric buyer feature and of the persona mix, and the alerts their thresholds raise
(through the API and as Prometheus gauges). Read-only; see docs/health.md for the definitions.

Windows. Drift compares a *reference* window ``[now - current_days - reference_days, now - current_days)``
with the *current* window ``[now - current_days, now)``. A buyer's feature state is incremental (it is not
kept per day), so a buyer belongs to the window holding their latest event *by event time*
(``buyer_features.event_at``: each event's own timestamp, bounded by when it was received, so a late batch of
old events lands in the window it happened in, and a client clock claiming the future cannot keep a buyer in the
current window forever), and their features are read out *at that time*: a recency or decayed feature then
means the same thing in both windows (read at ``now``, every reference buyer would look idle, a drift made by
the windowing itself). The persona mix is the current persona of the same buyers (those whose latest event is in
each window).

The reward rate by day groups decisions by the day they were made (``decisions.created_at``: the server made
them, so that is their event time; no client clock is involved), and counts a reward only once its event time
(``reward_at``) is not after the report's ``now``.
"""

from __future__ import annotations

import logging
import math
import threading
import time
from collections import defaultdict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from prometheus_client import Gauge
from sqlalchemy import Engine
from sqlalchemy.orm import Session

from offerloop.analytics import health_repository as repository
from offerloop.analytics.health_schemas import (
    Alert,
    AlertKind,
    AlertsReport,
    DayRate,
    DriftReport,
    DriftWindow,
    FeatureDrift,
    GroupRate,
    ModelsHealth,
    OpeEstimate,
    OpeEstimator,
    OpePolicy,
    OpeReport,
    OpeWindow,
    PersonaMixDrift,
    PersonaShare,
    Thresholds,
)
from offerloop.core.clock import utcnow
from offerloop.db.uow import Database
from offerloop.decisions import service as decisions_service
from offerloop.features import service as features_service
from offerloop.ml import drift as psi
from offerloop.workspaces import service as workspace_service

DEFAULTS = Thresholds(
    psi_watch=psi.WATCH, psi_alert=psi.ALERT, reward_drop=0.1, ope_drop=0.2, min_decisions=30, min_buyers=30
)
DAYS = 14  # reward rate by day and the OPE window
REFERENCE_DAYS = 28
CURRENT_DAYS = 7
MAX_BUYERS = 5_000  # per drift window (500 a decile bin); reading a buyer's features out costs 50-100 us
PERSONA_MIX = "persona_mix"

log = logging.getLogger(__name__)


# -- reward rate by day, model vs holdout -------------------------------------------------------------


@dataclass(slots=True)
class _Rate:
    decisions: int = 0
    closed: int = 0
    rewarded: int = 0
    reward_sum: float = 0.0

    def add(self, reward: float | None) -> None:
        self.decisions += 1
        if reward is not None and math.isfinite(reward):
            self.closed += 1
            self.rewarded += reward > 0.0
            self.reward_sum += reward

    def merge(self, other: _Rate) -> None:
        self.decisions += other.decisions
        self.closed += other.closed
        self.rewarded += other.rewarded
        self.reward_sum += other.reward_sum

    def read(self) -> GroupRate:
        rate = self.reward_sum / self.closed if self.closed else None
        return GroupRate(decisions=self.decisions, closed=self.closed, rewarded=self.rewarded,
                         reward_sum=self.reward_sum, rate=rate)  # fmt: skip


@dataclass(slots=True)
class _Placement:
    days: dict[tuple[str, Any], _Rate] = field(default_factory=lambda: defaultdict(_Rate))
    model: _Rate = field(default_factory=_Rate)
    holdout: _Rate = field(default_factory=_Rate)


def _group(policy: str, holdout: bool, model_version: int) -> str | None:
    """The holdout (rules only, by design), or a learned snapshot's decision; cold-start exploration and
    rules served for lack of consent are neither (as in the decisions domain's online lift)."""
    if holdout:
        return "holdout"
    if policy == "model" and model_version > 0:
        return "model"
    return None


def _period(now: datetime, days: int) -> datetime:
    """Midnight UTC starting the ``days``-day period that ends with today."""
    today = now.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
    return today - timedelta(days=days - 1)


def _rates(
    session: Session, workspace_id: str, placement: str | None, start: datetime, end: datetime
) -> dict[str, _Placement]:
    out: dict[str, _Placement] = defaultdict(_Placement)
    for name, created_at, policy, holdout, version, reward, reward_at in repository.decision_outcomes(
        session, workspace_id, placement, start, end
    ):
        if reward_at is not None and reward_at > end:
            reward = None  # as of ``end`` this outcome has not happened yet (a report for an earlier moment)
        acc = out[name]  # every placement with decisions, even when none is the model's or the holdout's
        group = _group(policy, holdout, version)
        if group is None:
            continue
        acc.days[(group, created_at.astimezone(UTC).date())].add(reward)
        (acc.model if group == "model" else acc.holdout).add(reward)
    return out


def _relative(value: float | None, base: float | None) -> float | None:
    if value is None or base is None or base <= 0.0:
        return None
    return value / base - 1.0


def _reward_alert(subject: str, model: GroupRate, holdout: GroupRate, th: Thresholds) -> Alert | None:
    if min(model.closed, holdout.closed) < th.min_decisions:
        return None
    lift = _relative(model.rate, holdout.rate)
    if lift is None or lift > -th.reward_drop:
        return None
    return Alert(kind="reward_drop", subject=subject, value=lift, threshold=-th.reward_drop, severity="alert")


# -- OPE over a moving window ---------------------------------------------------------------------


def _ope_window(report: dict[str, Any], start: datetime, end: datetime) -> OpeWindow:
    policies = {
        name: OpeEstimate(
            ips=p["ips"]["value"],
            snips=p["snips"]["value"],
            dr=p["dr"]["value"],
            dr_ci_low=p["dr"]["ci_low"],
            dr_ci_high=p["dr"]["ci_high"],
            scored=p["scored"],
            matched=p["matched"],
            enough_data=p["enough_data"],
        )
        for name, p in report["policies"].items()
    }
    return OpeWindow(start=start, end=end, decisions=report["decisions"], policies=policies)


def ope(
    *, session: Session, workspace_id: str, placement: str | None, days: int, now: datetime,
    policy: OpePolicy = "model", estimator: OpeEstimator = "dr",
) -> OpeReport:  # fmt: skip
    """The decisions domain's out-of-sample estimates on the last ``days`` days and on the ``days`` before,
    and the relative change of ``policy``'s ``estimator`` between them (when both windows have enough data)."""
    middle = now - timedelta(days=days)
    first = middle - timedelta(days=days)
    windows = []
    for start, end in ((middle, now), (first, middle)):
        report = decisions_service.evaluate(
            session=session, workspace_id=workspace_id, placement=placement, since=start, until=end
        )
        windows.append(_ope_window(report, start, end))
    current, previous = windows
    now_est, before = current.policies.get(policy), previous.policies.get(policy)
    change = None
    if now_est is not None and before is not None and now_est.enough_data and before.enough_data:
        change = _relative(getattr(now_est, estimator), getattr(before, estimator))
    return OpeReport(placement=placement, policy=policy, estimator=estimator, current=current, previous=previous,
                     change=change)  # fmt: skip


def _ope_alert(subject: str, report: OpeReport, th: Thresholds) -> Alert | None:
    if report.change is None or report.change > -th.ope_drop:
        return None
    return Alert(
        kind="ope_drop", subject=subject, value=report.change, threshold=-th.ope_drop, severity="alert"
    )


def models_health(
    *, session: Session, workspace_id: str, placement: str | None, days: int = DAYS,
    thresholds: Thresholds = DEFAULTS, policy: OpePolicy = "model", estimator: OpeEstimator = "dr",
    now: datetime | None = None,
) -> ModelsHealth:  # fmt: skip
    """Reward rate by UTC day of the model and the holdout over the last ``days`` days (today included), for
    one placement or all together, the OPE of the last ``days`` days against the ``days`` before, and the
    alerts they raise."""
    now = now or utcnow()
    start = _period(now, days)
    acc = _Placement()
    for one in _rates(session, workspace_id, placement, start, now).values():
        for key, rate in one.days.items():
            acc.days[key].merge(rate)
        acc.model.merge(one.model)
        acc.holdout.merge(one.holdout)
    daily = [
        DayRate(day=day, model=acc.days.get(("model", day), _Rate()).read(),
                holdout=acc.days.get(("holdout", day), _Rate()).read())
        for day in ((start + timedelta(days=i)).date() for i in range(days))
    ]  # fmt: skip
    model, holdout = acc.model.read(), acc.holdout.read()
    report = ope(session=session, workspace_id=workspace_id, placement=placement, days=days, now=now,
                 policy=policy, estimator=estimator)  # fmt: skip
    subject = placement or "all"
    alerts = [a for a in (_reward_alert(subject, model, holdout, thresholds), _ope_alert(subject, report, thresholds))
              if a is not None]  # fmt: skip
    return ModelsHealth(placement=placement, days=days, start=start, end=now, daily=daily, model=model,
                        holdout=holdout, relative_lift=_relative(model.rate, holdout.rate), ope=report,
                        alerts=alerts)  # fmt: skip


# -- drift of features and of the persona mix ----------------------------------------------------


_NUMERIC = (int, float)


def _feature_values(session: Session, workspace_id: str, start: datetime, end: datetime,
                    max_buyers: int) -> tuple[dict[str, list[float]], int]:  # fmt: skip
    """Per numeric feature, its values over the buyers last updated in [start, end), each read at that
    update; and how many buyers that was."""
    out: dict[str, list[float]] = defaultdict(list)
    buyers = features_service.features_updated(session=session, workspace_id=workspace_id, start=start, end=end,
                                               limit=max_buyers)  # fmt: skip
    for features, _ in buyers:
        for name, value in features.items():
            if type(value) in _NUMERIC:  # exactly int or float: a bool is no number here
                out[name].append(float(value))
    return out, len(buyers)


def _severity(value: float | None, n: int, th: Thresholds) -> psi.Severity | None:
    return psi.severity(value, watch=th.psi_watch, alert=th.psi_alert) if n >= th.min_buyers else None


def _drift_alert(kind: AlertKind, subject: str, value: float | None, severity: psi.Severity | None,
                 th: Thresholds) -> Alert | None:  # fmt: skip
    if severity is None or value is None:
        return None
    threshold = th.psi_alert if severity == "alert" else th.psi_watch
    return Alert(kind=kind, subject=subject, value=value, threshold=threshold, severity=severity)


def drift(
    *, session: Session, workspace_id: str, reference_days: int = REFERENCE_DAYS, current_days: int = CURRENT_DAYS,
    thresholds: Thresholds = DEFAULTS, bins: int = psi.DEFAULT_BINS, max_buyers: int = MAX_BUYERS,
    now: datetime | None = None,
) -> DriftReport:  # fmt: skip
    """PSI of every numeric buyer feature and of the persona mix, reference window against current window
    (see the module docstring), and the alerts they raise (only with ``min_buyers`` in both windows)."""
    now = now or utcnow()
    middle = now - timedelta(days=current_days)
    first = middle - timedelta(days=reference_days)
    ref, ref_n = _feature_values(session, workspace_id, first, middle, max_buyers)
    cur, cur_n = _feature_values(session, workspace_id, middle, now, max_buyers)
    features, alerts = [], []
    for name in sorted(set(ref) | set(cur)):
        d = psi.numeric_psi(ref.get(name, []), cur.get(name, []), bins=bins)
        sev = _severity(d.psi, min(ref_n, cur_n), thresholds)
        features.append(FeatureDrift(feature=name, psi=d.psi, severity=sev, reference_n=d.reference_n,
                                     current_n=d.current_n, bins=d.bins, reference_shares=d.reference_shares,
                                     current_shares=d.current_shares))  # fmt: skip
        alerts.append(_drift_alert("feature_drift", name, d.psi, sev, thresholds))
    ref_mix = repository.persona_counts(session, workspace_id, first, middle)
    cur_mix = repository.persona_counts(session, workspace_id, middle, now)
    mix = psi.categorical_psi(ref_mix, cur_mix)
    sev = _severity(mix.psi, min(mix.reference_n, mix.current_n), thresholds)
    alerts.append(_drift_alert("persona_mix", PERSONA_MIX, mix.psi, sev, thresholds))
    shares = [
        PersonaShare(persona=p, reference=ref_mix.get(p, 0), current=cur_mix.get(p, 0),
                     reference_share=ref_mix.get(p, 0) / (mix.reference_n or 1),
                     current_share=cur_mix.get(p, 0) / (mix.current_n or 1))
        for p in mix.bins
    ]  # fmt: skip
    return DriftReport(
        reference=DriftWindow(start=first, end=middle), current=DriftWindow(start=middle, end=now), bins=bins,
        max_buyers=max_buyers, features=features,
        persona_mix=PersonaMixDrift(psi=mix.psi, severity=sev, reference_n=mix.reference_n,
                                    current_n=mix.current_n, personas=shares),
        alerts=_sorted(alerts),
    )  # fmt: skip


# -- every alert of a workspace --------------------------------------------------------------------


def _sorted(alerts: Iterable[Alert | None]) -> list[Alert]:
    return sorted(
        (a for a in alerts if a is not None), key=lambda a: (a.severity != "alert", a.kind, a.subject)
    )


@dataclass(frozen=True, slots=True)
class Health:
    """Everything the alerts and the gauges need of one workspace."""

    alerts: AlertsReport
    drift: DriftReport


def check(
    *, session: Session, workspace_id: str, thresholds: Thresholds = DEFAULTS, days: int = DAYS,
    reference_days: int = REFERENCE_DAYS, current_days: int = CURRENT_DAYS, policy: OpePolicy = "model",
    estimator: OpeEstimator = "dr", now: datetime | None = None,
) -> Health:  # fmt: skip
    """Every alert of the workspace: feature and persona-mix drift, and for each placement with decisions in
    the last ``days`` days the model's reward rate against the holdout's and the change of ``policy``'s OPE
    (``estimator``) over the last ``days`` days against the ``days`` before."""
    now = now or utcnow()
    report = drift(session=session, workspace_id=workspace_id, reference_days=reference_days,
                   current_days=current_days, thresholds=thresholds, now=now)  # fmt: skip
    alerts: list[Alert | None] = list(report.alerts)
    for name, rates in sorted(_rates(session, workspace_id, None, _period(now, days), now).items()):
        alerts.append(_reward_alert(name, rates.model.read(), rates.holdout.read(), thresholds))
        report_ope = ope(session=session, workspace_id=workspace_id, placement=name, days=days, now=now,
                         policy=policy, estimator=estimator)  # fmt: skip
        alerts.append(_ope_alert(name, report_ope, thresholds))
    return Health(alerts=AlertsReport(generated_at=now, thresholds=thresholds, alerts=_sorted(alerts)),
                  drift=report)  # fmt: skip


# -- Prometheus: refreshed on scrape, from a short-lived cache --------------------------------------

FEATURE_PSI = Gauge("offerloop_feature_psi", "PSI of a numeric buyer feature, reference vs current window",
                    ["workspace", "feature"])  # fmt: skip
PERSONA_MIX_PSI = Gauge("offerloop_persona_mix_psi", "PSI of the persona mix, reference vs current window",
                        ["workspace"])  # fmt: skip
ALERTS = Gauge("offerloop_health_alerts", "Health alerts at severity 'alert' (default thresholds)",
               ["workspace", "kind"])  # fmt: skip
KINDS = ("feature_drift", "persona_mix", "reward_drop", "ope_drop")

CACHE_TTL_S = 60.0
SCRAPE_BUDGET_S = 0.5  # in-scrape recomputation (one-connection databases): stop once this much time is spent

_lock = threading.Lock()  # guards _cache and _sweeper, never held while computing
_cache: dict[str, tuple[float, Health | None]] = {}  # None: the last computation failed
_sweeper: threading.Thread | None = None


def refresh_metrics(
    db: Database, *, every_s: float = CACHE_TTL_S, clock: Callable[[], float] = time.monotonic
) -> None:
    """Set the health gauges of every workspace before a scrape, from figures at most ``every_s`` seconds
    old (``OFFERLOOP_HEALTH_METRICS_EVERY_S``; 0 turns the gauges off: the API still answers). Stale workspaces (the stalest first) are recomputed in a background thread, one sweep at a time, so
    a scrape never waits for them: it publishes what the last sweep left (nothing for a workspace until its
    first sweep ends). A database bound to one connection (tests, one-connection setups) cannot be shared with
    another thread: there the scrape recomputes stale workspaces itself while it has spent less than
    :data:`SCRAPE_BUDGET_S` (at least one per scrape); the others keep their last figures."""
    global _sweeper
    if every_s <= 0:
        return
    if isinstance(db.bind, Engine):
        with _lock:
            if _sweeper is None or not _sweeper.is_alive():
                _sweeper = threading.Thread(
                    target=_sweep, args=(db, clock, None, every_s), name="health-metrics", daemon=True
                )
                _sweeper.start()
    else:
        _sweep(db, clock, SCRAPE_BUDGET_S, every_s)
    _publish()


def wait_for_sweep(timeout: float | None = None) -> None:
    """Block until the background sweep (if any) has finished: shutdown, and tests."""
    sweeper = _sweeper
    if sweeper is not None:
        sweeper.join(timeout)


def _sweep(db: Database, clock: Callable[[], float], budget: float | None, every_s: float) -> None:
    started = clock()
    with db.read() as session:
        ids = [w.id for w in workspace_service.list_workspaces(session=session)]
        with _lock:
            for gone in set(_cache) - set(ids):
                del _cache[gone]
            stale = sorted((_cache[w][0] if w in _cache else -math.inf, w) for w in ids)  # stalest first
        for i, (computed, workspace_id) in enumerate(stale):
            if clock() - computed < every_s or (i and budget is not None and clock() - started >= budget):
                break
            figures: Health | None = None
            try:
                with session.begin_nested():  # a failure rolls back to here, the sweep goes on
                    figures = check(session=session, workspace_id=workspace_id)
            except (
                Exception
            ):  # one workspace's failure must not stop the others' gauges: retried after the TTL
                log.exception("health figures of workspace %s failed", workspace_id)
            with _lock:
                _cache[workspace_id] = (clock(), figures)


def _publish() -> None:
    with _lock:
        FEATURE_PSI.clear()
        PERSONA_MIX_PSI.clear()
        ALERTS.clear()
        for workspace_id, (_, figures) in _cache.items():
            if figures is None:
                continue
            for f in figures.drift.features:
                if f.psi is not None:
                    FEATURE_PSI.labels(workspace_id, f.feature).set(f.psi)
            if figures.drift.persona_mix.psi is not None:
                PERSONA_MIX_PSI.labels(workspace_id).set(figures.drift.persona_mix.psi)
            for kind in KINDS:
                count = sum(a.kind == kind and a.severity == "alert" for a in figures.alerts.alerts)
                ALERTS.labels(workspace_id, kind).set(count)


def forget_cache() -> None:
    """Drop every cached figure and the gauges published from them (tests)."""
    wait_for_sweep()
    with _lock:
        _cache.clear()
    _publish()
