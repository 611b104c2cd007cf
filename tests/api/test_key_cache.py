"""The key → workspace cache: a revoked key is refused at once in the process that revoked it; the cache is bounded."""

from __future__ import annotations

import time
from typing import Any

import pytest
from sqlalchemy import Engine

from offerloop.core.cache import LruCache
from offerloop.db.uow import Database
from offerloop.workspaces import repository as key_repository
from offerloop.workspaces import service
from offerloop.workspaces.exceptions import InvalidKey
from offerloop.workspaces.schemas import Principal, WorkspaceCreated


def _authenticated(db: Database, name: str) -> tuple[WorkspaceCreated, Principal]:
    """A new workspace whose write key was just authenticated (so cached)."""
    with db.write() as session:
        ws = service.create_workspace(session=session, name=name)
    with db.read() as session:
        principal = service.authenticate(session=session, key=ws.write_key)
    assert service.cached_principal(ws.write_key) == principal
    return ws, principal


def test_revoked_key_is_refused_at_once_though_it_was_cached(db: Database) -> None:
    ws, principal = _authenticated(db, "cache")
    with db.write() as session:
        service.revoke_key(session=session, workspace_id=ws.id, key_id=principal.key_id, actor="test")
    assert service.cached_principal(ws.write_key) is None
    with db.read() as session, pytest.raises(InvalidKey):
        service.authenticate(session=session, key=ws.write_key)


def test_a_lookup_that_read_the_key_before_its_revocation_committed_is_not_cached(
    engine: Engine, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The interleaving a cache could get wrong: thread A reads the key row, the revocation commits
    (and purges the cache), then A stores what it read. A's own request may pass (it read first); no
    later request may."""
    real = Database(engine)  # separate connections, real commits: the reader cannot see the revocation
    with real.write() as session:
        ws = service.create_workspace(session=session, name="cache race")
    read_row = key_repository.key_by_hash

    def read_then_revoke(session: Any, token_hash: str) -> Any:
        row = read_row(session, token_hash)
        with real.write() as other:
            service.revoke_key(session=other, workspace_id=ws.id, key_id=row.id, actor="test")
        return row  # as read before the revocation

    monkeypatch.setattr(key_repository, "key_by_hash", read_then_revoke)
    with real.read() as session:
        assert service.authenticate(session=session, key=ws.write_key).workspace_id == ws.id
    monkeypatch.undo()
    assert service.cached_principal(ws.write_key) is None
    with real.read() as session, pytest.raises(InvalidKey):
        service.authenticate(session=session, key=ws.write_key)


def test_revocation_that_rolls_back_keeps_the_key_working(db: Database) -> None:
    with db.write() as session:
        ws = service.create_workspace(session=session, name="cache rollback")
    with db.read() as session:
        principal = service.authenticate(session=session, key=ws.write_key)
    with pytest.raises(RuntimeError), db.write() as session:
        service.revoke_key(session=session, workspace_id=ws.id, key_id=principal.key_id, actor="test")
        raise RuntimeError("the unit of work fails after the revocation")
    with db.read() as session:
        assert service.authenticate(session=session, key=ws.write_key) == principal


def test_the_cache_is_bounded_and_a_dropped_key_is_looked_up_again(
    db: Database, monkeypatch: pytest.MonkeyPatch
) -> None:
    """However many keys a process sees, the cache holds at most its bound (here 2): the least recently
    used key is dropped, and its next request reads it from the database again."""
    monkeypatch.setattr(service, "_cache", LruCache(max_size=2))
    with db.write() as session:
        spaces = [service.create_workspace(session=session, name=f"bounded {i}") for i in range(3)]
    with db.read() as session:
        principals = [service.authenticate(session=session, key=ws.write_key) for ws in spaces]
    assert len(service._cache) == 2
    assert service.cached_principal(spaces[0].write_key) is None  # the least recently used: dropped
    assert [service.cached_principal(ws.write_key) for ws in spaces[1:]] == principals[1:]
    with db.read() as session:
        assert service.authenticate(session=session, key=spaces[0].write_key) == principals[0]
    assert service.cached_principal(spaces[0].write_key) == principals[0]
    assert service.cached_principal(spaces[1].write_key) is None  # now the least recently used


def test_an_expired_entry_is_not_served(db: Database) -> None:
    ws, principal = _authenticated(db, "expiry")
    token_hash = service._hash(ws.write_key)
    service._cache.put(token_hash, (time.monotonic() - 0.001, principal))  # as it stands once its TTL passed
    assert service.cached_principal(ws.write_key) is None
    with db.read() as session:  # read again, and cached again
        assert service.authenticate(session=session, key=ws.write_key) == principal
    assert service.cached_principal(ws.write_key) == principal
