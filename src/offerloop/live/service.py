"""Live drops: the creator opens and closes a drop by hand (API, CLI), anyone reads its public status, each
viewer is shown the variant the decision engine chooses for them, and a short link checks a viewer out.

A drop's open/close overrides its schedule (``offers.drops.drop_state``); every change, and every unit held,
sold or released, wakes the drop's live streams once its unit of work commits (``offers.service.stock_changed``).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from offerloop.checkout import service as checkout_service
from offerloop.checkout.exceptions import OrderNotFound
from offerloop.checkout.schemas import OrderRead
from offerloop.checkout.stripe_provider import StripeProvider
from offerloop.core.clock import utcnow
from offerloop.decisions.schemas import DecideRequest
from offerloop.identity import service as identity_service
from offerloop.identity.exceptions import BuyerNotFound
from offerloop.live.exceptions import BadViewer, DropNotFound, DropNotLive
from offerloop.live.schemas import DropChanged, DropStatus
from offerloop.offers import service as offers_service
from offerloop.offers.catalog import Offer
from offerloop.offers.exceptions import OfferNotFound
from offerloop.workspaces import service as workspace_service
from offerloop.workspaces.exceptions import WorkspaceNotFound

PLACEMENT = "offers"  # the overlay shows an offer: the offers placement's policy chooses its variant
_VIEWER = re.compile(r"[A-Za-z0-9._:@-]{1,128}")
_WORKSPACE = re.compile(r"[A-Za-z0-9_-]{1,64}")


def viewer_id(value: str | None) -> str:
    """A viewer's anonymousId, checked before it reaches the database (BadViewer: 422)."""
    if value is None or not _VIEWER.fullmatch(value):
        shown = "nothing" if value is None else repr(value[:40]) + ("..." if len(value) > 40 else "")
        raise BadViewer(
            f"viewer must be an anonymousId of 1-128 letters, digits and ._:@- characters, got {shown}"
        )
    return value


def drop_of(*, session: Session, workspace_id: str, key: str) -> Offer:
    """The drop ``key`` of the workspace; DropNotFound (404) for an unknown workspace, catalog, offer or an
    offer that is not a drop — the public pages do not tell these apart."""
    if not _WORKSPACE.fullmatch(workspace_id) or len(key) > 120:
        raise DropNotFound(f"no drop {key[:64]!r} here")
    try:
        workspace_service.get_workspace(session=session, workspace_id=workspace_id)
        offer = offers_service.get_offer(session=session, workspace_id=workspace_id, key=key)
    except (WorkspaceNotFound, OfferNotFound):
        raise DropNotFound(f"no drop {key[:64]!r} here") from None
    if offer.kind != "drop" or offer.opens_at is None or offer.closes_at is None:
        raise DropNotFound(f"{key!r} is a {offer.kind}, not a drop")
    return offer


def status(*, session: Session, workspace_id: str, key: str, now: datetime | None = None) -> DropStatus:
    drop = drop_of(session=session, workspace_id=workspace_id, key=key)
    return _status(session, workspace_id, drop, now or utcnow())


def _status(session: Session, workspace_id: str, drop: Offer, now: datetime) -> DropStatus:
    assert drop.opens_at is not None and drop.closes_at is not None and drop.inventory is not None
    opened, closed = offers_service.live_window(session=session, workspace_id=workspace_id, key=drop.key)
    left = offers_service.units_left(session=session, workspace_id=workspace_id, key=drop.key)
    return DropStatus(
        key=drop.key, title=drop.title,
        state=offers_service.state_of(session=session, workspace_id=workspace_id, offer=drop, now=now),
        opens_at=min(drop.opens_at, opened) if opened else drop.opens_at, closes_at=drop.closes_at,
        closed_at=closed, inventory=drop.inventory, units_left=drop.inventory if left is None else left,
    )  # fmt: skip


def open_drop(*, session: Session, workspace_id: str, key: str, actor: str) -> DropChanged:
    """Make a signed-off drop live now, until its ``closes_at`` or until it is closed; opening a live drop
    changes nothing. A drop closed by hand is reopened. Refused (409) before sign-off, after its end, or
    when sold out."""
    drop = drop_of(session=session, workspace_id=workspace_id, key=key)
    now = utcnow()
    before = _status(session, workspace_id, drop, now)
    if before.state in ("live", "sold_out"):
        return DropChanged(**before.model_dump(), changed=False)
    assert drop.closes_at is not None
    if now >= drop.closes_at:
        raise DropNotLive(
            f"{key} ended at {drop.closes_at.isoformat()}: it cannot be opened again", code="drop_ended"
        )
    offers_service.set_live_window(
        session=session, workspace_id=workspace_id, key=key, opened_at=now, closed_at=None
    )
    after = _status(session, workspace_id, drop, now)
    if after.state == "draft":  # closed by hand before it was signed off: opening it would not make it live
        raise DropNotLive(f"{key} is not signed off: sign it off first (POST /v1/offers/{key}/signoff)",
                          code="not_signed_off")  # fmt: skip
    if after.state not in ("live", "sold_out"):  # the raise rolls the window back with the unit of work
        raise DropNotLive(f"{key} is sold out", code="sold_out")
    workspace_service.audit(session, workspace_id, actor=actor, action="drops.open", target_type="offer", target_id=key,
                            details={"from": before.state, "to": after.state})  # fmt: skip
    return DropChanged(**after.model_dump(), changed=True)


