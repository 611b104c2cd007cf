"""Black box: a real `offerloop serve` (SQLite, or PostgreSQL with OFFERLOOP_TEST_DATABASE_URL) renews a
manual-provider subscription by itself when its period ends, and a restarted server does not renew it again.
The server's job clock is moved with its test clock file (honoured only in environment=test) so that the
period, a month long, ends two seconds after the test says so."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import httpx
import pytest
from sqlalchemy import Engine, select
from tests.conftest import LiveServer, bearer

from offerloop.checkout import due
from offerloop.core.clock import utcnow
from offerloop.db.engine import make_engine
from offerloop.jobs.runner import RECURRING_KEY
from offerloop.models import Job, Order, Subscription

pytestmark = pytest.mark.server
CATALOG = Path(__file__).resolve().parents[2] / "examples" / "demo" / "offers.yaml"
DEADLINE_S = 30.0


@pytest.fixture
def server(tmp_path: Path, engine: Engine, database_url: str, monkeypatch) -> Iterator[LiveServer]:
    monkeypatch.setenv("OFFERLOOP_ENVIRONMENT", "test")
    monkeypatch.setenv("OFFERLOOP_TEST_CLOCK_FILE", str(tmp_path / "clock"))
    url = database_url if engine.dialect.name == "postgresql" else f"sqlite:///{tmp_path / 'live.db'}"
    srv = LiveServer(url, log_path=tmp_path / "server.log")
    srv.start()
    yield srv
    srv.stop()


def until(what: str, check) -> object:
    """Poll ``check`` until it returns something truthy, failing after DEADLINE_S."""
    deadline = time.monotonic() + DEADLINE_S
    while not (found := check()):
        assert time.monotonic() < deadline, f"not within {DEADLINE_S} s: {what}"
        time.sleep(0.05)
    return found


def test_a_real_server_renews_a_manual_subscription_at_its_period_end_once(
    server: LiveServer, tmp_path
) -> None:
    ws = json.loads(server.cli("workspace", "create", "Due live", "--json").stdout)
    server.cli("offers", "load", "-w", ws["id"], str(CATALOG))
    store = make_engine(server.database_url)

    def orders() -> list[tuple[str, int, datetime]]:
        with store.connect() as conn:
            rows = conn.execute(
                select(Order.status, Order.total, Order.created_at)
                .where(Order.workspace_id == ws["id"])
                .order_by(Order.created_at)
            )
            return [tuple(r) for r in rows]

    try:
        with httpx.Client(base_url=server.url, headers=bearer(ws["secret_key"]), timeout=30) as http:
            r = http.post("/v1/checkout", json={"user_id": "ada", "offer": "inner-circle"})
            assert r.status_code == 201, r.text
            assert http.post(f"/v1/orders/{r.json()['id']}/paid", json={}).status_code == 200
            with store.connect() as conn:
                sid = conn.execute(
                    select(Subscription.id).where(Subscription.workspace_id == ws["id"])
                ).scalar_one()

            def state() -> dict:
                got = http.get(f"/v1/subscriptions/{sid}")
                assert got.status_code == 200, got.text
                return got.json()["state"]

            start = datetime.fromisoformat(state()["current_period_start"])
            end = datetime.fromisoformat(state()["current_period_end"])
            assert end - start >= timedelta(days=28)
            assert [o[:2] for o in orders()] == [("paid", 9900)]

            # The server's job clock now reads two seconds before the period's end.
            (tmp_path / "clock").write_text(str((end - utcnow()).total_seconds() - 2))

            def renewal() -> dict | None:
                now = state()
                return now if datetime.fromisoformat(now["current_period_start"]) != start else None

            renewed = until("the period renews", renewal)
            assert datetime.fromisoformat(renewed["current_period_start"]) == end
            assert datetime.fromisoformat(renewed["current_period_end"]) > end + timedelta(days=27)
            assert [o[:2] for o in orders()] == [("paid", 9900), ("paid", 9900)]  # charged once, booked
            assert orders()[1][2] == end

        # A restarted server (new runner, new owner), its clock an hour past the end, runs its start-up sweep
        # and renews nothing again.
        server.stop()
        later = end + timedelta(hours=1)
        (tmp_path / "clock").write_text(str((later - utcnow()).total_seconds()))
        server.start()

        def swept() -> bool:
            with store.connect() as conn:
                row = conn.execute(
                    select(Job.updated_at, Job.lease_owner).where(
                        Job.kind == due.SWEEP, Job.key == RECURRING_KEY
                    )
                ).one_or_none()
            return row is not None and row.lease_owner is None and row.updated_at >= later

        until("the restarted server's sweep", swept)
        with store.connect() as conn:
            queued = conn.execute(
                select(Job.state, Job.run_at).where(
                    Job.kind == due.PERIOD_END, Job.key == due.key(ws["id"], sid)
                )
            ).one()
        assert (queued.state, queued.run_at) == (
            "queued",
            datetime.fromisoformat(renewed["current_period_end"]),
        )
        assert len(orders()) == 2
    finally:
        store.dispose()
