from __future__ import annotations

from fastapi import APIRouter

from offerloop.core.errors import error_responses
from offerloop.core.pages import DEFAULT_LIMIT
from offerloop.web import Cursor, Limit
from offerloop.workspaces import service
from offerloop.workspaces.auth import DB, SecretKey
from offerloop.workspaces.exceptions import KeyNotFound
from offerloop.workspaces.schemas import KeyCreate, KeyCreated, KeyPage, KeyRead

router = APIRouter(prefix="/v1/keys", tags=["workspace"])


@router.get("", summary="List this workspace's API keys, oldest first (only prefixes are shown)")
def list_keys(db: DB, principal: SecretKey, limit: Limit = DEFAULT_LIMIT, cursor: Cursor = None) -> KeyPage:
    with db.read() as session:
        return service.keys_page(
            session=session, workspace_id=principal.workspace_id, limit=limit, cursor=cursor
        )


@router.post("", status_code=201, summary="Create a write or secret key; the key is shown once")
def create_key(db: DB, principal: SecretKey, body: KeyCreate) -> KeyCreated:
    with db.write() as session:
        key, token = service.create_key(
            session=session, workspace_id=principal.workspace_id, kind=body.kind, name=body.name
        )
        return KeyCreated(**KeyRead.model_validate(key, from_attributes=True).model_dump(), key=token)


@router.delete("/{key_id}", summary="Revoke a key", responses=error_responses(KeyNotFound))
def revoke_key(db: DB, principal: SecretKey, key_id: str) -> KeyRead:
    with db.write() as session:
        key = service.revoke_key(
            session=session, workspace_id=principal.workspace_id, key_id=key_id, actor=principal.key_id
        )
        return KeyRead.model_validate(key, from_attributes=True)
