"""Report snapshots: computed on view while cheap; otherwise the last snapshot is shown (with its age) while one
background job per report computes it again; errors are kept like results; workspaces never share one."""

from __future__ import annotations

from datetime import date, timedelta

import pytest
from sqlalchemy import func, select
from tests.analytics.helpers import add_buyers, add_order
from tests.analytics.test_customer_analytics import build

from offerloop.analytics.schemas import Cohorts
from offerloop.core.clock import utcnow
from offerloop.core.errors import OfferloopError
from offerloop.db.uow import Database
from offerloop.identity import service as identity_service
from offerloop.jobs import runner
from offerloop.models import Job, ReportSnapshot
from offerloop.reports import service, tasks  # noqa: F401  (tasks: registers the job kind)
from offerloop.reports.exceptions import StoredError
from offerloop.reports.schemas import (
    AttributionParams,
    CohortParams,
    EvaluationParams,
    LTVParams,
    PersonaTimelineParams,
    VelocityParams,
)
from offerloop.workspaces.schemas import WorkspaceCreated

PARAMS = CohortParams(periods=3)


def _sizes(cohorts: Cohorts) -> list[tuple[str, int]]:
    return [(c.cohort, c.size) for c in cohorts.cohorts]


def _jobs(db: Database) -> list[tuple[str, str]]:
    with db.read() as session:
        rows = session.execute(
            select(Job.key, Job.state).where(Job.kind == service.JOB_KIND).order_by(Job.id)
        )
        return [(r.key, r.state) for r in rows]


def _refresh(db: Database) -> list[str]:
    ran = runner.run_due(
        db, owner="test", now=utcnow() + timedelta(seconds=1), only=(service.JOB_KIND,), limit=10
    )
    return [r.status for r in ran]


def _show(db: Database, ws: str, params=PARAMS, *, inline_s: float = 0.0, max_age_s: float = 300.0):
    return service.show(db, workspace_id=ws, params=params, max_age_s=max_age_s, inline_s=inline_s)


BEFORE = [("2026-01", 3), ("2026-02", 2), ("2026-03", 1), ("2026-04", 1)]


def test_a_cheap_report_is_computed_on_every_view(db, workspace: WorkspaceCreated) -> None:
    build(db, workspace.id)
    first = _show(db, workspace.id, inline_s=60.0)
    assert first.inline and _sizes(first.body) == BEFORE and first.compute_s is not None
    add_buyers(db, workspace.id, "n1")
    add_order(db, workspace.id, "n1", "2026-05-02T10:00", 900)
    again = _show(db, workspace.id, inline_s=60.0)
    assert again.inline and _sizes(again.body) == [*BEFORE, ("2026-05", 1)]
    assert _jobs(db) == []  # nothing queued for a report computed on view
    with db.read() as session:
        mine = select(func.count()).where(ReportSnapshot.workspace_id == workspace.id)
        assert session.scalar(mine) == 1  # one per report


def test_a_slow_report_is_shown_from_its_snapshot_and_refreshed_by_one_job(db, workspace) -> None:
    build(db, workspace.id)
    _show(
        db, workspace.id
    )  # never computed, small workspace: computed on view (inline_s 0: "slow" from now on)
    add_buyers(db, workspace.id, "n1")
    add_order(db, workspace.id, "n1", "2026-05-02T10:00", 900)

    fresh = _show(db, workspace.id)  # younger than max_age: the snapshot, as it was, nothing queued
    assert not fresh.inline and not fresh.refreshing and _sizes(fresh.body) == BEFORE
    assert _jobs(db) == []

    stale = [_show(db, workspace.id, max_age_s=0.0) for _ in range(3)]  # older than max_age: shown, refreshed
    assert all(_sizes(s.body) == BEFORE and s.refreshing for s in stale)
    assert _jobs(db) == [(service.job_key(workspace.id, PARAMS), "queued")]  # one job, however many views

    assert _refresh(db) == ["done"]
    after = _show(db, workspace.id)
    assert not after.refreshing and _sizes(after.body) == [*BEFORE, ("2026-05", 1)]
    assert after.computed_at is not None and stale[0].computed_at is not None
    assert after.computed_at > stale[0].computed_at


def test_a_report_never_computed_in_a_large_workspace_is_queued(db, workspace, monkeypatch) -> None:
    build(db, workspace.id)
    monkeypatch.setattr(service, "INLINE_BUYERS", 3)  # "large": at least 3 buyers
    first = _show(db, workspace.id, inline_s=60.0)
    assert first.body is None and first.refreshing and not first.inline
    assert _show(db, workspace.id, inline_s=60.0).body is None
    assert _jobs(db) == [(service.job_key(workspace.id, PARAMS), "queued")]
    assert _refresh(db) == ["done"]
    # computed (quickly) in the background: from now on cheap, so computed on view again
    shown = _show(db, workspace.id, inline_s=60.0)
    assert shown.inline and _sizes(shown.body) == BEFORE


