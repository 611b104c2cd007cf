"""Entitlement checks, grants, revocations, admin overrides and quota use."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from offerloop import pipeline
from offerloop.entitlements import service
from offerloop.entitlements.schemas import (
    CheckResult,
    Component,
    EntitlementRead,
    GrantIn,
    OverrideIn,
    QuotaUsed,
    QuotaUseIn,
    RevokeIn,
)
from offerloop.workspaces.auth import DB, SecretKey

router = APIRouter(prefix="/v1", tags=["entitlements"])


@router.get("/entitlements/check", summary="May this buyer use this component now, and why")
def check(
    db: DB,
    principal: SecretKey,
    component: Component,
    ref: Annotated[str | None, Query(max_length=200, description="Omit: any ref of the component")] = None,
    user_id: str | None = None,
    anonymous_id: str | None = None,
    buyer_id: str | None = None,
) -> CheckResult:
    pipeline.catch_up(db, workspace_id=principal.workspace_id)  # see every event acknowledged before now
    with db.read() as session:
        return service.check_for(
            session=session, workspace_id=principal.workspace_id, component=component, ref=ref,
            user_id=user_id, anonymous_id=anonymous_id, buyer_id=buyer_id,
        )  # fmt: skip


@router.get("/buyers/{buyer_id}/entitlements", summary="Every entitlement of a buyer, revoked ones too")
def list_for_buyer(db: DB, principal: SecretKey, buyer_id: str) -> list[EntitlementRead]:
    with db.read() as session:
        return service.list_for_buyer(session=session, workspace_id=principal.workspace_id, buyer_id=buyer_id)


@router.post("/entitlements", summary="Grant access (idempotent per buyer, component, ref and source)")
def grant(db: DB, principal: SecretKey, body: GrantIn) -> EntitlementRead:
    with db.write() as session:
        return service.grant(
            session=session, workspace_id=principal.workspace_id, buyer_id=body.buyer_id,
            component=body.component, ref=body.ref, source=body.source, access_ends_at=body.access_ends_at,
            quantity=body.quantity, actor=principal.key_id,
        )  # fmt: skip


@router.post("/entitlements/{entitlement_id}/revoke", summary="Revoke one entitlement")
def revoke(db: DB, principal: SecretKey, entitlement_id: str, body: RevokeIn) -> EntitlementRead:
    with db.write() as session:
        return service.revoke(
            session=session, workspace_id=principal.workspace_id, entitlement_id=entitlement_id,
            reason=body.reason, actor=principal.key_id,
        )  # fmt: skip


@router.put(
    "/entitlements/override", summary="Admin override: deny beats grants, allow needs none, null clears"
)
def override(db: DB, principal: SecretKey, body: OverrideIn) -> EntitlementRead | None:
    with db.write() as session:
        return service.override(
            session=session, workspace_id=principal.workspace_id, buyer_id=body.buyer_id,
            component=body.component, ref=body.ref, mode=body.mode, reason=body.reason, actor=principal.key_id,
        )  # fmt: skip


@router.post("/entitlements/use", summary="Use quota (409 quota_exhausted when none is left)")
def use_quota(db: DB, principal: SecretKey, body: QuotaUseIn) -> QuotaUsed:
    with db.write() as session:
        remaining = service.use_quota(
            session=session, workspace_id=principal.workspace_id, buyer_id=body.buyer_id,
            component=body.component, ref=body.ref, n=body.n, actor=principal.key_id,
        )  # fmt: skip
    return QuotaUsed(remaining=remaining)
