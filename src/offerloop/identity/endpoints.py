from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from offerloop import pipeline
from offerloop.core.errors import error_responses
from offerloop.core.pages import DEFAULT_LIMIT
from offerloop.identity import service
from offerloop.identity.exceptions import (
    BuyerNotFound,
    LookupNeedsOneIdentifier,
    MergeNotFound,
    MergeNotUndoable,
)
from offerloop.identity.schemas import (
    BuyerErasure,
    BuyerExport,
    BuyerRead,
    BuyerState,
    ConflictPage,
    ConsentUpdate,
    EventPage,
    MergePage,
    MergeRead,
)
from offerloop.web import Cursor, Limit
from offerloop.workspaces.auth import DB, SecretKey

router = APIRouter(prefix="/v1", tags=["buyers"])
_BUYER = error_responses(BuyerNotFound)


@router.get(
    "/buyers/lookup",
    summary="Find a buyer by any one identifier",
    responses=error_responses(BuyerNotFound, LookupNeedsOneIdentifier),
)
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
    "/buyers/{buyer_id}",
    summary="The canonical buyer record (a merged id answers with its survivor)",
    responses=_BUYER,
)
def get_buyer(db: DB, principal: SecretKey, buyer_id: str) -> BuyerRead:
    pipeline.catch_up(db, workspace_id=principal.workspace_id)  # see every event acknowledged before now
    with db.read() as session:
        return service.get_buyer(session=session, workspace_id=principal.workspace_id, buyer_id=buyer_id)


@router.get(
    "/buyers/{buyer_id}/state",
    summary="The buyer's live features and persona (with reasons and history)",
    responses=_BUYER,
)
def buyer_state(db: DB, principal: SecretKey, buyer_id: str) -> BuyerState:
    pipeline.catch_up(db, workspace_id=principal.workspace_id)  # see every event acknowledged before now
    with db.read() as session:
        return service.buyer_state(session=session, workspace_id=principal.workspace_id, buyer_id=buyer_id)


@router.get("/buyers/{buyer_id}/events", summary="The buyer's events, newest first", responses=_BUYER)
def buyer_events(
    db: DB, principal: SecretKey, buyer_id: str, limit: Limit = DEFAULT_LIMIT, cursor: Cursor = None
) -> EventPage:
    pipeline.catch_up(db, workspace_id=principal.workspace_id)  # an event is the buyer's once identity ran
    with db.read() as session:
        return service.buyer_events(
            session=session,
            workspace_id=principal.workspace_id,
            buyer_id=buyer_id,
            limit=limit,
            cursor=cursor,
        )


@router.get(
    "/buyers/{buyer_id}/export", summary="GDPR access: everything held on this buyer", responses=_BUYER
)
def export_buyer(db: DB, principal: SecretKey, buyer_id: str) -> BuyerExport:
    pipeline.catch_up(db, workspace_id=principal.workspace_id)  # every acknowledged event is in the export
    with db.write() as session:
        return service.export_buyer(
            session=session, workspace_id=principal.workspace_id, buyer_id=buyer_id, actor=principal.key_id
        )


@router.delete(
    "/buyers/{buyer_id}",
    summary="GDPR erasure: personal data and identifiers are deleted",
    responses=_BUYER,
)
def delete_buyer(db: DB, principal: SecretKey, buyer_id: str) -> BuyerErasure:
    # Erasure must reach every acknowledged event: one not yet given its buyer would escape it, and bring
    # the buyer back when a consumer got to it.
    pipeline.catch_up(db, workspace_id=principal.workspace_id)
    with db.write() as session:
        return service.delete_buyer(
            session=session, workspace_id=principal.workspace_id, buyer_id=buyer_id, actor=principal.key_id
        )


@router.put("/buyers/{buyer_id}/consent", summary="Set marketing / personalization consent", responses=_BUYER)
def set_consent(db: DB, principal: SecretKey, buyer_id: str, body: ConsentUpdate) -> BuyerRead:
    with db.write() as session:
        return service.set_consent(
            session=session, workspace_id=principal.workspace_id, buyer_id=buyer_id, consent=body,
            actor=principal.key_id,
        )  # fmt: skip


@router.get("/merges", summary="Identity merges, newest first", responses=_BUYER)
def list_merges(
    db: DB,
    principal: SecretKey,
    buyer_id: Annotated[str | None, Query(description="Only merges this buyer was part of")] = None,
    limit: Limit = DEFAULT_LIMIT,
    cursor: Cursor = None,
) -> MergePage:
    with db.read() as session:
        return service.merges_page(
            session=session,
            workspace_id=principal.workspace_id,
            buyer_id=buyer_id,
            limit=limit,
            cursor=cursor,
        )


@router.post(
    "/merges/{merge_id}/undo",
    summary="Undo a merge (admin): the buyers are split again",
    responses=error_responses(MergeNotFound, MergeNotUndoable),
)
def undo_merge(db: DB, principal: SecretKey, merge_id: str) -> MergeRead:
    with db.write() as session:
        return service.undo_merge(
            session=session, workspace_id=principal.workspace_id, merge_id=merge_id, actor=principal.key_id
        )


@router.get("/identity-conflicts", summary="Refused merges between two identified buyers", responses=_BUYER)
def list_conflicts(
    db: DB,
    principal: SecretKey,
    buyer_id: Annotated[str | None, Query(description="Only conflicts involving this buyer")] = None,
    limit: Limit = DEFAULT_LIMIT,
    cursor: Cursor = None,
) -> ConflictPage:
    with db.read() as session:
        return service.conflicts_page(
            session=session,
            workspace_id=principal.workspace_id,
            buyer_id=buyer_id,
            limit=limit,
            cursor=cursor,
        )