def close_drop(*, session: Session, workspace_id: str, key: str, actor: str) -> DropChanged:
    """Stop selling the drop now (its pending orders keep their held units until they expire or are paid);
    closing a closed drop changes nothing."""
    drop = drop_of(session=session, workspace_id=workspace_id, key=key)
    now = utcnow()
    before = _status(session, workspace_id, drop, now)
    if before.state == "closed":
        return DropChanged(**before.model_dump(), changed=False)
    opened, _ = offers_service.live_window(session=session, workspace_id=workspace_id, key=key)
    offers_service.set_live_window(
        session=session, workspace_id=workspace_id, key=key, opened_at=opened, closed_at=now
    )
    after = _status(session, workspace_id, drop, now)
    workspace_service.audit(session, workspace_id, actor=actor, action="drops.close", target_type="offer", target_id=key,
                            details={"from": before.state, "to": after.state})  # fmt: skip
    return DropChanged(**after.model_dump(), changed=True)


def public_status(status: DropStatus) -> dict[str, Any]:
    """What anyone may see of a drop (JSON-ready)."""
    return status.model_dump(mode="json")


# -- viewers ---------------------------------------------------------------------------------------------


def viewer_offer(
    *, session: Session, workspace_id: str, key: str, viewer: str, currency: str | None, holdout_share: float,
    log: list[Any],
) -> dict[str, Any]:  # fmt: skip
    """The drop as ``viewer`` is shown it: the variant the decision engine chose for their persona (a
    never-seen viewer: the persona prior), its price in ``currency`` (default: USD when offered, else the
    drop's first currency). The decision goes to ``log`` for ``offers_service.record_decisions``."""
    drop = drop_of(session=session, workspace_id=workspace_id, key=key)
    cur = (currency or "").upper() or ("USD" if "USD" in drop.prices else drop.currencies[0])
    if cur not in drop.prices:
        cur = "USD" if "USD" in drop.prices else drop.currencies[0]
    request = DecideRequest(anonymous_id=viewer, placement=PLACEMENT, k=1)
    return offers_service.present_offer(session=session, workspace_id=workspace_id, offer=drop, request=request,
                                        currency=cur, holdout_share=holdout_share, log=log)  # fmt: skip


@dataclass(frozen=True, slots=True)
class Go:
    """Where the short link sends a viewer: the provider's checkout, or the hosted order page."""

    order: OrderRead
    hosted: bool  # True: the manual provider (no provider page): the caller shows its own


def go(
    *, db: Any, workspace_id: str, key: str, viewer: str, decision_id: str | None, currency: str | None,
    provider: StripeProvider | None, tax_percent: str, success_url: str, cancel_url: str, holdout_share: float,
    before_hold: Callable[[], None] = lambda: None,
) -> Go:  # fmt: skip
    """Check ``viewer`` out of the live drop, identified by their anonymousId: a pending order in the variant
    ``decision_id`` presented them (the overlay's decision; none: decided now, as the overlay would), or the viewer's pending order of this drop if
    they already have one (a second click holds no second unit). Refused (409 ``not_live``) unless live.
    ``before_hold`` runs just before a new order would hold a unit (it raises to refuse one)."""
    with db.read() as session:
        drop = drop_of(session=session, workspace_id=workspace_id, key=key)
        state = offers_service.state_of(session=session, workspace_id=workspace_id, offer=drop)
        pending = _pending_order(session, workspace_id, key, viewer)
    if pending is not None:
        return Go(order=pending, hosted=pending.checkout_url is None)
    if state != "live":
        raise DropNotLive(f"{drop.title} is {state.replace('_', ' ')}: it cannot be bought now", code="not_live",
                          details={"state": state})  # fmt: skip
    cur = (currency or "").upper()
    cur = cur if cur in drop.prices else ("USD" if "USD" in drop.prices else drop.currencies[0])
    if drop.variants and decision_id is not None:  # a decision that did not present this drop is no decision
        with db.read() as session:
            presented = offers_service.variant_sold(session=session, workspace_id=workspace_id, offer=drop,
                                                    variant=None, decision_id=decision_id)  # fmt: skip
        decision_id = decision_id if presented is not None else None
    if decision_id is None and drop.variants:  # a link without the overlay's decision: decide as it would
        log: list[Any] = []
        with db.read() as session:
            decision_id = viewer_offer(session=session, workspace_id=workspace_id, key=key, viewer=viewer,
                                       currency=cur, holdout_share=holdout_share, log=log)["decision_id"]  # fmt: skip
        if log:
            with db.write() as session:
                offers_service.record_decisions(session=session, decisions=log)
    before_hold()
    order = checkout_service.checkout(
        db=db, workspace_id=workspace_id, offer_key=key, currency=cur,
        provider_name="stripe" if provider is not None else "manual", provider=provider, anonymous_id=viewer,
        decision_id=decision_id, tax_percent=tax_percent, success_url=success_url, cancel_url=cancel_url,
    )  # fmt: skip
    return Go(order=order, hosted=order.checkout_url is None)


def _pending_order(session: Session, workspace_id: str, key: str, viewer: str) -> OrderRead | None:
    try:
        buyer_id, _ = identity_service.find_buyer(
            session=session, workspace_id=workspace_id, anonymous_id=viewer
        )
    except BuyerNotFound:
        return None
    page = checkout_service.list_orders(session=session, workspace_id=workspace_id, limit=20, status="pending",
                                        buyer_id=buyer_id)  # fmt: skip
    return next((o for o in page.items if any(line.offer_key == key for line in o.lines)), None)


def order_page(*, session: Session, workspace_id: str, key: str, order_id: str) -> OrderRead:
    """A pending or paid order of this drop, for the hosted page (any other id: DropNotFound)."""
    drop_of(session=session, workspace_id=workspace_id, key=key)
    try:
        order = checkout_service.get_order(session=session, workspace_id=workspace_id, order_id=order_id[:64])
    except OrderNotFound:
        raise DropNotFound("no such order of this drop") from None
    if not any(line.offer_key == key for line in order.lines):
        raise DropNotFound("no such order of this drop")
    return order
