"""The offers domain: the catalog of a workspace, drop sign-off and stock, and persona-aware presentation.

The catalog is stored as the creator wrote it (YAML) and parsed once per process per version; each offer
also gets a row (sign-off, listing) and an action in the decision engine's catalog (``offer:<key>``), so
`GET /v1/offers` orders what a buyer may buy through the same learning policy as every other placement.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from offerloop.core.cache import VersionedCache
from offerloop.core.clock import utcnow
from offerloop.core.money import Money, currency_code
from offerloop.core.pages import decode_cursor, page_of
from offerloop.decisions import service as decisions_service
from offerloop.decisions.schemas import ActionIn, DecideRequest
from offerloop.models import Coupon as CouponRow
from offerloop.models import DropStock
from offerloop.models import Offer as OfferRow
from offerloop.offers import repository
from offerloop.offers.catalog import Catalog, Offer, drop_state, parse_catalog
from offerloop.offers.exceptions import OfferNotFound
from offerloop.offers.schemas import OfferPage, OfferRead
from offerloop.workspaces import service as workspace_service

ACTION_PREFIX = "offer:"
_catalogs: VersionedCache[Catalog] = VersionedCache(max_size=1024)  # per workspace, its current version


def _price_band(amount: int) -> str:
    return "free" if amount == 0 else "low" if amount < 2_000 else "mid" if amount < 10_000 else "premium"


def load_catalog(*, session: Session, workspace_id: str, text: str, actor: str = "api") -> dict[str, Any]:
    """Validate and store the catalog; offers missing from it are deactivated, never deleted (orders refer
    to them). Drops keep their sales and holds when their inventory changes."""
    catalog = parse_catalog(text, path="<catalog>")
    version = workspace_service.set_config(session=session, workspace_id=workspace_id, field="offers_catalog",
                                           value={"source": text})  # fmt: skip
    now = utcnow()
    rows = {r.key: r for r in repository.offers(session, workspace_id)}
    for offer in catalog.offers:
        row = rows.get(offer.key)
        if row is None:
            row = OfferRow(workspace_id=workspace_id, key=offer.key, created_at=now)
            repository.add(session, row)
        row.kind, row.title, row.definition, row.active, row.updated_at = (
            offer.kind, offer.title, offer.to_dict(), offer.active, now,
        )  # fmt: skip
        if offer.kind == "drop" and offer.inventory is not None:
            stock = repository.stock(session, workspace_id, offer.key)
            if stock is None:
                repository.add(session, DropStock(workspace_id=workspace_id, offer_key=offer.key, total=offer.inventory,
                                                  sold=0, held=0))  # fmt: skip
            else:
                stock.total = max(
                    offer.inventory, stock.sold + stock.held
                )  # never below what is already sold
    for key, row in rows.items():
        if catalog.offer(key) is None:
            row.active, row.updated_at = False, now
    existing = {c.code: c for c in repository.coupons(session, workspace_id)}
    for coupon in catalog.coupons:
        if coupon.code not in existing:
            repository.add(
                session, CouponRow(workspace_id=workspace_id, code=coupon.code, definition={}, redemptions=0)
            )
    repository.flush(session)
    decisions_service.upsert_actions(
        session=session, workspace_id=workspace_id, actions=[_action(o) for o in catalog.offers]
    )
    workspace_service.audit(session, workspace_id, actor=actor, action="offers.load", target_type="workspace",
                            target_id=workspace_id, details={"version": version, "offers": sorted(o.key for o in catalog.offers)})  # fmt: skip
    return {
        "version": version,
        "offers": sorted(o.key for o in catalog.offers),
        "coupons": sorted(c.code for c in catalog.coupons),
    }


def _action(offer: Offer) -> ActionIn:
    prices = [m.amount for m in offer.prices.values()]
    price = min(prices) if prices else 0
    return ActionIn(
        key=f"{ACTION_PREFIX}{offer.key}", kind="offer", title=offer.title[:300], tags=list(offer.tags)[:30],
        price_band=_price_band(price), price_minor=price, persona_fit=list(offer.persona_fit), format=offer.kind,
        placements=["offers"], active=offer.active,
        # An order of this offer (its "Order Completed" event names the action) rewards the decision.
        outcome={"event": "Order Completed", "match_property": "offer_action", "value_property": "total_minor",
                 "value_scale": 10_000, "window_days": 7},
    )  # fmt: skip


def catalog_for(*, session: Session, workspace_id: str) -> Catalog:
    ws = workspace_service.get_workspace(session=session, workspace_id=workspace_id)
    source = (ws.offers_catalog or {}).get("source")
    if not source:
        raise OfferNotFound("this workspace has no offers catalog yet: load one first", code="no_catalog")
    return _catalogs.get_or_load(
        workspace_id, ws.offers_catalog_version, lambda: parse_catalog(source, path="<catalog>")
    )


def get_offer(*, session: Session, workspace_id: str, key: str) -> Offer:
    offer = catalog_for(session=session, workspace_id=workspace_id).offer(key)
    if offer is None:
        raise OfferNotFound(f"offer {key!r} does not exist")
    return offer


def sign_off(*, session: Session, workspace_id: str, key: str, actor: str) -> dict[str, Any]:
    """The creator's approval a drop needs before it can go live."""
    offer = get_offer(session=session, workspace_id=workspace_id, key=key)
    row = repository.offer(session, workspace_id, key)
    assert row is not None
    row.signed_off_by, row.signed_off_at = actor, utcnow()
    workspace_service.audit(
        session, workspace_id, actor=actor, action="offers.signoff", target_type="offer", target_id=key
    )
    return {"key": key, "state": state_of(session=session, workspace_id=workspace_id, offer=offer)}