def test_an_error_is_kept_and_shown_like_a_result(db, workspace, monkeypatch) -> None:
    monkeypatch.setattr(service, "INLINE_BUYERS", 0)  # every workspace "large": the job computes it
    params = LTVParams(calibration_end=date(2026, 2, 28))
    assert _show(db, workspace.id, params).body is None
    assert _refresh(db) == ["done"]  # a domain error is the report's answer, not a failed job
    with pytest.raises(StoredError) as raised:
        _show(db, workspace.id, params)
    assert 400 <= raised.value.status_code < 500 and raised.value.code not in ("", "None")
    with pytest.raises(OfferloopError) as direct:  # computed for a view, the domain's own error is raised
        service.compute(db, workspace_id=workspace.id, params=params)
    assert (direct.value.code, direct.value.status_code, direct.value.message) == (
        raised.value.code,
        raised.value.status_code,
        raised.value.message,
    )


def test_workspaces_and_parameters_never_share_a_snapshot(db, workspace, other_workspace) -> None:
    build(db, workspace.id)
    _show(db, workspace.id)
    other = _show(db, other_workspace.id)  # the same parameters in another workspace: its own (empty) report
    assert other.body.cohorts == [] and other.inline
    # other parameters: not the first one's figures; the kind is known slow here (inline_s 0), so it is queued
    by_persona = _show(db, workspace.id, CohortParams(periods=3, by="persona"))
    assert by_persona.body is None and by_persona.refreshing
    assert _refresh(db) == ["done"] and _show(db, workspace.id, CohortParams(periods=3, by="persona")).body
    with db.read() as session:
        ours = ReportSnapshot.workspace_id.in_([workspace.id, other_workspace.id])
        keys = session.execute(select(ReportSnapshot.workspace_id, ReportSnapshot.key).where(ours)).all()
    assert len(set(keys)) == 3


def test_a_snapshot_that_no_longer_reads_is_computed_again(db, workspace) -> None:
    build(db, workspace.id)
    _show(db, workspace.id)
    with db.write() as session:
        row = session.scalar(select(ReportSnapshot).where(ReportSnapshot.workspace_id == workspace.id))
        row.body = {"cohorts": "not a list"}  # as an older version might have written it
    shown = _show(db, workspace.id)
    assert shown.body is None and shown.refreshing
    assert _refresh(db) == ["done"] and _sizes(_show(db, workspace.id).body) == BEFORE


def test_parameters_are_validated_and_keyed_canonically() -> None:
    assert service.key_of(CohortParams(periods=3)) == service.key_of(
        service.params_of({"kind": "cohorts", "periods": 3})
    )
    assert service.key_of(CohortParams(periods=3)) != service.key_of(CohortParams(periods=4))
    for bad in (
        {"kind": "cohorts", "periods": 0},
        {"kind": "nope"},
        {"kind": "cohorts", "extra": 1},
        [],
        "x",
    ):
        with pytest.raises(ValueError):
            service.params_of(bad)


@pytest.mark.parametrize(
    "params",
    [VelocityParams(), PersonaTimelineParams(bucket="day", periods=90), EvaluationParams(placement="home", days=7),
     AttributionParams(model="linear", start=date(2026, 11, 1)), CohortParams(by="persona", periods=6),
     LTVParams(calibration_end=date(2026, 2, 28), time_unit="day")],
)  # fmt: skip
def test_every_kind_travels_through_a_job_payload(params) -> None:
    """What a job carries (the parameters' JSON) reads back as the same report, for every kind there is."""
    assert service.params_of(params.model_dump(mode="json")) == params
    assert params.kind in service.KINDS  # type: ignore[attr-defined]


def test_every_computed_kind_has_parameters() -> None:
    kinds = {"velocity", "personas", "evaluation", "attribution", "cohorts", "ltv"}
    assert set(service.KINDS) == kinds


def test_erasing_a_buyer_drops_the_workspaces_snapshots(db, workspace, other_workspace) -> None:
    """Aggregates that counted an erased person are computed again without them; other workspaces keep theirs."""
    build(db, workspace.id)
    add_buyers(db, other_workspace.id, "x1")
    _show(db, workspace.id)
    _show(db, other_workspace.id)
    buyer = "b1"  # add_buyers names each buyer by its user id
    with db.write() as session:
        identity_service.delete_buyer(session=session, workspace_id=workspace.id, buyer_id=buyer, actor="t")
    with db.read() as session:
        left = session.scalars(select(ReportSnapshot.workspace_id)).all()
    assert workspace.id not in left and other_workspace.id in left
