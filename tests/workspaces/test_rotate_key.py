"""workspaces.rotate_key: the new key works at once, the old one never again; a revoked or another
workspace's key cannot be rotated; the audit trail names both."""

from __future__ import annotations

import pytest
from sqlalchemy import select

from offerloop.db.uow import Database
from offerloop.models import AuditEntry
from offerloop.workspaces import service
from offerloop.workspaces.exceptions import InvalidKey, KeyNotFound, KeyRevoked
from offerloop.workspaces.schemas import WorkspaceCreated


def _key_id(db: Database, workspace_id: str, kind: str) -> str:
    with db.read() as session:
        return next(
            k.id for k in service.list_keys(session=session, workspace_id=workspace_id) if k.kind == kind
        )


def test_rotate_replaces_the_key(db: Database, workspace: WorkspaceCreated) -> None:
    old = _key_id(db, workspace.id, "write")
    with db.write() as session:
        key, token = service.rotate_key(session=session, workspace_id=workspace.id, key_id=old, actor="t")
        assert (key.kind, key.name, key.prefix) == ("write", "default write key", token[:10])
    with db.read() as session:
        assert service.authenticate(session=session, key=token).workspace_id == workspace.id
        with pytest.raises(InvalidKey):
            service.authenticate(session=session, key=workspace.write_key)
        audit = session.execute(select(AuditEntry.action, AuditEntry.target_id, AuditEntry.details).where(
            AuditEntry.workspace_id == workspace.id).order_by(AuditEntry.id)).all()  # fmt: skip
    assert [tuple(a) for a in audit] == [("key.revoke", old, None), ("key.rotate", key.id, {"replaces": old})]
    with db.write() as session, pytest.raises(KeyRevoked):
        service.rotate_key(session=session, workspace_id=workspace.id, key_id=old, actor="t")


def test_another_workspaces_key_is_not_found(db: Database, workspace, other_workspace) -> None:
    theirs = _key_id(db, other_workspace.id, "secret")
    with db.write() as session, pytest.raises(KeyNotFound):
        service.rotate_key(session=session, workspace_id=workspace.id, key_id=theirs, actor="t")
    with db.read() as session:
        assert (
            service.authenticate(session=session, key=other_workspace.secret_key).workspace_id
            == other_workspace.id
        )
