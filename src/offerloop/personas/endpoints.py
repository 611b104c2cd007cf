from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body

from offerloop.core.errors import error_responses
from offerloop.core.pages import DEFAULT_LIMIT
from offerloop.personas import service
from offerloop.personas.schemas import PersonaCountPage, TemplatesRead, TemplatesStored
from offerloop.personas.templates import TemplateError
from offerloop.web import Cursor, Limit
from offerloop.workspaces.auth import DB, SecretKey

router = APIRouter(prefix="/v1/personas", tags=["personas"])

_EXAMPLE = {
    "threshold": 0.5,
    "personas": [
        {"name": "superfan", "signals": [{"feature": "drop_orders", "gte": 1, "weight": 2}]},
        {"name": "lurker", "signals": [{"feature": "orders", "lte": 0, "weight": 1}]},
    ],
}


@router.get("/templates", summary="The workspace's persona templates (null when none are set)")
def get_templates(db: DB, principal: SecretKey) -> TemplatesRead:
    with db.read() as session:
        return service.templates_read(session=session, workspace_id=principal.workspace_id)


@router.put(
    "/templates",
    summary="Replace the persona templates (JSON, or YAML text as a JSON string)",
    responses=error_responses(TemplateError),
)
def put_templates(
    db: DB, principal: SecretKey, body: Annotated[Any, Body(examples=[_EXAMPLE])]
) -> TemplatesStored:
    with db.write() as session:
        version = service.set_templates(
            session=session, workspace_id=principal.workspace_id, source=body, actor=principal.key_id
        )
    return TemplatesStored(version=version)


@router.get("", summary="How many buyers currently hold each persona, most first")
def distribution(
    db: DB, principal: SecretKey, limit: Limit = DEFAULT_LIMIT, cursor: Cursor = None
) -> PersonaCountPage:
    with db.read() as session:
        return service.distribution_page(
            session=session, workspace_id=principal.workspace_id, limit=limit, cursor=cursor
        )
