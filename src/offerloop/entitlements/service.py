"""Who may use what: grants from orders and subscriptions, admin overrides, access ends, quotas, checks.

One entitlement row per (buyer, component, ref, source). Grants come from an order or a subscription;
admin overrides live on the row whose source is "admin" and beat every grant. Access end is the end of
*access* (a canceled subscription keeps it until the period end), not the end of billing.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Sequence
from datetime import UTC, datetime
from typing import Any

from sqlalchemy.orm import Session

from offerloop.core.clock import utcnow
from offerloop.core.ids import new_id
from offerloop.core.pages import InvalidCursor, Page, decode_cursor, page_of
from offerloop.entitlements import repository
from offerloop.entitlements.exceptions import (
    BuyerIdentifierRequired,
    EntitlementNotFound,
    InvalidComponent,
    InvalidEntitlement,
    NotEntitled,
    QuotaExhausted,
    ReservedSource,
)
from offerloop.entitlements.repository import ADMIN, Slot
from offerloop.entitlements.schemas import COMPONENTS, CheckResult, EntitlementRead, OverrideMode
from offerloop.events import service as events_service
from offerloop.identity import service as identity_service
from offerloop.models import Entitlement
from offerloop.workspaces import service as workspace_service

# Which refusal explains best when several rows refuse (ref=None looks at every ref of the component).
_REFUSAL_RANK = {"override_deny": 0, "quota_exhausted": 1, "expired": 2, "revoked": 3, "not_granted": 4}
_NOT_GRANTED = CheckResult(allowed=False, reason="not_granted")
_EPOCH = datetime.min.replace(tzinfo=UTC)
# On the buyer's record when access starts (a new grant, or a revoked one given back), for journeys.
GRANTED_EVENT = "Entitlement Granted"


# -- pure evaluation ---------------------------------------------------------------------------------


def _ended(access_ends_at: datetime | None, now: datetime) -> bool:
    return access_ends_at is not None and access_ends_at <= now


def _lasting(s: Slot) -> tuple[bool, datetime, str]:
    """Sort key: the grant whose access lasts longest (no end beats any end), then the newest."""
    return (s.access_ends_at is None, s.access_ends_at or _EPOCH, s.id)


def _usable(slots: Iterable[Slot], now: datetime) -> list[Slot]:
    return [
        s
        for s in slots
        if s.source != ADMIN
        and s.status == "active"
        and not _ended(s.access_ends_at, now)
        and (s.quantity is None or s.quantity > 0)
    ]


def _override(slots: Iterable[Slot], mode: str) -> Slot | None:
    return next((s for s in slots if s.source == ADMIN and s.status == "active" and s.override == mode), None)


def evaluate(slots: Sequence[Slot], now: datetime) -> CheckResult:
    """The answer for one (component, ref) from all its rows."""
    deny = _override(slots, "deny")
    if deny is not None:
        return CheckResult(allowed=False, reason="override_deny", entitlement_id=deny.id)
    allow = _override(slots, "allow")
    if allow is not None:  # unlimited: no end, no quota drawn
        return CheckResult(allowed=True, reason="override_allow", entitlement_id=allow.id)
    usable = _usable(slots, now)
    if usable:
        best = max(usable, key=_lasting)
        quantities = [s.quantity for s in usable]
        left = None if None in quantities else sum(q for q in quantities if q is not None)
        return CheckResult(
            allowed=True, reason="granted", entitlement_id=best.id, access_ends_at=best.access_ends_at,
            quantity=left,
        )  # fmt: skip
    grants = sorted((s for s in slots if s.source != ADMIN), key=lambda s: s.id, reverse=True)
    active = [s for s in grants if s.status == "active"]
    exhausted = [s for s in active if not _ended(s.access_ends_at, now)]  # active, not ended: quota is 0
    if exhausted:
        s = exhausted[0]
        return CheckResult(
            allowed=False, reason="quota_exhausted", entitlement_id=s.id, access_ends_at=s.access_ends_at,
            quantity=0,
        )  # fmt: skip
    if active:
        s = max(active, key=_lasting)
        return CheckResult(
            allowed=False, reason="expired", entitlement_id=s.id, access_ends_at=s.access_ends_at,
            quantity=s.quantity,
        )  # fmt: skip
    if grants:
        s = grants[0]
        return CheckResult(
            allowed=False, reason="revoked", entitlement_id=s.id, access_ends_at=s.access_ends_at,
            quantity=s.quantity,
        )  # fmt: skip
    return _NOT_GRANTED


def _by_key(slots: Iterable[Slot]) -> dict[tuple[str, str], list[Slot]]:
    groups: dict[tuple[str, str], list[Slot]] = defaultdict(list)
    for s in slots:
        groups[(s.component, s.ref)].append(s)
    return groups


def combine(results: Sequence[CheckResult]) -> CheckResult:
    """Any ref of a component: allowed if one ref is (the longest-lasting), else the best explanation."""
    allowed = [r for r in results if r.allowed]
    if allowed:
        return max(allowed, key=lambda r: (r.access_ends_at is None, r.access_ends_at or _EPOCH))
    return min(results, key=lambda r: _REFUSAL_RANK[r.reason], default=_NOT_GRANTED)


def _lineage(session: Session, workspace_id: str, live: str) -> tuple[str, ...]:
    """The live buyer and the buyers merged into it: a merge moves no entitlement row (an undo gives them
    back as they were), so the rows of all of them are the live buyer's."""
    return identity_service.lineage(session=session, workspace_id=workspace_id, buyer_id=live)


