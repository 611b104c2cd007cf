"""/readyz must name a consumer that has made no progress for minutes because its step itself keeps failing
(an event its read cannot load: a damaged row), not only one whose rows nobody touched."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select, text, update
from tests.conftest import basic

from offerloop.core.clock import utcnow
from offerloop.jobs import runner as jobs_runner
from offerloop.models import Job
from offerloop.pipeline import log as pipeline_log
from offerloop.pipeline import runner, status


def test_a_consumer_whose_step_fails_for_ten_minutes_is_reported_stuck(client, db, workspace) -> None:
    with db.write() as session:  # other tests' committed workspaces are set aside (rolled back after)
        session.execute(
            update(Job)
            .where(Job.workspace_id != workspace.id, Job.kind.in_(runner.kinds()))
            .values(state="parked")
        )
    pipeline_log.set_inline(db, False)
    batch = [{"type": "track", "userId": "u", "event": "Clicked", "messageId": f"s-{i}"} for i in range(3)]
    assert (
        client.post("/v1/batch", json={"batch": batch}, headers=basic(workspace.write_key)).status_code == 200
    )
    with db.write() as session:  # the second event's row is damaged: the identity step cannot even read it
        damage = (
            "UPDATE events SET timestamp = 'infinity' WHERE message_id = 's-1' AND workspace_id = :ws"
            if session.get_bind().dialect.name == "postgresql"
            else "UPDATE events SET properties = '{' WHERE message_id = 's-1' AND workspace_id = :ws"
        )
        session.execute(text(damage), {"ws": workspace.id})
    start = now = utcnow() + timedelta(seconds=1)
    failures = 0
    while now < start + timedelta(minutes=10):  # a worker retries whenever the row comes due
        ran = jobs_runner.run_due(db, owner="w", now=now, only=runner.kinds(), limit=10)
        failures += sum(r.error is not None for r in ran)
        now += timedelta(seconds=5)
        if now - start < timedelta(seconds=30):
            assert status.stuck(db, now=now) == []  # a few failures backing off are not "stuck" yet
    with db.read() as session:
        identity = session.scalars(
            select(Job).where(Job.workspace_id == workspace.id, Job.kind == "consumer:identity")
        ).one()
        assert (identity.cursor, identity.state) == (0, "queued")  # no progress at all in ten minutes
    assert failures >= 20
    assert status.stuck(db, now=now) == ["identity"]
