from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Body

from offerloop.personas import service
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
def get_templates(db: DB, principal: SecretKey) -> dict[str, Any]:
    with db.read() as session:
        version, personas = service.templates_for(session, principal.workspace_id)
        return {"version": version, "templates": personas.to_mapping() if personas else None}


@router.put("/templates", summary="Replace the persona templates (JSON, or YAML text as a JSON string)")
def put_templates(
    db: DB, principal: SecretKey, body: Annotated[Any, Body(examples=[_EXAMPLE])]
) -> dict[str, int]:
    with db.write() as session:
        version = service.set_templates(
            session=session, workspace_id=principal.workspace_id, source=body, actor=principal.key_id
        )
    return {"version": version}


@router.get("", summary="How many buyers currently hold each persona")
def distribution(db: DB, principal: SecretKey) -> list[dict[str, Any]]:
    with db.read() as session:
        rows = service.distribution(session=session, workspace_id=principal.workspace_id)
    return [{"persona": p, "buyers": n} for p, n in rows]
