"""`offerloop jobs`: list jobs by state and kind, and replay a parked one."""

from __future__ import annotations

import json

from typer.testing import CliRunner

from offerloop.cli.common import database
from offerloop.config import Settings
from offerloop.core.clock import utcnow
from offerloop.jobs import lease, queue
from offerloop.models.jobs import Job

cli = CliRunner()


def test_list_parked_jobs_then_replay_one(tmp_path, monkeypatch):
    from offerloop.cli.main import app

    url = f"sqlite:///{tmp_path / 'jobs.db'}"
    monkeypatch.setenv("OFFERLOOP_DATABASE_URL", url)
    now = utcnow()
    with database(Settings(database_url=url)) as db:
        with db.write() as session:
            for key in ("a", "b"):
                queue.enqueue(session, kind="test.cli", key=key, now=now)
        with db.write() as session:
            [job] = lease.claim(session, owner="w", now=now, lease_s=60, kinds=("test.cli",))
            lease.fail(job, now=now, error="RuntimeError: broken", max_attempts=1, base_s=1, cap_s=1)
            parked_id = job.id
    listed = cli.invoke(app, ["jobs", "list", "--parked", "--json"], catch_exceptions=False)
    assert listed.exit_code == 0
    assert [
        (j["id"], j["key"], j["state"], j["attempts"], j["last_error"]) for j in json.loads(listed.stdout)
    ] == [(parked_id, "a", "parked", 1, "RuntimeError: broken")]
    queued = cli.invoke(
        app, ["jobs", "list", "--state", "queued", "--kind", "test.cli"], catch_exceptions=False
    )
    assert queued.stdout.splitlines()[-1] == "1 jobs"
    replayed = cli.invoke(app, ["jobs", "replay", str(parked_id)], catch_exceptions=False)
    assert replayed.exit_code == 0 and replayed.stdout.strip() == f"job {parked_id} (test.cli a) queued"
    with database(Settings(database_url=url)) as db, db.read() as session:
        job = session.get(Job, parked_id)
        assert job is not None and (job.state, job.attempts) == ("queued", 0)
    missing = cli.invoke(app, ["jobs", "replay", "999999"])
    assert missing.exit_code == 1 and "job_not_found" in missing.output
