"""Entitlement checks, grants, revocations, admin overrides and quota use."""

from __future__ import annotations

from typing import Annotated, Literal

from fastapi import APIRouter, Query

from offerloop import pipeline
from offerloop.core.errors import ValidationFailed, error_responses
from offerloop.core.pages import DEFAULT_LIMIT, MAX_LIMIT, InvalidCursor, Page
from offerloop.entitlements import service
from offerloop.entitlements.exceptions import (
    BuyerIdentifierRequired,
    EntitlementNotFound,
    InvalidComponent,
    InvalidEntitlement,
    NotEntitled,
    QuotaExhausted,
    ReservedSource,
)
from offerloop.entitlements.schemas import (
    CheckResult,
    Component,
    EntitlementRead,
    GrantIn,
    OverrideIn,
    OverrideRead,
    QuotaUsed,
    QuotaUseIn,
    RevokeIn,
)
from offerloop.identity.exceptions import BuyerErased, BuyerNotFound
from offerloop.workspaces.auth import DB, SecretKey
from offerloop.workspaces.exceptions import InvalidKey, SecretKeyRequired

router = APIRouter(prefix="/v1", tags=["entitlements"])

Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT, description="Items per page")]
Cursor = Annotated[str | None, Query(description="The next_cursor of the previous page")]
_KEY = (InvalidKey, SecretKeyRequired, ValidationFailed)
_CHANGE = (*_KEY, BuyerNotFound, BuyerErased, InvalidComponent, InvalidEntitlement, ReservedSource)


@router.get(
    "/entitlements/check", summary="May this buyer use this component now, and why",
    responses=error_responses(*_KEY, BuyerIdentifierRequired, BuyerNotFound),
)  # fmt: skip
def check(
    db: DB,
    principal: SecretKey,
    component: Component,
    ref: Annotated[str | None, Query(max_length=200, description="Omit: any ref of the component")] = None,
    user_id: Annotated[str | None, Query(max_length=200)] = None,
    anonymous_id: Annotated[str | None, Query(max_length=200)] = None,
    buyer_id: Annotated[str | None, Query(max_length=40)] = None,
) -> CheckResult:
    pipeline.catch_up(db, workspace_id=principal.workspace_id)  # see every event acknowledged before now
    with db.read() as session:
        return service.check_for(
            session=session, workspace_id=principal.workspace_id, component=component, ref=ref,
            user_id=user_id, anonymous_id=anonymous_id, buyer_id=buyer_id,
        )  # fmt: skip


@router.get(
    "/buyers/{buyer_id}/entitlements", summary="A buyer's entitlements, oldest first, revoked ones too",
    responses=error_responses(*_KEY, BuyerNotFound, InvalidCursor),
)  # fmt: skip
def list_for_buyer(
    db: DB, principal: SecretKey, buyer_id: str, limit: Limit = DEFAULT_LIMIT, cursor: Cursor = None,
    component: Annotated[Component | None, Query(description="Only this component")] = None,
    status: Annotated[Literal["active", "revoked"] | None, Query(description="Only this status")] = None,
    source: Annotated[str | None, Query(max_length=80, description="Only from this order or subscription")] = None,
) -> Page[EntitlementRead]:  # fmt: skip
    with db.read() as session:
        return service.page_for_buyer(session=session, workspace_id=principal.workspace_id, buyer_id=buyer_id,
                                      limit=limit, cursor=cursor, component=component, status=status, source=source)  # fmt: skip


@router.post(
    "/entitlements", summary="Grant access (idempotent per buyer, component, ref and source)",
    responses=error_responses(*_CHANGE),
)  # fmt: skip
def grant(db: DB, principal: SecretKey, body: GrantIn) -> EntitlementRead:
    with db.write() as session:
        return service.grant(
            session=session, workspace_id=principal.workspace_id, buyer_id=body.buyer_id,
            component=body.component, ref=body.ref, source=body.source, access_ends_at=body.access_ends_at,
            quantity=body.quantity, actor=principal.key_id,
        )  # fmt: skip


@router.post(
    "/entitlements/{entitlement_id}/revoke", summary="Revoke one entitlement",
    responses=error_responses(*_KEY, EntitlementNotFound),
)  # fmt: skip
def revoke(db: DB, principal: SecretKey, entitlement_id: str, body: RevokeIn) -> EntitlementRead:
    with db.write() as session:
        return service.revoke(
            session=session, workspace_id=principal.workspace_id, entitlement_id=entitlement_id,
            reason=body.reason, actor=principal.key_id,
        )  # fmt: skip


@router.put(
    "/entitlements/override", summary="Admin override: deny beats grants, allow needs none, null clears",
    responses=error_responses(*_CHANGE),
)  # fmt: skip
def override(db: DB, principal: SecretKey, body: OverrideIn) -> OverrideRead:
    with db.write() as session:
        row = service.override(
            session=session, workspace_id=principal.workspace_id, buyer_id=body.buyer_id,
            component=body.component, ref=body.ref, mode=body.mode, reason=body.reason, actor=principal.key_id,
        )  # fmt: skip
    return OverrideRead(mode=row.override if row is not None else None, entitlement=row)


@router.post(
    "/entitlements/use", summary="Use quota (409 quota_exhausted when none is left)",
    responses=error_responses(*_CHANGE, QuotaExhausted, NotEntitled),
)  # fmt: skip
def use_quota(db: DB, principal: SecretKey, body: QuotaUseIn) -> QuotaUsed:
    with db.write() as session:
        remaining = service.use_quota(
            session=session, workspace_id=principal.workspace_id, buyer_id=body.buyer_id,
            component=body.component, ref=body.ref, n=body.n, actor=principal.key_id,
        )  # fmt: skip
    return QuotaUsed(remaining=remaining)
