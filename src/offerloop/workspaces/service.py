"""Workspaces and keys. Keys are random 32-byte tokens; only their SHA-256 is stored."""

from __future__ import annotations

import hashlib
import secrets
import threading
import time
from collections.abc import Callable
from typing import Any, Literal, TypeVar

from sqlalchemy.orm import Session

from offerloop.config import is_placeholder_secret
from offerloop.core.cache import LruCache, VersionedCache
from offerloop.core.clock import utcnow
from offerloop.core.ids import new_id
from offerloop.core.pages import decode_cursor, page_of
from offerloop.db.uow import after_commit
from offerloop.models import ApiKey, AuditEntry, Workspace
from offerloop.workspaces import repository
from offerloop.workspaces.exceptions import InvalidKey, KeyNotFound, KeyRevoked, WorkspaceNotFound
from offerloop.workspaces.schemas import KeyKind, KeyPage, KeyRead, Principal, WorkspaceCreated

T = TypeVar("T")

_KEY_PREFIX = {"write": "wk", "secret": "sk"}
# Positive lookups are cached briefly: the ingest path must not pay a query per request.
# A revocation is seen at once in this process (the entry is dropped when revoke_key runs and again once
# its transaction commits, and a lookup that raced with it is not cached), and within the TTL (half a
# second) in other processes, which have no way to hear of it sooner. Bounded: the least recently used of
# more keys than that are dropped (an expired entry waits for that, or for its key's next lookup).
_CACHE_TTL_S = 0.5
_cache: LruCache[str, tuple[float, Principal]] = LruCache(max_size=1 << 14)  # key hash -> (expiry, principal)
_cache_lock = threading.Lock()  # a revocation's generation bump and a lookup's check-then-cache
_generation = 0  # bumped by every revocation: a lookup that straddles one is answered but not cached


