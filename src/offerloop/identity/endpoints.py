from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Query

from offerloop import pipeline
from offerloop.identity import service
from offerloop.identity.schemas import BuyerRead, ConflictRead, ConsentUpdate, EventPage, MergeRead
from offerloop.workspaces.auth import DB, SecretKey

router = APIRouter(prefix="/v1", tags=["buyers"])


@router.get("/buyers/lookup", summary="Find a buyer by any one identifier")
def lookup(
    db: DB,
    principal: SecretKey,
    user_id: str | None = None,
    email: str | None = None,
    anonymous_id: str | None = None,
    phone: str | None = None,
    kind: Annotated[str | None, Query(description="A platform identifier kind, e.g. tiktok")] = None,
    value: str | None = None,
) -> BuyerRead:
    pipeline.catch_up(db, workspace_id=principal.workspace_id)  # see every event acknowledged before now
    with db.read() as session:
        return service.lookup(
            session=session, workspace_id=principal.workspace_id, user_id=user_id, email=email,
            anonymous_id=anonymous_id, phone=phone, kind=kind, value=value,
        )  # fmt: skip


@router.get(
    "/buyers/{buyer_id}", summary="The canonical buyer record (a merged id answers with its survivor)"
)
def get_buyer(db: DB, principal: SecretKey, buyer_id: str) -> BuyerRead:
    pipeline.catch_up(db, workspace_id=principal.workspace_id)  # see every event acknowledged before now
    with db.read() as session:
        return service.get_buyer(session=session, workspace_id=principal.workspace_id, buyer_id=buyer_id)


@router.get(
    "/buyers/{buyer_id}/state", summary="The buyer's live features and persona (with reasons and history)"
)
def buyer_state(db: DB, principal: SecretKey, buyer_id: str) -> dict[str, Any]:
    pipeline.catch_up(db, workspace_id=principal.workspace_id)  # see every event acknowledged before now
    with db.read() as session:
        return service.buyer_state(session=session, workspace_id=principal.workspace_id, buyer_id=buyer_id)


@router.get("/buyers/{buyer_id}/events", summary="The buyer's events, newest first")
def buyer_events(
    db: DB,
    principal: SecretKey,
    buyer_id: str,
    before: Annotated[int | None, Query(description="Cursor from next_cursor")] = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> EventPage:
    pipeline.catch_up(db, workspace_id=principal.workspace_id)  # an event is the buyer's once identity ran
    with db.read() as session:
        return service.buyer_events(
            session=session,
            workspace_id=principal.workspace_id,
            buyer_id=buyer_id,
            before=before,
            limit=limit,
        )


@router.get("/buyers/{buyer_id}/export", summary="GDPR access: everything held on this buyer")
def export_buyer(db: DB, principal: SecretKey, buyer_id: str) -> dict[str, Any]:
    pipeline.catch_up(db, workspace_id=principal.workspace_id)  # every acknowledged event is in the export
    with db.write() as session:
        return service.export_buyer(
            session=session, workspace_id=principal.workspace_id, buyer_id=buyer_id, actor=principal.key_id
        )


@router.delete("/buyers/{buyer_id}", summary="GDPR erasure: personal data and identifiers are deleted")
def delete_buyer(db: DB, principal: SecretKey, buyer_id: str) -> dict[str, Any]:
    # Erasure must reach every acknowledged event: one not yet given its buyer would escape it, and bring
    # the buyer back when a consumer got to it.
    pipeline.catch_up(db, workspace_id=principal.workspace_id)
    with db.write() as session:
        return service.delete_buyer(
            session=session, workspace_id=principal.workspace_id, buyer_id=buyer_id, actor=principal.key_id
        )


@router.put("/buyers/{buyer_id}/consent", summary="Set marketing / personalization consent")
def set_consent(db: DB, principal: SecretKey, buyer_id: str, body: ConsentUpdate) -> BuyerRead:
    with db.write() as session:
        return service.set_consent(
            session=session, workspace_id=principal.workspace_id, buyer_id=buyer_id, consent=body,
            actor=principal.key_id,
        )  # fmt: skip


@router.get("/merges", summary="Identity merges, newest first")
def list_merges(
    db: DB,
    principal: SecretKey,
    buyer_id: str | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[MergeRead]:
    with db.read() as session:
        return service.list_merges(
            session=session, workspace_id=principal.workspace_id, buyer_id=buyer_id, limit=limit
        )


@router.post("/merges/{merge_id}/undo", summary="Undo a merge (admin): the buyers are split again")
def undo_merge(db: DB, principal: SecretKey, merge_id: str) -> MergeRead:
    with db.write() as session:
        return service.undo_merge(
            session=session, workspace_id=principal.workspace_id, merge_id=merge_id, actor=principal.key_id
        )


@router.get("/identity-conflicts", summary="Refused merges between two identified buyers")
def list_conflicts(
    db: DB,
    principal: SecretKey,
    buyer_id: str | None = None,
    limit: Annotated[int, Query(ge=1, le=1000)] = 100,
) -> list[ConflictRead]:
    with db.read() as session:
        return service.list_conflicts(
            session=session, workspace_id=principal.workspace_id, buyer_id=buyer_id, limit=limit
        )
