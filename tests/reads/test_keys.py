"""Every unique key and per-buyer lookup index carries workspace_id (Citus by workspace), and the keys
migration keeps the data and the guarantees on both databases."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from alembic import command
from sqlalchemy import Engine, UniqueConstraint, create_engine, func, insert, inspect, select, text
from sqlalchemy.engine import make_url
from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session
from tests.conftest import PG_URL

from offerloop.db.base import Base
from offerloop.db.migrate import alembic_config
from offerloop.models import ArtifactFile, ArtifactVersion, Decision, FulfilmentTask, Merge, PersonaChange
from offerloop.workspaces import service as workspace_service

# Tables whose unique keys cannot lead with a workspace, and why (docs/scaling.md: reference/local tables).
GLOBAL_UNIQUES = {
    "api_keys": "a key is looked up by its hash before its workspace is known: a Citus reference table",
    "jobs": "the work queue; some jobs belong to no workspace: a local table on the coordinator",
    "payment_events": "provider webhooks are deduplicated before their workspace is known (it may be null)",
}
# Lookup indexes kept on a foreign-key column alone: they serve ON DELETE CASCADE of the parent row.
FK_INDEXES = {
    ("identities", ("buyer_id",)),
    ("touchpoints", ("event_id",)),
    ("atom_uses", ("artifact_id", "version")),
    ("console_sessions", ("user_id",)),  # a user's sessions, ended when the user is disabled
}
# Indexes for background scans across every workspace (claims), not per-buyer reads.
SCAN_INDEXES = {("fulfilment_tasks", ("status", "next_attempt_at")), ("jobs", ("state", "run_at")),
                ("users", ("email",)),  # console sign-in finds an e-mail's accounts in any workspace
                ("report_snapshots", ("computed_at",))}  # fmt: skip  # the prune of unused snapshots, by age
# Owned by the event pipeline's helper (issue 10, the events table and its quarantine): see docs/scaling.md.
PIPELINE_INDEXES = {("events", ("buyer_id", "timestamp")), ("quarantine", ("anonymous_id",)),
                    ("quarantine", ("user_id",))}  # fmt: skip
AT = datetime(2026, 12, 5, tzinfo=UTC)


def test_every_unique_key_leads_with_workspace_id() -> None:
    missing = []
    for table in Base.metadata.tables.values():
        if "workspace_id" not in table.c or table.name in GLOBAL_UNIQUES:
            continue
        keys = [
            [c.name for c in con.columns] for con in table.constraints if isinstance(con, UniqueConstraint)
        ]
        keys += [[c.name for c in i.columns] for i in table.indexes if i.unique]
        keys += [[c.name] for c in table.columns if c.unique]
        missing += [f"{table.name}{tuple(k)}" for k in keys if k[0] != "workspace_id"]
    assert missing == []


def test_every_lookup_index_leads_with_workspace_id() -> None:
    allowed = FK_INDEXES | SCAN_INDEXES | PIPELINE_INDEXES
    missing = [
        f"{table.name}{cols}"
        for table in Base.metadata.tables.values()
        if "workspace_id" in table.c and table.name not in GLOBAL_UNIQUES
        for cols in (tuple(c.name for c in i.columns) for i in table.indexes)
        if cols[0] != "workspace_id" and (table.name, cols) not in allowed
    ]
    assert missing == []


@pytest.fixture
def fresh_engine(tmp_path) -> Iterator[Engine]:
    """An empty database of the suite's kind, for running migrations step by step."""
    if not PG_URL:
        engine = create_engine(f"sqlite:///{tmp_path / 'keys.db'}")
        yield engine
        engine.dispose()
        return
    name = f"test_keys_{uuid.uuid4().hex[:12]}"
    server = create_engine(make_url(PG_URL).set(database="postgres"), isolation_level="AUTOCOMMIT")
    with server.connect() as conn:
        conn.execute(text(f"CREATE DATABASE {name}"))
    engine = create_engine(make_url(PG_URL).set(database=name))
    try:
        yield engine
    finally:
        engine.dispose()
        with server.connect() as conn:
            conn.execute(text(f"DROP DATABASE {name}"))
        server.dispose()


def _migrate(engine: Engine, target: str, *, down: bool = False) -> None:
    with engine.begin() as conn:
        (command.downgrade if down else command.upgrade)(alembic_config(connection=conn), target)


def _uniques(engine: Engine, table: str) -> set[tuple[str, ...]]:
    return {tuple(u["column_names"]) for u in inspect(engine).get_unique_constraints(table)}


