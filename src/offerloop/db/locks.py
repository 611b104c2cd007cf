"""Transaction-scoped advisory locks: serialise one kind of work per workspace on PostgreSQL (SQLite already has
a single writer, so there it is a no-op)."""

from __future__ import annotations

import hashlib

from sqlalchemy import text
from sqlalchemy.orm import Session


def lock_key(*parts: str) -> int:
    """A stable signed 64-bit key for ``parts`` (the same in every process, unlike ``hash``)."""
    digest = hashlib.sha256("\x1f".join(parts).encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


def xact_lock(session: Session, *parts: str) -> None:
    """Wait for, then hold until the transaction ends, the advisory lock named by ``parts``."""
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text("SELECT pg_advisory_xact_lock(:k)"), {"k": lock_key(*parts)})