def state_of(*, session: Session, workspace_id: str, offer: Offer, now: datetime | None = None) -> str:
    """live / scheduled / draft / closed / sold_out for drops; active or inactive for the rest."""
    if offer.kind != "drop":
        return "active" if offer.active else "inactive"
    row = repository.offer(session, workspace_id, offer.key)
    stock = repository.stock(session, workspace_id, offer.key)
    state = str(
        drop_state(
            offer,
            now or utcnow(),
            signed_off=bool(row and row.signed_off_at),
            sold=stock.sold if stock else 0,
        )
    )
    if state == "live" and stock is not None and stock.sold + stock.held >= stock.total:
        return "sold_out"
    return state


def offers_page(
    *, session: Session, workspace_id: str, limit: int, cursor: str | None = None, kind: str | None = None
) -> OfferPage:
    """The catalog's offers by key (a catalog holds dozens: paged in memory), optionally of one kind."""
    after = decode_cursor(cursor, types=(str,))
    rows = sorted(
        (o for o in list_offers(session=session, workspace_id=workspace_id)
         if (kind is None or o["kind"] == kind) and (after is None or o["key"] > after[0])),
        key=lambda o: o["key"],
    )  # fmt: skip
    return OfferPage(**dict(page_of(rows, limit, key=lambda o: (o["key"],), item=OfferRead.model_validate)))


def list_offers(*, session: Session, workspace_id: str) -> list[dict[str, Any]]:
    catalog = catalog_for(session=session, workspace_id=workspace_id)
    out = []
    for offer in catalog.offers:
        stock = repository.stock(session, workspace_id, offer.key) if offer.kind == "drop" else None
        out.append({**offer.to_dict(), "state": state_of(session=session, workspace_id=workspace_id, offer=offer),
                    "stock": None if stock is None else {"total": stock.total, "sold": stock.sold, "held": stock.held}})  # fmt: skip
    return out


def _may_buy(
    session: Session,
    workspace_id: str,
    offer: Offer,
    buyer_id: str | None,
    owned: dict[str, int],
    now: datetime,
) -> bool:
    if not offer.active:
        return False
    if offer.kind == "drop":
        if state_of(session=session, workspace_id=workspace_id, offer=offer, now=now) != "live":
            return False
        if offer.per_buyer_limit is not None and owned.get(offer.key, 0) >= offer.per_buyer_limit:
            return False
        # exclusive drops: only members of one of the named tiers
        return not offer.exclusive_to or any(owned.get(t, 0) for t in offer.exclusive_to)
    # one-time products, bundles and plans the buyer already has are not offered again
    return not (offer.kind in ("product", "bundle", "subscription", "tier") and owned.get(offer.key, 0))


