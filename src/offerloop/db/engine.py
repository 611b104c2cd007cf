"""Engine and session factories; SQLite is tuned for one writer with WAL."""

from __future__ import annotations

import contextlib
import os
import threading
import time
from typing import Any, NamedTuple

import orjson
from sqlalchemy import Engine, create_engine, event
from sqlalchemy.orm import Session, sessionmaker


def _json_dumps(value: Any) -> str:
    # orjson: JSON columns are serialised on every ingested event; stdlib json is ~5x slower.
    return orjson.dumps(value, option=orjson.OPT_NON_STR_KEYS).decode()


# The WAL file is cut back to this size whenever a checkpoint resets it (PRAGMA journal_size_limit): without
# it the file stays at its high-water mark forever, however small the live WAL content is.
WAL_SIZE_LIMIT = 64 * 1024 * 1024


def make_engine(
    url: str,
    *,
    sqlite_synchronous: str = "NORMAL",
    pool_size: int = 8,
    background_checkpoint: bool = False,
    wal_size_limit: int = WAL_SIZE_LIMIT,
) -> Engine:
    """An engine for ``url``. With ``background_checkpoint`` (SQLite), connections never checkpoint the
    WAL themselves: a WalCheckpointer thread does it, so no request pays for the copy and the fsync.
    ``wal_size_limit`` (bytes, SQLite) is the size the WAL file is truncated to once a checkpoint resets it."""
    if url.startswith("sqlite"):
        engine = create_engine(
            url,
            connect_args={"check_same_thread": False, "timeout": 30},
            pool_size=pool_size,
            max_overflow=pool_size,
            json_serializer=_json_dumps,
            json_deserializer=orjson.loads,
        )

        @event.listens_for(engine, "connect")
        def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
            # Let SQLAlchemy issue BEGIN itself so a SAVEPOINT or a writer lock behaves predictably.
            dbapi_conn.isolation_level = None
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute(f"PRAGMA synchronous={sqlite_synchronous}")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=30000")
            cur.execute("PRAGMA cache_size=-65536")
            cur.execute(f"PRAGMA wal_autocheckpoint={0 if background_checkpoint else 1000}")
            cur.execute(f"PRAGMA journal_size_limit={int(wal_size_limit)}")
            cur.execute("PRAGMA mmap_size=268435456")
            cur.close()

        @event.listens_for(engine, "begin")
        def _sqlite_begin(conn: Any) -> None:
            # A writer takes the lock up front (IMMEDIATE): no failing read→write upgrades under load.
            # Readers (execution option readonly=True) stay deferred and never wait for writers (WAL).
            if conn.get_execution_options().get("readonly"):
                conn.exec_driver_sql("BEGIN")
            else:
                conn.exec_driver_sql("BEGIN IMMEDIATE")

        return engine
    return create_engine(
        url,
        pool_size=pool_size,
        max_overflow=pool_size,
        pool_pre_ping=True,
        json_serializer=_json_dumps,
        json_deserializer=orjson.loads,
    )


def make_session_factory(bind: Any, **kwargs: Any) -> sessionmaker[Session]:
    return sessionmaker(bind=bind, expire_on_commit=False, autoflush=False, **kwargs)


class CheckpointResult(NamedTuple):
    """The row of ``PRAGMA wal_checkpoint``: busy (1 when the checkpoint could not finish), the frames in
    the WAL and the frames copied back into the database (both -1 when the database is not in WAL mode)."""

    busy: int
    log_frames: int
    checkpointed_frames: int


