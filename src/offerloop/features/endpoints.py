from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body

from offerloop.features import service
from offerloop.workspaces.auth import DB, SecretKey

router = APIRouter(prefix="/v1/features", tags=["features"])


@router.get("/spec", summary="The workspace's feature definitions (built-in defaults unless replaced)")
def get_spec(db: DB, principal: SecretKey) -> dict[str, Any]:
    with db.read() as session:
        version, spec = service.spec_for(session, principal.workspace_id)
    return {"version": version, "spec": spec.model_dump(mode="json")}


@router.put("/spec", summary="Replace the feature definitions (JSON, or YAML text as a JSON string)")
def put_spec(db: DB, principal: SecretKey, body: Annotated[Any, Body()]) -> dict[str, int]:
    with db.write() as session:
        version = service.set_spec(
            session=session, workspace_id=principal.workspace_id, source=body, actor=principal.key_id
        )
    return {"version": version}
