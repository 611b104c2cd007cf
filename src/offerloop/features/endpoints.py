from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body

from offerloop.core.errors import error_responses
from offerloop.features import service
from offerloop.features.exceptions import InvalidFeatureSpec
from offerloop.features.schemas import FeatureSpecRead, FeatureSpecStored
from offerloop.workspaces.auth import DB, SecretKey

router = APIRouter(prefix="/v1/features", tags=["features"])


@router.get("/spec", summary="The workspace's feature definitions (built-in defaults unless replaced)")
def get_spec(db: DB, principal: SecretKey) -> FeatureSpecRead:
    with db.read() as session:
        return service.spec_read(session=session, workspace_id=principal.workspace_id)


@router.put(
    "/spec",
    summary="Replace the feature definitions (JSON, or YAML text as a JSON string)",
    responses=error_responses(InvalidFeatureSpec),
)
def put_spec(db: DB, principal: SecretKey, body: Annotated[Any, Body()]) -> FeatureSpecStored:
    with db.write() as session:
        version = service.set_spec(
            session=session, workspace_id=principal.workspace_id, source=body, actor=principal.key_id
        )
    return FeatureSpecStored(version=version)