class WalCheckpointer:
    """Checkpoints a SQLite WAL from a background thread and keeps the WAL file bounded.

    Each round is a PASSIVE checkpoint: it never waits for readers or writers, so it is the cheap common
    case. But PASSIVE never resets the WAL while readers overlap, and under constant load with long readers
    it may never finish: the WAL keeps growing. So when the WAL holds more than ``max_wal_bytes`` (default:
    the connection's journal_size_limit), the round escalates to a TRUNCATE checkpoint, which waits for the
    writer lock and for old readers at most ``escalate_busy_ms`` (it holds the writer lock while it waits
    for readers, so the wait is kept short), then resets and truncates the WAL file to zero bytes. A
    TRUNCATE that gave up (busy) is retried no sooner than ``retry_s`` later, so a starved WAL never costs
    writers more than a short stall now and then. ``start()`` truncates first: a WAL left by a killed
    process is cut back before the server takes load."""

    def __init__(
        self,
        engine: Engine,
        interval_s: float = 0.25,
        *,
        max_wal_bytes: int | None = None,
        escalate_busy_ms: int = 100,
        retry_s: float = 2.0,
    ) -> None:
        self.engine = engine
        self.interval_s = interval_s
        self.max_wal_bytes = max_wal_bytes
        self.escalate_busy_ms = escalate_busy_ms
        self.retry_s = retry_s
        self._next_escalation = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, name="wal-checkpointer", daemon=True)

    def start(self) -> None:
        with contextlib.suppress(Exception):  # a busy database is checkpointed by the rounds that follow
            self.checkpoint("TRUNCATE")
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)
        self.checkpoint("TRUNCATE")

    def checkpoint(self, mode: str | None = None) -> CheckpointResult:
        """One checkpoint. ``mode`` None is a background round: PASSIVE, escalated to TRUNCATE when the WAL
        has grown past the bound; an explicit mode (PASSIVE, FULL, RESTART, TRUNCATE) runs just that mode,
        waiting for readers and the writer at most ``escalate_busy_ms``."""
        raw = self.engine.raw_connection()
        try:
            # The driver connection is in autocommit mode (see make_engine): no transaction is open here.
            conn: Any = raw.driver_connection
            if mode is not None:
                return self._run_mode(conn, mode)
            result = self._run_mode(conn, "PASSIVE")
            if max(self._wal_bytes(conn, result.log_frames), self.wal_file_size(conn)) <= self._limit(conn):
                return result
            now = time.monotonic()
            if now < self._next_escalation:
                return result
            result = self._run_mode(conn, "TRUNCATE")
            self._next_escalation = now + self.retry_s if result.busy else 0.0
            return result
        finally:
            raw.close()

    def _run_mode(self, conn: Any, mode: str) -> CheckpointResult:
        if mode.upper() not in ("PASSIVE", "FULL", "RESTART", "TRUNCATE"):
            raise ValueError(f"unknown checkpoint mode {mode!r}")
        if mode.upper() == "PASSIVE":
            return CheckpointResult(*conn.execute("PRAGMA wal_checkpoint(PASSIVE)").fetchone())
        # The blocking modes call the busy handler while they wait for the writer lock and for readers:
        # keep that wait short, then put the connection's usual timeout back before it returns to the pool.
        (previous,) = conn.execute("PRAGMA busy_timeout").fetchone()
        conn.execute(f"PRAGMA busy_timeout={int(self.escalate_busy_ms)}")
        try:
            return CheckpointResult(*conn.execute(f"PRAGMA wal_checkpoint({mode.upper()})").fetchone())
        finally:
            conn.execute(f"PRAGMA busy_timeout={int(previous)}")

    def _limit(self, conn: Any) -> int:
        if self.max_wal_bytes is None:
            (limit,) = conn.execute("PRAGMA journal_size_limit").fetchone()
            self.max_wal_bytes = limit if limit >= 0 else WAL_SIZE_LIMIT
        return self.max_wal_bytes

    @staticmethod
    def wal_file_size(conn: Any) -> int:
        """The size of the WAL file on disk (0 for an in-memory database or when there is none): a file
        left large by another process or before a reset is shrunk too, not only a WAL with many frames."""
        path = next((row[2] for row in conn.execute("PRAGMA database_list") if row[1] == "main"), "")
        try:
            return os.path.getsize(f"{path}-wal") if path else 0
        except OSError:
            return 0

    @staticmethod
    def _wal_bytes(conn: Any, frames: int) -> int:
        (page_size,) = conn.execute("PRAGMA page_size").fetchone()
        return max(frames, 0) * (int(page_size) + 24) + 32  # a 32-byte header, a 24-byte header per frame

    def _run(self) -> None:
        while not self._stop.wait(self.interval_s):
            try:
                self.checkpoint()
            except Exception:  # a busy database is retried at the next tick
                continue