def _indexes(engine: Engine, table: str) -> set[tuple[str, ...]]:
    return {tuple(i["column_names"]) for i in inspect(engine).get_indexes(table)}


def _seed(engine: Engine) -> str:
    with Session(engine) as session:
        ws = workspace_service.create_workspace(session=session, name="Keys").id
        session.commit()
    rows = {
        ArtifactVersion: [{"workspace_id": ws, "artifact_id": "art_1", "version": v, "status": "approved",
                           "document": {"v": v}, "provenance": {}, "preview_html": "", "changelog": "",
                           "created_at": AT} for v in (1, 2)],
        ArtifactFile: [{"workspace_id": ws, "artifact_id": "art_1", "version": 1, "format": "pdf",
                        "media_type": "application/pdf", "sha256": "0" * 64, "size": 3, "content": b"pdf",
                        "created_at": AT}],
        FulfilmentTask: [{"workspace_id": ws, "order_id": "ord_1", "buyer_id": "byr_1", "component": "module",
                          "ref": "m1", "spec": {}, "status": "done", "attempts": 1, "next_attempt_at": AT}],
        Merge: [{"id": "mrg_1", "workspace_id": ws, "winner_id": "byr_1", "loser_id": "byr_2", "reason": "email",
                 "created_at": AT, "snapshot": {}}],
        PersonaChange: [{"workspace_id": ws, "buyer_id": "byr_1", "to_persona": "builder", "confidence": 0.5,
                         "at": AT}],
    }  # fmt: skip
    with engine.begin() as conn:
        if conn.dialect.name == "sqlite":
            conn.exec_driver_sql("PRAGMA foreign_keys=OFF")  # the artifact row itself is not needed here
        else:
            conn.exec_driver_sql("SET session_replication_role = replica")
        for model, values in rows.items():
            conn.execute(insert(model), values)
        if conn.dialect.name == "postgresql":
            conn.exec_driver_sql("SET session_replication_role = DEFAULT")
    return ws


def _counts(engine: Engine) -> dict[str, int]:
    with engine.connect() as conn:
        models = (ArtifactVersion, ArtifactFile, FulfilmentTask, Merge, PersonaChange, Decision)
        return {m.__tablename__: conn.scalar(select(func.count()).select_from(m)) for m in models}


def test_the_keys_migration_keeps_rows_and_guarantees_both_ways(fresh_engine: Engine) -> None:
    _migrate(fresh_engine, "jobs_20261205")
    ws = _seed(fresh_engine)
    before = _counts(fresh_engine)
    assert ("artifact_id", "version") in _uniques(fresh_engine, "artifact_versions")

    _migrate(fresh_engine, "keys_20261205")
    assert _counts(fresh_engine) == before
    assert _uniques(fresh_engine, "artifact_versions") == {("workspace_id", "artifact_id", "version")}
    assert _uniques(fresh_engine, "artifact_files") == {("workspace_id", "artifact_id", "version", "format")}
    assert _uniques(fresh_engine, "fulfilment_tasks") == {("workspace_id", "order_id", "component", "ref")}
    assert ("workspace_id", "buyer_id", "created_at") in _indexes(fresh_engine, "decisions")
    assert ("buyer_id", "created_at") not in _indexes(fresh_engine, "decisions")
    assert ("workspace_id", "buyer_id", "occurred_at") in _indexes(fresh_engine, "touchpoints")
    assert ("workspace_id", "loser_id") in _indexes(fresh_engine, "merges")
    assert ("workspace_id", "buyer_id", "at") in _indexes(fresh_engine, "persona_history")
    # still unique within the workspace
    with pytest.raises(IntegrityError), fresh_engine.begin() as conn:
        if conn.dialect.name == "sqlite":
            conn.exec_driver_sql("PRAGMA foreign_keys=OFF")
        conn.execute(insert(FulfilmentTask), {"workspace_id": ws, "order_id": "ord_1", "buyer_id": "byr_1",
                                              "component": "module", "ref": "m1", "spec": {}, "status": "queued",
                                              "attempts": 0, "next_attempt_at": AT})  # fmt: skip

    _migrate(fresh_engine, "jobs_20261205", down=True)
    assert _counts(fresh_engine) == before
    assert _uniques(fresh_engine, "artifact_versions") == {("artifact_id", "version")}
    assert ("buyer_id", "created_at") in _indexes(fresh_engine, "decisions")
