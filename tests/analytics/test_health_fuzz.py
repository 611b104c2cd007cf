"""schemathesis over /v1/health/* against a running `offerloop serve`: no generated request (valid or not) is
answered with a server error, on a workspace that has decisions, features and personas."""

from __future__ import annotations

import json
from datetime import timedelta

import pytest
import requests
import schemathesis
from sqlalchemy import delete
from tests.analytics.test_health_service import home_log, ope_log, population
from tests.api.test_schemathesis import _fuzz
from tests.conftest import LiveServer, bearer

from offerloop.cli.common import database
from offerloop.config import Settings
from offerloop.core.clock import utcnow
from offerloop.models import Workspace

pytestmark = pytest.mark.server


def test_health_routes_answer_no_server_error(live_server: LiveServer) -> None:
    ws = json.loads(live_server.cli("workspace", "create", "Watched Creator", "--json").stdout)
    now = utcnow()
    with database(Settings(database_url=live_server.database_url)) as db, db.write() as session:
        population(session, ws["id"], now)
        home_log(
            session, ws["id"], now.replace(hour=0, minute=0, second=0, microsecond=0) - timedelta(days=3)
        )
        ope_log(session, ws["id"], now)
    try:
        schema = schemathesis.openapi.from_url(f"{live_server.url}/openapi.json")
        failures: list[str] = []
        sent = 0
        with requests.Session() as http:
            for result in schema.get_all_operations():
                operation = result.ok()
                if operation.path.startswith("/v1/health/"):
                    n, failed = _fuzz(
                        operation, url=live_server.url, http=http, auth=bearer(ws["secret_key"])
                    )
                    sent, failures = sent + n, failures + failed
    finally:
        # On PostgreSQL the live server shares the test database: the seeded decisions carry fixed ids that
        # later tests mint too, so the workspace goes with everything it holds (foreign keys cascade).
        with database(Settings(database_url=live_server.database_url)) as db, db.write() as session:
            session.execute(delete(Workspace).where(Workspace.id == ws["id"]))
    assert sent >= 30
    assert failures == [], "\n".join(failures[:20])
