"""Test harness: a real database (SQLite file, or PostgreSQL via OFFERLOOP_TEST_DATABASE_URL), its schema
built by the migrations, and every test inside one transaction rolled back at the end."""

from __future__ import annotations

import base64
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient
from hypothesis import settings as hypothesis_settings
from sqlalchemy import Engine, create_engine, make_url, text
from tests.checkout.log import new_workspaces_forget_their_work

from offerloop.api import create_app
from offerloop.cli.process import ServerProcess
from offerloop.config import Settings
from offerloop.db import migrate
from offerloop.db.engine import make_engine
from offerloop.db.uow import Database
from offerloop.pipeline import log as pipeline_log
from offerloop.worker import registry as worker_registry
from offerloop.workspaces import service as workspace_service
from offerloop.workspaces.schemas import WorkspaceCreated

PG_URL = os.environ.get("OFFERLOOP_TEST_DATABASE_URL")

# Property tests are seeded like everything else: the same examples on every run and machine, and
# never timed (a per-example deadline fails on a loaded machine; speed is measured in bench/).
hypothesis_settings.register_profile(
    "offerloop", derandomize=True, database=None, print_blob=True, deadline=None
)
hypothesis_settings.load_profile("offerloop")

# Every consumer and job kind is registered from the start, as in a server: a test run alone processes the
# log like the same test run after one that happened to create an app.
worker_registry.load()


def _worker_database(url: str) -> str:
    """Under pytest-xdist each worker process gets its own PostgreSQL database (``<name>_gw0``, …), created
    when missing: the suite drops and rebuilds the schema, which two processes cannot share."""
    worker = os.environ.get("PYTEST_XDIST_WORKER")
    if not worker:
        return url
    parsed = make_url(url)
    name = f"{parsed.database}_{worker}"
    admin = create_engine(parsed.set(database="postgres"), isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            if (
                conn.execute(text("SELECT 1 FROM pg_database WHERE datname = :n"), {"n": name}).first()
                is None
            ):
                conn.execute(text(f'CREATE DATABASE "{name}"'))
    finally:
        admin.dispose()
    return parsed.set(database=name).render_as_string(hide_password=False)


@pytest.fixture(scope="session")
def database_url(tmp_path_factory: pytest.TempPathFactory) -> str:
    if PG_URL:
        return _worker_database(PG_URL)
    return f"sqlite:///{tmp_path_factory.mktemp('db') / 'test.db'}"


@pytest.fixture(scope="session")
def engine(database_url: str) -> Iterator[Engine]:
    eng = make_engine(database_url)
    if eng.dialect.name == "postgresql":
        with eng.begin() as conn:
            conn.execute(text("DROP SCHEMA IF EXISTS public CASCADE"))
            conn.execute(text("CREATE SCHEMA public"))
    migrate.upgrade(eng)
    yield eng
    eng.dispose()


@pytest.fixture
def db(engine: Engine) -> Iterator[Database]:
    """A Database whose every unit of work is a SAVEPOINT inside one rolled-back transaction."""
    connection = engine.connect()
    outer = connection.begin()
    database = Database(connection, join_transaction_mode="create_savepoint")
    # No runner threads here: appends are processed inline after each unit of work commits.
    pipeline_log.set_inline(database)
    yield database
    outer.rollback()
    connection.close()


@pytest.fixture
def settings(database_url: str) -> Settings:
    return Settings(environment="test", database_url=database_url, log_json=True, log_level="WARNING")


@pytest.fixture
def client(db: Database, settings: Settings) -> Iterator[TestClient]:
    app = create_app(settings, db=db)
    with TestClient(app, raise_server_exceptions=False) as c:
        yield c


@pytest.fixture
def workspace(db: Database) -> WorkspaceCreated:
    with db.write() as session:
        return workspace_service.create_workspace(session=session, name="Test Creator")


@pytest.fixture
def other_workspace(db: Database) -> WorkspaceCreated:
    with db.write() as session:
        return workspace_service.create_workspace(session=session, name="Other Creator")


def basic(key: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{key}:".encode()).decode()}


def bearer(key: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {key}"}


def tampered(signed: str) -> str:
    """A signed token (``body.signature``) with its signature's first character changed: a forgery that always
    differs from the real one. Changing the last characters does not: they may already be the replacement (one
    run in a few hundred), and the last character of base64 carries unused bits that decoding ignores."""
    body, dot, sig = signed.rpartition(".")
    return f"{body}{dot}{'B' if sig[0] == 'A' else 'A'}{sig[1:]}"


@pytest.fixture
def write_headers(workspace: WorkspaceCreated) -> dict[str, str]:
    return basic(workspace.write_key)


@pytest.fixture
def secret_headers(workspace: WorkspaceCreated) -> dict[str, str]:
    return bearer(workspace.secret_key)


class LiveServer(ServerProcess):
    """`offerloop serve` on loopback, with the CLI pointed at the same database."""

    def env(self) -> dict[str, str]:
        # Its /metrics would sweep the health figures of every workspace in the shared test database, in the
        # background, for each live server: off here (tests/analytics test the gauges themselves).
        return {**super().env(), "OFFERLOOP_HEALTH_METRICS_EVERY_S": "0"}

    def cli(self, *args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [sys.executable, "-m", "offerloop.cli.main", *args],
            env=self.env(),
            capture_output=True,
            text=True,
            check=True,
        )


def running_server(
    kind: type[LiveServer], tmp_path: Path, engine: Engine, database_url: str
) -> Iterator[LiveServer]:
    """A live server of ``kind`` on the test database (PostgreSQL) or a file of its own (SQLite), stopped after."""
    url = database_url if engine.dialect.name == "postgresql" else f"sqlite:///{tmp_path / 'live.db'}"
    server = kind(url, log_path=tmp_path / "server.log")
    with new_workspaces_forget_their_work(engine):
        server.start()
        yield server
        server.stop()


@pytest.fixture
def live_server(tmp_path: Path, engine: Engine, database_url: str) -> Iterator[LiveServer]:
    yield from running_server(LiveServer, tmp_path, engine, database_url)


def msg(**fields: Any) -> dict[str, Any]:
    """A Segment message with a fixed timestamp unless given."""
    fields.setdefault("timestamp", "2026-11-01T10:00:00Z")
    return fields
