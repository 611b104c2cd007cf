"""The SQLite WAL stays bounded: a background round is a cheap PASSIVE checkpoint, escalated to TRUNCATE
once the WAL has grown past the bound (a reader held it open), and a WAL left by a killed process is cut
back at start-up. Every round is called directly: no test waits for the background thread."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine, text

from offerloop.config import Settings
from offerloop.db.engine import WalCheckpointer, make_engine

LIMIT = 256 * 1024  # bytes: small, so a few MB of writes is "well past" it
ROW = 8 * 1024


@pytest.fixture
def sqlite_path(tmp_path: Path) -> Path:
    return tmp_path / "wal.db"


@pytest.fixture
def wal_engine(sqlite_path: Path) -> Iterator[Engine]:
    engine = make_engine(
        f"sqlite:///{sqlite_path}", background_checkpoint=True, wal_size_limit=LIMIT, pool_size=2
    )
    with engine.begin() as conn:
        conn.execute(text("CREATE TABLE blobs (id INTEGER PRIMARY KEY, body BLOB NOT NULL)"))
    yield engine
    engine.dispose()


def wal_size(db: Path) -> int:
    wal = Path(f"{db}-wal")
    return wal.stat().st_size if wal.exists() else 0


def write_batch(engine: Engine, rows: int = 16) -> None:
    with engine.begin() as conn:
        conn.execute(
            text(
                "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < :n) "
                "INSERT INTO blobs (body) SELECT randomblob(:size) FROM n"
            ),
            {"n": rows, "size": ROW},
        )


def test_wal_grown_while_a_reader_held_it_is_truncated_under_the_bound_once_the_reader_is_gone(
    wal_engine: Engine, sqlite_path: Path
) -> None:
    # retry_s=0: every round may escalate (the back-off is timed; this test is not).
    checkpointer = WalCheckpointer(wal_engine, escalate_busy_ms=10, retry_s=0)
    write_batch(wal_engine)
    checkpointer.checkpoint()

    # A reader opens a snapshot and keeps it while ingest goes on: no checkpoint can reset the WAL.
    reader = wal_engine.connect().execution_options(readonly=True)
    reader.begin()
    assert reader.execute(text("SELECT count(*) FROM blobs")).scalar_one() == 16
    rounds = []
    for _ in range(24):
        write_batch(wal_engine)
        rounds.append(checkpointer.checkpoint())
    held = wal_size(sqlite_path)
    assert held > 8 * LIMIT, held  # ~3 MB of frames the reader pins
    assert rounds[-1].busy == 1  # the escalation gave up after its short wait: the reader was not blocked
    assert reader.execute(text("SELECT count(*) FROM blobs")).scalar_one() == 16  # its snapshot is intact
    reader.rollback()
    reader.close()

    # The reader is gone: one round truncates the WAL file, not only copies the frames back.
    result = checkpointer.checkpoint()
    assert result.busy == 0
    assert wal_size(sqlite_path) <= LIMIT, (held, wal_size(sqlite_path))

    # Sustained ingest with no reader: the PASSIVE rounds and journal_size_limit keep the file bounded.
    for _ in range(24):
        write_batch(wal_engine)
        checkpointer.checkpoint()
        assert wal_size(sqlite_path) <= LIMIT + 16 * (ROW + 4096), wal_size(sqlite_path)
    with wal_engine.connect() as conn:
        assert conn.execute(text("SELECT count(*) FROM blobs")).scalar_one() == 16 * 49


def test_passive_is_the_common_case_below_the_bound(wal_engine: Engine, sqlite_path: Path) -> None:
    checkpointer = WalCheckpointer(wal_engine, escalate_busy_ms=10, retry_s=0)
    write_batch(wal_engine, rows=4)
    result = checkpointer.checkpoint()
    # PASSIVE copied every frame back and left the (small) WAL alone: a TRUNCATE would have reset it to 0.
    assert result.busy == 0 and result.log_frames > 0 and result.checkpointed_frames == result.log_frames
    assert 0 < wal_size(sqlite_path) <= LIMIT


def test_a_starved_escalation_is_not_retried_before_the_back_off(
    wal_engine: Engine, sqlite_path: Path
) -> None:
    checkpointer = WalCheckpointer(wal_engine, escalate_busy_ms=10, retry_s=3600)
    reader = wal_engine.connect().execution_options(readonly=True)
    reader.begin()
    reader.execute(text("SELECT count(*) FROM blobs")).scalar_one()
    for _ in range(4):
        write_batch(wal_engine)
    assert wal_size(sqlite_path) > LIMIT
    assert checkpointer.checkpoint().busy == 1  # escalated, gave up on the reader
    reader.rollback()
    reader.close()
    # Within the back-off only PASSIVE runs: the frames are copied back but the file is not truncated.
    result = checkpointer.checkpoint()
    assert result.busy == 0 and result.checkpointed_frames == result.log_frames
    assert wal_size(sqlite_path) > LIMIT
    # An explicit TRUNCATE (what stop() and start() run) is not subject to the back-off.
    assert checkpointer.checkpoint("TRUNCATE").busy == 0
    assert wal_size(sqlite_path) == 0


def test_a_wal_left_by_a_killed_process_is_truncated_at_start(sqlite_path: Path) -> None:
    # A process writes with no checkpoint at all, then dies by SIGKILL: its WAL stays on disk, full size.
    script = (
        "import os, signal, sqlite3, sys\n"
        "conn = sqlite3.connect(sys.argv[1], isolation_level=None)\n"
        "conn.execute('PRAGMA journal_mode=WAL')\n"
        "conn.execute('PRAGMA wal_autocheckpoint=0')\n"
        "conn.execute('CREATE TABLE blobs (id INTEGER PRIMARY KEY, body BLOB NOT NULL)')\n"
        "for _ in range(32):\n"
        "    conn.execute('INSERT INTO blobs (body) VALUES (randomblob(65536))')\n"
        "os.kill(os.getpid(), signal.SIGKILL)\n"
    )
    proc = subprocess.run([sys.executable, "-c", script, str(sqlite_path)], check=False)
    assert proc.returncode == -9
    left = wal_size(sqlite_path)
    assert left > 8 * LIMIT, left

    engine = make_engine(f"sqlite:///{sqlite_path}", background_checkpoint=True, wal_size_limit=LIMIT)
    checkpointer = WalCheckpointer(engine, interval_s=3600)
    try:
        checkpointer.start()
        assert wal_size(sqlite_path) <= LIMIT, (left, wal_size(sqlite_path))
        with engine.connect() as conn:  # nothing committed was lost
            assert conn.execute(text("SELECT count(*) FROM blobs")).scalar_one() == 32
    finally:
        checkpointer.stop()
        engine.dispose()


def test_every_sqlite_connection_bounds_the_wal_file(sqlite_path: Path) -> None:
    engine = make_engine(f"sqlite:///{sqlite_path}")
    try:
        with engine.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA journal_size_limit").scalar_one() > 0
    finally:
        engine.dispose()


def test_the_long_running_worker_database_checkpoints_in_the_background(
    sqlite_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from offerloop.cli import common

    started: list[WalCheckpointer] = []
    stopped: list[WalCheckpointer] = []
    monkeypatch.setattr(WalCheckpointer, "start", lambda self: started.append(self))
    monkeypatch.setattr(WalCheckpointer, "stop", lambda self: stopped.append(self))
    cfg = Settings(database_url=f"sqlite:///{sqlite_path}")
    with common.database(cfg, inline=False, long_running=True) as db:
        assert len(started) == 1 and not stopped
        with db.bind.connect() as conn:  # the checkpointer, not the committing connection, checkpoints
            assert conn.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar_one() == 0
    assert stopped == started
    with common.database(cfg, inline=False) as db:  # a short command keeps SQLite's own autocheckpoint
        assert len(started) == 1
        with db.bind.connect() as conn:
            assert conn.exec_driver_sql("PRAGMA wal_autocheckpoint").scalar_one() == 1000
