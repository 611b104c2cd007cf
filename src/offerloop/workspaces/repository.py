from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, select
from sqlalchemy.orm import Session

from offerloop.db.scoped import scoped_select, scoped_update
from offerloop.models import ApiKey, ServerSecret, Workspace


def add(session: Session, obj: Any) -> None:
    session.add(obj)
    session.flush()


def get_workspace(session: Session, workspace_id: str) -> Workspace | None:
    ws = session.get(Workspace, workspace_id)
    if ws is not None:
        # The identity map holds objects weakly: pin the row for the session's life so the several
        # services of one request (features, personas, decisions) share one load, not one each.
        session.info.setdefault("pinned_workspaces", {})[workspace_id] = ws
    return ws


_CONFIG_FIELDS = ("signal_config", "feature_spec", "persona_templates", "theme", "offers_catalog")
_VERSIONS = select(*(getattr(Workspace, f"{field}_version") for field in _CONFIG_FIELDS)).where(
    Workspace.id == bindparam("w")
)
_MEMO = "offerloop.config_versions"


def config_version(session: Session, workspace_id: str, field: str) -> int | None:
    """``<field>_version`` of the workspace (None: no such workspace): the row this session already loaded,
    else every config's version by one prebuilt statement, kept for the session (a decision reads three of
    them: feature spec, stage order, persona templates; a hot path need not decode the row's JSON configs)."""
    pinned = session.info.get("pinned_workspaces", {}).get(workspace_id)
    if pinned is not None:
        return int(getattr(pinned, f"{field}_version"))
    memo: dict[str, dict[str, int]] = session.info.setdefault(_MEMO, {})
    versions = memo.get(workspace_id)
    if versions is None:
        row = session.connection().execute(_VERSIONS, {"w": workspace_id}).one_or_none()
        if row is None:
            return None
        versions = memo[workspace_id] = {f: int(v or 0) for f, v in zip(_CONFIG_FIELDS, row, strict=True)}
    return versions[field]


def list_workspaces(session: Session) -> list[Workspace]:
    return list(session.scalars(select(Workspace).order_by(Workspace.created_at)))


def key_by_hash(session: Session, key_hash: str) -> ApiKey | None:
    return session.scalars(select(ApiKey).where(ApiKey.key_hash == key_hash)).one_or_none()


def list_keys(session: Session, workspace_id: str) -> list[ApiKey]:
    stmt = scoped_select(ApiKey, workspace_id).order_by(ApiKey.created_at)
    return list(session.scalars(stmt))


def get_key(session: Session, workspace_id: str, key_id: str) -> ApiKey | None:
    return session.scalars(scoped_select(ApiKey, workspace_id).where(ApiKey.id == key_id)).one_or_none()


def revoke_key(session: Session, workspace_id: str, key_id: str, at: datetime) -> ApiKey | None:
    session.execute(
        scoped_update(ApiKey, workspace_id)
        .where(ApiKey.id == key_id, ApiKey.revoked_at.is_(None))
        .values(revoked_at=at)
    )
    return session.scalars(scoped_select(ApiKey, workspace_id).where(ApiKey.id == key_id)).one_or_none()


def set_versioned(session: Session, workspace_id: str, field: str, value: dict[str, Any] | None) -> int:
    """Store one of the workspace's declarative configs and bump its ``<field>_version``."""
    ws = session.get(Workspace, workspace_id)
    assert ws is not None
    session.info.get(_MEMO, {}).pop(workspace_id, None)  # the versions this session read are stale now
    setattr(ws, field, value)
    version = int(getattr(ws, f"{field}_version")) + 1
    setattr(ws, f"{field}_version", version)
    session.flush()
    return version


def server_secret(session: Session, name: str) -> str | None:
    return session.scalar(select(ServerSecret.value).where(ServerSecret.name == name))