# -- checks (read-only) ------------------------------------------------------------------------------


def _component(component: str) -> None:
    if component not in COMPONENTS:
        raise InvalidComponent(f"unknown component {component!r}", details={"allowed": sorted(COMPONENTS)})


def check(
    *, session: Session, workspace_id: str, buyer_id: str, component: str, ref: str | None = None,
    now: datetime | None = None,
) -> CheckResult:  # fmt: skip
    """May ``buyer_id`` (a live buyer id) use ``component``/``ref`` now? ref=None: any ref of it. The rows of
    the buyers merged into it count as its own (``_lineage``)."""
    _component(component)
    now = now or utcnow()
    mine = _lineage(session, workspace_id, buyer_id)
    groups = _by_key(repository.slots(session, workspace_id, mine, component, ref))
    return combine([evaluate(group, now) for _, group in sorted(groups.items())])


def resolve_buyer(
    *, session: Session, workspace_id: str, user_id: str | None = None, anonymous_id: str | None = None,
    buyer_id: str | None = None,
) -> str:  # fmt: skip
    """The live buyer id for exactly one of user_id, anonymous_id, buyer_id (BuyerNotFound if none)."""
    if sum(x is not None for x in (user_id, anonymous_id, buyer_id)) != 1:
        raise BuyerIdentifierRequired("give exactly one of user_id, anonymous_id or buyer_id")
    if buyer_id is not None:
        return identity_service.get_buyer(session=session, workspace_id=workspace_id, buyer_id=buyer_id).id
    return identity_service.find_buyer(
        session=session, workspace_id=workspace_id, user_id=user_id, anonymous_id=anonymous_id
    )[0]


def check_for(
    *, session: Session, workspace_id: str, component: str, ref: str | None = None,
    user_id: str | None = None, anonymous_id: str | None = None, buyer_id: str | None = None,
    now: datetime | None = None,
) -> CheckResult:  # fmt: skip
    """check() for a buyer given by one identifier (the HTTP check)."""
    _component(component)
    live = resolve_buyer(
        session=session, workspace_id=workspace_id, user_id=user_id, anonymous_id=anonymous_id,
        buyer_id=buyer_id,
    )  # fmt: skip
    return check(
        session=session, workspace_id=workspace_id, buyer_id=live, component=component, ref=ref, now=now
    )


def active_keys(
    *, session: Session, workspace_id: str, buyer_id: str, now: datetime | None = None
) -> frozenset[str]:
    """ "component:ref" of everything the buyer (a live id) may use now: for eligibility rules."""
    now = now or utcnow()
    groups = _by_key(repository.slots(session, workspace_id, _lineage(session, workspace_id, buyer_id)))
    return frozenset(f"{c}:{r}" for (c, r), group in groups.items() if evaluate(group, now).allowed)


