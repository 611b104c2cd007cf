"""personas.timeline: buyers per persona at the end of each day or week, rebuilt from today's counts and the
changes, exactly; bounded input; one workspace's changes only."""

from __future__ import annotations

from datetime import date

import pytest
from tests.analytics.helpers import add_buyers, at, set_persona

from offerloop.core.errors import ValidationFailed
from offerloop.db.uow import Database
from offerloop.models import PersonaChange
from offerloop.personas import service
from offerloop.workspaces.schemas import WorkspaceCreated

TODAY = date(2026, 3, 11)  # a Wednesday


@pytest.fixture
def changes(db: Database, workspace: WorkspaceCreated, other_workspace: WorkspaceCreated) -> None:
    """Now: a, b fans, c a lurker. a became a fan on 03-02; c a lurker on 03-09 23:59; b a lurker on 03-04,
    then a fan on 03-10. The other workspace has a fan since 03-05."""
    add_buyers(db, workspace.id, "a", "b", "c")
    add_buyers(db, other_workspace.id, "z")
    for buyer, persona in (("a", "fan"), ("b", "fan"), ("c", "lurker")):
        set_persona(db, workspace.id, buyer, persona)
    set_persona(db, other_workspace.id, "z", "fan")
    rows = [(workspace.id, "a", None, "fan", "2026-03-02T08:00"), (workspace.id, "c", None, "lurker", "2026-03-09T23:59"),
            (workspace.id, "b", None, "lurker", "2026-03-04T00:00"), (workspace.id, "b", "lurker", "fan", "2026-03-10T12:00"),
            (other_workspace.id, "z", None, "fan", "2026-03-05")]  # fmt: skip
    with db.write() as session:
        for ws, buyer, before, after, when in rows:
            session.add(PersonaChange(workspace_id=ws, buyer_id=buyer, from_persona=before, to_persona=after,
                                      confidence=0.9, at=at(when)))  # fmt: skip


def test_days(db, workspace, changes) -> None:
    with db.read() as session:
        got = service.timeline(
            session=session, workspace_id=workspace.id, periods=10, bucket="day", today=TODAY
        )
    assert got.periods == [date(2026, 3, d) for d in range(2, 12)]
    assert [(s.persona, s.held, s.entered) for s in got.personas] == [
        ("fan", [1, 1, 1, 1, 1, 1, 1, 1, 2, 2], [1, 0, 0, 0, 0, 0, 0, 0, 1, 0]),
        ("lurker", [0, 0, 1, 1, 1, 1, 1, 2, 1, 1], [0, 0, 1, 0, 0, 0, 0, 1, 0, 0]),
    ]


def test_weeks_start_on_monday_and_changes_before_the_first_are_in_the_counts(db, workspace, changes) -> None:
    with db.read() as session:
        got = service.timeline(
            session=session, workspace_id=workspace.id, periods=2, bucket="week", today=TODAY
        )
    assert got.periods == [date(2026, 3, 2), date(2026, 3, 9)]
    assert [(s.persona, s.held, s.entered) for s in got.personas] == [
        ("fan", [1, 2], [1, 1]), ("lurker", [1, 1], [1, 1]),
    ]  # fmt: skip
    with db.read() as session:
        short = service.timeline(
            session=session, workspace_id=workspace.id, periods=1, bucket="day", today=TODAY
        )
    assert [(s.persona, s.held, s.entered) for s in short.personas] == [
        ("fan", [2], [0]),
        ("lurker", [1], [0]),
    ]


def test_an_empty_workspace_and_bounds(db, workspace) -> None:
    with db.read() as session:
        empty = service.timeline(session=session, workspace_id=workspace.id, periods=3, today=TODAY)
        assert empty.personas == [] and len(empty.periods) == 3
        for periods in (0, 367):
            with pytest.raises(ValidationFailed):
                service.timeline(session=session, workspace_id=workspace.id, periods=periods, today=TODAY)