def _hash(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def _new_key(session: Session, *, workspace_id: str, kind: KeyKind, name: str) -> tuple[ApiKey, str]:
    token = f"{_KEY_PREFIX[kind]}_{secrets.token_urlsafe(32)}"
    key = ApiKey(
        id=new_id("key"),
        workspace_id=workspace_id,
        kind=kind,
        name=name,
        prefix=token[:10],
        key_hash=_hash(token),
        created_at=utcnow(),
    )
    repository.add(session, key)
    return key, token


def create_workspace(*, session: Session, name: str) -> WorkspaceCreated:
    ws = Workspace(id=new_id("ws"), name=name, created_at=utcnow(), signal_config_version=0)
    repository.add(session, ws)
    _, write = _new_key(session, workspace_id=ws.id, kind="write", name="default write key")
    _, secret = _new_key(session, workspace_id=ws.id, kind="secret", name="default secret key")
    return WorkspaceCreated(id=ws.id, name=ws.name, write_key=write, secret_key=secret)


def get_workspace(*, session: Session, workspace_id: str) -> Workspace:
    ws = repository.get_workspace(session, workspace_id)
    if ws is None:
        raise WorkspaceNotFound(f"workspace {workspace_id} does not exist")
    return ws


def list_workspaces(*, session: Session) -> list[Workspace]:
    return repository.list_workspaces(session)


def create_key(*, session: Session, workspace_id: str, kind: KeyKind, name: str = "") -> tuple[ApiKey, str]:
    get_workspace(session=session, workspace_id=workspace_id)
    key, token = _new_key(session, workspace_id=workspace_id, kind=kind, name=name)
    audit(session, workspace_id, actor="api", action="key.create", target_type="key", target_id=key.id)
    return key, token


def list_keys(*, session: Session, workspace_id: str) -> list[ApiKey]:
    return repository.list_keys(session, workspace_id)


def keys_page(*, session: Session, workspace_id: str, limit: int, cursor: str | None = None) -> KeyPage:
    """The workspace's keys, oldest first: a workspace has a handful, so they are paged in memory."""
    after = decode_cursor(cursor, types=(str, str))
    rows = sorted(list_keys(session=session, workspace_id=workspace_id), key=lambda k: (k.created_at, k.id))
    if after is not None:
        rows = [k for k in rows if (k.created_at.isoformat(timespec="microseconds"), k.id) > after]
    page = page_of(
        rows,
        limit,
        key=lambda k: (k.created_at.isoformat(timespec="microseconds"), k.id),
        item=lambda k: KeyRead.model_validate(k, from_attributes=True),
    )
    return KeyPage(**dict(page))


def revoke_key(*, session: Session, workspace_id: str, key_id: str, actor: str) -> ApiKey:
    key = repository.revoke_key(session, workspace_id, key_id, utcnow())
    if key is None:
        raise KeyNotFound(f"key {key_id} does not exist in this workspace")
    _forget_key(key_id)
    # A lookup in another thread may still read the row as it was before this commit: forget it again after.
    after_commit(session, lambda: _forget_key(key_id))
    audit(session, workspace_id, actor=actor, action="key.revoke", target_type="key", target_id=key_id)
    return key


def rotate_key(*, session: Session, workspace_id: str, key_id: str, actor: str) -> tuple[ApiKey, str]:
    """Replace a live key with a new one of the same kind and name, revoked at once (the caller shows the new
    key once); a revoked or unknown key cannot be rotated."""
    old = repository.get_key(session, workspace_id, key_id)
    if old is None:
        raise KeyNotFound(f"key {key_id} does not exist in this workspace")
    if old.revoked_at is not None:
        raise KeyRevoked(f"key {key_id} is already revoked: create a new key instead")
    key, token = _new_key(session, workspace_id=workspace_id, kind=old.kind, name=old.name)  # type: ignore[arg-type]
    revoke_key(session=session, workspace_id=workspace_id, key_id=key_id, actor=actor)
    audit(session, workspace_id, actor=actor, action="key.rotate", target_type="key", target_id=key.id,
          details={"replaces": key_id})  # fmt: skip
    return key, token


def _forget_key(key_id: str) -> None:
    global _generation
    with _cache_lock:
        _generation += 1
        _cache.discard_where(lambda _hash, entry: entry[1].key_id == key_id)


def cached_principal(key: str) -> Principal | None:
    """The principal of a key authenticated within the last few seconds, without touching the database."""
    hit = _cache.get_if(_hash(key), lambda entry: entry[0] > time.monotonic()) if key else None
    return hit[1] if hit is not None else None


def authenticate(*, session: Session, key: str) -> Principal:
    if not key:
        raise InvalidKey("missing API key: send it as the HTTP Basic username or a Bearer token")
    cached = cached_principal(key)
    if cached is not None:
        return cached
    token_hash = _hash(key)
    now = time.monotonic()
    generation = _generation
    row = repository.key_by_hash(session, token_hash)
    if row is None or row.revoked_at is not None:
        raise InvalidKey("unknown or revoked API key")
    principal = Principal(workspace_id=row.workspace_id, key_id=row.id, kind=row.kind)
    with _cache_lock:
        if generation == _generation:  # no revocation since the row was read
            _cache.put(token_hash, (now + _CACHE_TTL_S, principal))
    return principal


_signing: LruCache[str, str] = LruCache(max_size=64)  # database URL -> its link-signing secret


def signing_secret(*, session: Session, configured: str) -> str:
    """The secret that signs download links: OFFERLOOP_SECRET when one is set, otherwise the random
    secret this database was given at its first migration (never the public placeholder)."""
    if not is_placeholder_secret(configured):
        return configured
    url = str(session.get_bind().engine.url)
    value = _signing.get(url)
    if value is None:
        value = repository.server_secret(session, "link_signing")
        if not value:
            raise RuntimeError("this database has no link-signing secret: run `offerloop migrate`")
        _signing.put(url, value)
    return value


ConfigField = Literal["signal_config", "feature_spec", "persona_templates", "theme", "offers_catalog"]


def set_config(
    *, session: Session, workspace_id: str, field: ConfigField, value: dict[str, Any] | None
) -> int:
    """Store a validated declarative config (signal rules, feature spec, persona templates); returns its new version."""
    get_workspace(session=session, workspace_id=workspace_id)
    return repository.set_versioned(session, workspace_id, field, value)


def cached_config(
    *,
    session: Session,
    workspace_id: str,
    field: ConfigField,
    cache: VersionedCache[T],
    parse: Callable[[Any], T],
) -> tuple[int, T]:
    """One of the workspace's declarative configs, parsed once per version and process: the version is read per
    call (one column, or the row this session already loaded), the stored config only when it changed."""
    version = repository.config_version(session, workspace_id, field)
    if version is None:
        raise WorkspaceNotFound(f"workspace {workspace_id} does not exist")

    def load() -> T:
        return parse(getattr(get_workspace(session=session, workspace_id=workspace_id), field))

    return version, cache.get_or_load(workspace_id, version, load)


def audit(
    session: Session,
    workspace_id: str,
    *,
    actor: str,
    action: str,
    target_type: str,
    target_id: str,
    details: dict[str, Any] | None = None,
) -> None:
    """Append one entry to the workspace's audit trail (in the caller's transaction)."""
    session.add(
        AuditEntry(
            workspace_id=workspace_id,
            at=utcnow(),
            actor=actor,
            action=action,
            target_type=target_type,
            target_id=target_id,
            details=details,
        )
    )