def list_for_buyer(*, session: Session, workspace_id: str, buyer_id: str) -> list[EntitlementRead]:
    """Every entitlement row of the buyer and of the buyers merged into it (merged ids answer with their
    survivor), revoked ones too."""
    live = identity_service.get_buyer(session=session, workspace_id=workspace_id, buyer_id=buyer_id).id
    rows = repository.of_buyer(session, workspace_id, _lineage(session, workspace_id, live))
    return [EntitlementRead.model_validate(e) for e in rows]


def page_for_buyer(
    *, session: Session, workspace_id: str, buyer_id: str, limit: int, cursor: str | None = None,
    component: str | None = None, status: str | None = None, source: str | None = None,
) -> Page[EntitlementRead]:  # fmt: skip
    """The buyer's entitlements a page at a time, oldest first (ids are time-ordered), revoked ones too."""
    live = identity_service.get_buyer(session=session, workspace_id=workspace_id, buyer_id=buyer_id).id
    after = decode_cursor(cursor, types=(str,))
    if after is not None and not after[0].startswith("ent_"):  # another list's cursor
        raise InvalidCursor("cursor does not belong to this list: pass the next_cursor of its previous page")
    rows = repository.page_of_buyer(session, workspace_id, _lineage(session, workspace_id, live), limit=limit + 1, after_id=after[0] if after else None,
                                    component=component, status=status, source=source)  # fmt: skip
    return page_of(rows, limit, key=lambda e: (e.id,), item=EntitlementRead.model_validate)


# -- changes (audited; the caller commits) ------------------------------------------------------------


def _text(name: str, value: str, max_length: int) -> None:
    if not value or len(value) > max_length:
        raise InvalidEntitlement(f"{name} must be 1 to {max_length} characters")


def _aware(value: datetime | None) -> None:
    if value is not None and value.tzinfo is None:
        raise InvalidEntitlement("access_ends_at must be timezone-aware")


def _iso(value: datetime | None) -> str | None:
    return value.astimezone(UTC).isoformat() if value is not None else None


def _audit(
    session: Session, workspace_id: str, actor: str, action: str, target_id: str, details: dict[str, Any]
) -> None:
    workspace_service.audit(
        session, workspace_id, actor=actor, action=action, target_type="entitlement", target_id=target_id,
        details=details,
    )  # fmt: skip


def grant(
    *, session: Session, workspace_id: str, buyer_id: str, component: str, ref: str, source: str,
    access_ends_at: datetime | None = None, quantity: int | None = None, actor: str,
) -> EntitlementRead:  # fmt: skip
    """Grant access from ``source``. Idempotent per (buyer, component, ref, source): granting again
    reactivates the row and sets its access end and quantity (a renewal resets a quota)."""
    _component(component)
    _text("ref", ref, 200)
    _text("source", source, 80)
    _aware(access_ends_at)
    if source == ADMIN:
        raise ReservedSource('source "admin" holds overrides: use override()')
    if quantity is not None and quantity < 0:
        raise InvalidEntitlement("quantity must be >= 0")
    if component == "coaching_quota" and quantity is None:
        raise InvalidEntitlement("a coaching_quota grant needs a quantity")
    live = identity_service.live_buyer(session=session, workspace_id=workspace_id, buyer_id=buyer_id).id
    repository.lock_slot(session, f"{workspace_id}:{live}:{component}:{ref}:{source}")
    # a row a merged-away buyer holds from this source is this grant's row (a renewal after the merge)
    row = repository.find(
        session, workspace_id, _lineage(session, workspace_id, live), component, ref, source
    )
    created = row is None
    # A renewal of active access is no new grant; a revoked one given back is (named by when it was revoked).
    starts = None if row is not None and row.status == "active" else (_iso(row.revoked_at) if row else "")
    if row is None:
        row = Entitlement(
            id=new_id("ent"), workspace_id=workspace_id, buyer_id=live, component=component, ref=ref,
            source=source, status="active", override=None, quantity=quantity, granted_at=utcnow(),
            access_ends_at=access_ends_at, revoked_at=None, reason=None,
        )  # fmt: skip
        repository.add(session, row)
    else:
        row.status, row.quantity, row.access_ends_at = "active", quantity, access_ends_at
        row.revoked_at, row.reason = None, None
    details = {"buyer_id": live, "component": component, "ref": ref, "source": source,
               "access_ends_at": _iso(access_ends_at), "quantity": quantity, "created": created}  # fmt: skip
    _audit(session, workspace_id, actor, "entitlement.grant", row.id, details)
    session.flush()
    if starts is not None:
        _announce(session, row, f"entitlement-{row.id}-granted" + (f"-after-{starts}" if starts else ""))
    return EntitlementRead.model_validate(row)


