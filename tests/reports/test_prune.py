"""Snapshots of parameters nobody views again are pruned: the recurring ``reports.prune`` job, on a controllable
clock, deletes every snapshot (any workspace) neither computed nor viewed for ``report_snapshot_keep_s``
(default 7 days), keeps the others, and running it again deletes nothing more."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from sqlalchemy import select
from tests.analytics.test_customer_analytics import build

from offerloop.config import Settings
from offerloop.db.uow import Database
from offerloop.jobs import runner
from offerloop.models import ReportSnapshot
from offerloop.reports import service, tasks  # noqa: F401  (tasks: registers the job kinds)
from offerloop.reports.schemas import CohortParams
from offerloop.workspaces.schemas import WorkspaceCreated

T0 = datetime(2026, 6, 1, 12, 0, tzinfo=UTC)
DAY = timedelta(days=1)
STALE, VIEWED, FRESH = CohortParams(periods=3), CohortParams(periods=4), CohortParams(periods=5)


def _kept(db: Database, *workspaces: str) -> list[tuple[str, int, datetime, datetime | None]]:
    with db.read() as session:
        rows = session.execute(
            select(ReportSnapshot.workspace_id, ReportSnapshot.params, ReportSnapshot.computed_at,
                   ReportSnapshot.viewed_at).where(ReportSnapshot.workspace_id.in_(workspaces))
        )  # fmt: skip
        found = [(w, int(p["periods"]), c, v) for w, p, c, v in rows]
    return sorted(found, key=lambda r: (workspaces.index(r[0]), r[1]))


def _prune(db: Database, now: datetime, settings: Settings) -> list[str]:
    return [r.status for r in runner.run_due(db, owner="t", now=now, only=(service.PRUNE_KIND,), limit=10,
                                             deps={"settings": settings})]  # fmt: skip


def _view(db: Database, ws: str, params: CohortParams, now: datetime):
    # slow (inline_s 0) and young enough (max_age_s huge): shown from its snapshot, nothing queued
    return service.show(db, workspace_id=ws, params=params, max_age_s=1e9, inline_s=0.0, now=now)


def test_snapshots_neither_computed_nor_viewed_for_the_keep_window_are_pruned_once(
    db: Database, workspace: WorkspaceCreated, other_workspace: WorkspaceCreated, settings: Settings
) -> None:
    ws, other = workspace.id, other_workspace.id
    build(db, ws)
    assert settings.report_snapshot_keep_s == 7 * 86_400  # the default
    service.compute(db, workspace_id=ws, params=STALE, now=T0 - 8 * DAY)
    service.compute(db, workspace_id=ws, params=VIEWED, now=T0 - 9 * DAY)
    service.compute(db, workspace_id=ws, params=FRESH, now=T0 - DAY)
    service.compute(db, workspace_id=other, params=STALE, now=T0 - 30 * DAY, raise_error=False)
    # a view marks the snapshot it shows, at most once an hour
    assert _view(db, ws, VIEWED, T0 - 2 * DAY).computed_at == T0 - 9 * DAY
    _view(db, ws, VIEWED, T0 - 2 * DAY + timedelta(minutes=59))
    assert [r[3] for r in _kept(db, ws) if r[1] == 4] == [T0 - 2 * DAY]

    runner.ensure_recurring(db, now=T0, only=(service.PRUNE_KIND,))
    assert _prune(db, T0 - timedelta(seconds=1), settings) == []  # nothing before its time
    assert _prune(db, T0, settings) == ["again"]
    assert _kept(db, ws, other) == [
        (ws, 4, T0 - 9 * DAY, T0 - 2 * DAY), (ws, 5, T0 - DAY, None),
    ]  # fmt: skip
    assert _prune(db, T0 + timedelta(minutes=59), settings) == []  # next pass in an hour
    assert _prune(db, T0 + timedelta(hours=1), settings) == ["again"]  # idempotent: nothing more to delete
    assert [r[1] for r in _kept(db, ws, other)] == [4, 5]

    # six days on: the viewed one is 8 days unused, the fresh one exactly 7 (kept: not longer than the window)
    later = T0 + 6 * DAY
    assert _prune(db, later, settings) == ["again"]
    assert _kept(db, ws, other) == [(ws, 5, T0 - DAY, None)]
    # a pruned report is computed again like one never computed: on view when cheap, else by its job
    cheap = service.show(db, workspace_id=ws, params=STALE, max_age_s=300.0, inline_s=60.0, now=later)
    assert cheap.inline and cheap.computed_at == later
    assert [r[1] for r in _kept(db, ws)] == [3, 5]
    # an hour on, the fresh one has been unused for longer than the window: gone; the recomputed one stays
    assert _prune(db, later + timedelta(hours=1), settings) == ["again"]
    assert [r[1] for r in _kept(db, ws)] == [3]


def test_the_keep_window_is_a_setting(db: Database, workspace: WorkspaceCreated, settings: Settings) -> None:
    build(db, workspace.id)
    service.compute(db, workspace_id=workspace.id, params=STALE, now=T0 - 3 * DAY)
    service.compute(db, workspace_id=workspace.id, params=FRESH, now=T0 - DAY)
    settings.report_snapshot_keep_s = 2 * 86_400
    runner.ensure_recurring(db, now=T0, only=(service.PRUNE_KIND,))
    assert _prune(db, T0, settings) == ["again"]
    assert [r[1] for r in _kept(db, workspace.id)] == [5]


def test_a_full_pass_runs_again_at_once(
    db: Database, workspace: WorkspaceCreated, settings: Settings, monkeypatch
) -> None:
    build(db, workspace.id)
    for periods in (2, 3, 4):
        service.compute(
            db, workspace_id=workspace.id, params=CohortParams(periods=periods), now=T0 - 10 * DAY
        )
    monkeypatch.setattr(service, "PRUNE_BATCH", 2)
    runner.ensure_recurring(db, now=T0, only=(service.PRUNE_KIND,))
    assert _prune(db, T0, settings) == ["again"]
    assert len(_kept(db, workspace.id)) == 1
    assert _prune(db, T0, settings) == ["again"]  # due again at once: the rest goes
    assert _kept(db, workspace.id) == []
    assert _prune(db, T0, settings) == []