def upsells_for(
    *, session: Session, workspace_id: str, buyer_id: str, offer_keys: list[str], currency: str,
    now: datetime | None = None,
) -> list[dict[str, Any]]:  # fmt: skip
    """The catalog's upsells of ``offer_keys`` (what was just bought) that this buyer may buy now in
    ``currency``: each once, in catalog order, offers the buyer already has left out."""
    catalog = catalog_for(session=session, workspace_id=workspace_id)
    now = now or utcnow()
    owned = repository.owned_counts(session, workspace_id, buyer_id)
    keys = dict.fromkeys(k for key in offer_keys if (o := catalog.offer(key)) is not None for k in o.upsells)
    out = []
    for key in keys:
        offer = catalog.offer(key)
        price = offer.price(currency) if offer is not None else None
        if offer is None or price is None or key in offer_keys:
            continue
        if not _may_buy(session, workspace_id, offer, buyer_id, owned, now):
            continue
        out.append({"key": offer.key, "kind": offer.kind, "title": offer.title, "description": offer.description,
                    "price": price.amount, "currency": price.currency, "formatted": price.format(),
                    "interval": offer.interval, "trial_days": offer.trial_days or None})  # fmt: skip
    return out


def present(
    *, session: Session, workspace_id: str, request: DecideRequest, currency: str, holdout_share: float,
    log: list[Any] | None = None,
) -> dict[str, Any]:  # fmt: skip
    """The offers this buyer may buy, ordered (and the variant chosen) by the decision engine. The decision
    is logged in the caller's transaction, or, with ``log``, appended there for ``record_decisions`` (so
    presenting needs only reads)."""
    catalog = catalog_for(session=session, workspace_id=workspace_id)
    now = utcnow()
    buyer_id = decisions_service.resolve_buyer(session=session, workspace_id=workspace_id, request=request)
    owned = repository.owned_counts(session, workspace_id, buyer_id) if buyer_id else {}
    currency = currency_code(currency)  # an unknown code is a 422 naming it, not an empty list
    buyable = [o for o in catalog.offers
               if o.price(currency) is not None and _may_buy(session, workspace_id, o, buyer_id, owned, now)]  # fmt: skip
    if not buyable:
        return {"decision_id": None, "offers": [], "persona": None, "holdout": False, "currency": currency}
    decided = decisions_service.decide_for(
        session=session, workspace_id=workspace_id, holdout_share=holdout_share, log=log,
        request=request.model_copy(update={"candidates": [f"{ACTION_PREFIX}{o.key}" for o in buyable],
                                           "k": min(request.k, len(buyable))}),
    )  # fmt: skip
    offers = []
    for item in decided.items:
        offer = catalog.offer(item.id.removeprefix(ACTION_PREFIX))
        assert offer is not None
        price = offer.price(currency) or Money.zero(currency)
        offers.append({
            "key": offer.key, "kind": offer.kind, "title": offer.title, "description": offer.description,
            "price": price.amount, "currency": currency, "formatted": price.format(), "interval": offer.interval,
            "trial_days": offer.trial_days or None, "order_bumps": list(offer.order_bumps),
            "score": item.score, "propensity": item.propensity, "reasons": item.reasons,
        })  # fmt: skip
    return {"decision_id": decided.decision_id, "offers": offers, "currency": currency,
            "persona": decided.persona.model_dump() if decided.persona else None, "holdout": decided.holdout,
            "model_version": decided.model_version}  # fmt: skip


def record_decisions(*, session: Session, decisions: list[Any]) -> None:
    """Write the decisions ``present(log=...)`` made (a short write after the read)."""
    decisions_service.record(session=session, decisions=decisions)