def _announce(session: Session, row: Entitlement, message_id: str) -> None:
    """``Entitlement Granted`` on the buyer's record, once per start of access (in the grant's transaction,
    so a rolled-back grant leaves no event; a refused one is quarantined, never failing the grant)."""
    message = events_service.buyer_track(
        session, row.workspace_id, row.buyer_id, GRANTED_EVENT,
        {"entitlement_id": row.id, "component": row.component, "ref": row.ref, "source": row.source,
         "access_ends_at": _iso(row.access_ends_at)},
        message_id,
    )  # fmt: skip
    events_service.record_server_events(session, row.workspace_id, [message])


def revoke(
    *, session: Session, workspace_id: str, entitlement_id: str, reason: str, actor: str
) -> EntitlementRead:
    """Revoke one entitlement (an admin row: its override is cleared). Revoking twice changes nothing."""
    row = repository.get(session, workspace_id, entitlement_id)
    if row is None:
        raise EntitlementNotFound(f"entitlement {entitlement_id} does not exist in this workspace")
    if row.status != "revoked":
        row.status, row.revoked_at, row.reason = "revoked", utcnow(), reason
        if row.source == ADMIN:
            row.override = None
        _audit(session, workspace_id, actor, "entitlement.revoke", row.id, {"reason": reason})
        session.flush()
    return EntitlementRead.model_validate(row)


def revoke_source(*, session: Session, workspace_id: str, source: str, reason: str, actor: str) -> int:
    """Revoke every active grant of an order or subscription (full refund, cancellation); how many."""
    if source == ADMIN:
        raise ReservedSource('source "admin" holds overrides: clear them one by one with override()')
    ids = repository.revoke_source(session, workspace_id, source, reason, utcnow())
    for entitlement_id in ids:
        details = {"reason": reason, "source": source}
        _audit(session, workspace_id, actor, "entitlement.revoke", entitlement_id, details)
    return len(ids)


def revoke_grant(
    *, session: Session, workspace_id: str, buyer_id: str, component: str, ref: str, source: str, reason: str,
    actor: str,
) -> bool:  # fmt: skip
    """Revoke the one grant of (component, ref) from ``source`` (a plan change drops a component); whether
    there was an active one."""
    if source == ADMIN:
        raise ReservedSource("admin overrides are cleared with override()")
    live = identity_service.get_buyer(session=session, workspace_id=workspace_id, buyer_id=buyer_id).id
    row = repository.find(
        session, workspace_id, _lineage(session, workspace_id, live), component, ref, source
    )
    if row is None or row.status != "active":
        return False
    revoke(session=session, workspace_id=workspace_id, entitlement_id=row.id, reason=reason, actor=actor)
    return True


def set_access_end(
    *, session: Session, workspace_id: str, source: str, access_ends_at: datetime | None,
    actor: str = "system",
) -> int:  # fmt: skip
    """Set when access from ``source`` ends (None: never), independently of billing; how many rows."""
    if source == ADMIN:
        raise ReservedSource("admin overrides have no access end")
    _aware(access_ends_at)
    ids = repository.set_access_end(session, workspace_id, source, access_ends_at)
    for entitlement_id in ids:
        details = {"source": source, "access_ends_at": _iso(access_ends_at)}
        _audit(session, workspace_id, actor, "entitlement.access_end", entitlement_id, details)
    return len(ids)


