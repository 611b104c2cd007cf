"""Pydantic I/O of the entitlements domain."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Literal, get_args

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field

Component = Literal[
    "assessment", "module", "community_space", "certification", "coaching_quota", "download", "deliverable"
]
COMPONENTS: frozenset[str] = frozenset(get_args(Component))
OverrideMode = Literal["allow", "deny"]
Reason = Literal[
    "granted", "override_allow", "override_deny", "expired", "revoked", "quota_exhausted", "not_granted"
]

Ref = Annotated[str, Field(min_length=1, max_length=200, description="Which module, space, quota… it is")]
Source = Annotated[
    str, Field(min_length=1, max_length=80, description='The order or subscription id ("admin" is reserved)')
]
BuyerId = Annotated[str, Field(min_length=1, max_length=40)]


class EntitlementRead(BaseModel):
    """One stored entitlement: a grant from a source, or (source "admin") an admin override."""

    model_config = ConfigDict(from_attributes=True)
    id: str
    buyer_id: str
    component: str
    ref: str
    source: str
    status: str
    override: OverrideMode | None
    quantity: int | None
    granted_at: datetime
    access_ends_at: datetime | None
    revoked_at: datetime | None
    reason: str | None


class CheckResult(BaseModel):
    """May the buyer use the component now, and why (one of the stable reason codes)."""

    allowed: bool
    reason: Reason
    entitlement_id: str | None = None
    access_ends_at: datetime | None = None
    quantity: int | None = Field(default=None, description="Quota left (None: not a quota, or unlimited)")


class GrantIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    buyer_id: BuyerId
    component: Component
    ref: Ref
    source: Source
    access_ends_at: AwareDatetime | None = Field(default=None, description="None: access does not end")
    quantity: int | None = Field(default=None, ge=0, description="Quota (required for coaching_quota)")


class RevokeIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    reason: str = Field(min_length=1, max_length=2000)


class OverrideIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    buyer_id: BuyerId
    component: Component
    ref: Ref
    mode: OverrideMode | None = Field(description="allow | deny; null clears the override")
    reason: str = Field(min_length=1, max_length=2000)


class QuotaUseIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    buyer_id: BuyerId
    component: Component = "coaching_quota"
    ref: Ref
    n: int = Field(default=1, ge=1, le=10_000)


class OverrideRead(BaseModel):
    """The admin override now in force on one (component, ref): ``mode`` null when there is none."""

    mode: OverrideMode | None
    entitlement: EntitlementRead | None = Field(description="The admin row (null if there never was one)")


class QuotaUsed(BaseModel):
    remaining: int | None = Field(description="Quota left after this use (None: unlimited)")