def override(
    *, session: Session, workspace_id: str, buyer_id: str, component: str, ref: str,
    mode: OverrideMode | None, reason: str, actor: str,
) -> EntitlementRead | None:  # fmt: skip
    """Admin override of one (component, ref): "deny" beats every grant, "allow" gives access without
    one, None clears it. The admin row (None if there never was one). The override is the live buyer's own
    row; one a merged-away buyer held is cleared, so the buyer's checks answer what was set here."""
    _component(component)
    _text("ref", ref, 200)
    if mode not in ("allow", "deny", None):
        raise InvalidEntitlement('mode must be "allow", "deny" or null')
    live = identity_service.get_buyer(session=session, workspace_id=workspace_id, buyer_id=buyer_id).id
    repository.lock_slot(session, f"{workspace_id}:{live}:{component}:{ref}:{ADMIN}")
    rows = repository.held(
        session, workspace_id, _lineage(session, workspace_id, live), component, ref, ADMIN
    )
    row = next((r for r in rows if r.buyer_id == live), None)
    for other in rows:
        if other is not row and other.override is not None:
            other.override, other.status, other.revoked_at, other.reason = None, "revoked", utcnow(), reason
            details = {"buyer_id": other.buyer_id, "component": component, "ref": ref, "mode": None,
                       "reason": reason, "survivor_id": live}  # fmt: skip
            _audit(session, workspace_id, actor, "entitlement.override", other.id, details)
    if mode is None:
        if row is None or row.override is None:
            session.flush()
            shown = row if row is not None else (rows[0] if rows else None)
            return EntitlementRead.model_validate(shown) if shown is not None else None
        row.override, row.status, row.revoked_at, row.reason = None, "revoked", utcnow(), reason
    elif row is None:
        row = Entitlement(
            id=new_id("ent"), workspace_id=workspace_id, buyer_id=live, component=component, ref=ref,
            source=ADMIN, status="active", override=mode, quantity=None, granted_at=utcnow(),
            access_ends_at=None, revoked_at=None, reason=reason,
        )  # fmt: skip
        repository.add(session, row)
    else:
        row.override, row.status, row.revoked_at, row.reason = mode, "active", None, reason
    details = {"buyer_id": live, "component": component, "ref": ref, "mode": mode, "reason": reason}
    _audit(session, workspace_id, actor, "entitlement.override", row.id, details)
    session.flush()
    return EntitlementRead.model_validate(row)


def use_quota(
    *, session: Session, workspace_id: str, buyer_id: str, component: str, ref: str, n: int = 1, actor: str,
) -> int | None:  # fmt: skip
    """Use ``n`` of the buyer's quota; what is left across its usable grants (None: unlimited, from an
    allow override or a grant without quantity). One grant pays for the whole use, the one ending soonest
    first. QuotaExhausted when no grant has ``n`` left; NotEntitled when there is no usable grant."""
    _component(component)
    if n < 1:
        raise InvalidEntitlement("n must be >= 1")
    live = identity_service.get_buyer(session=session, workspace_id=workspace_id, buyer_id=buyer_id).id
    now = utcnow()
    slots = repository.slots(session, workspace_id, _lineage(session, workspace_id, live), component, ref)
    answer = evaluate(slots, now)
    usable = _usable(slots, now)
    if answer.reason in ("override_deny", "expired", "revoked", "not_granted"):
        raise NotEntitled(f"buyer may not use {component}:{ref}", details={"reason": answer.reason})
    if answer.reason == "override_allow" or any(s.quantity is None for s in usable):
        target = answer.entitlement_id or next(s.id for s in usable if s.quantity is None)
        _audit(session, workspace_id, actor, "entitlement.use", target, {"n": n, "remaining": None})
        return None
    # Soonest-ending first; quantities read above may be stale, the conditional UPDATE decides.
    for s in sorted(usable, key=lambda s: (s.access_ends_at is None, s.access_ends_at or _EPOCH, s.id)):
        if (s.quantity or 0) < n:
            continue
        left = repository.take(session, workspace_id, s.id, n, now)
        if left is not None:
            _audit(session, workspace_id, actor, "entitlement.use", s.id, {"n": n, "remaining": left})
            return left + sum(o.quantity or 0 for o in usable if o.id != s.id)
    raise QuotaExhausted(f"no quota of {n} left for {component}:{ref}", details={"n": n})


def ending_between(
    *, session: Session, workspace_id: str, start: datetime, end: datetime,
    after: tuple[datetime, str] | None = None, limit: int = 500,
) -> list[EntitlementRead]:  # fmt: skip
    """Active grants whose access ends in (start, end], soonest first, a page of ``limit`` after ``after``
    ((access end, id) of the last one seen): for journeys that fire before an access ends."""
    rows = repository.ending_between(session, workspace_id, start, end, after, limit)
    return [EntitlementRead.model_validate(r) for r in rows]
