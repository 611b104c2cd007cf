"""The offers domain: the catalog of a workspace, drop sign-off and stock, and persona-aware presentation.

The catalog is stored as the creator wrote it (YAML) and parsed once per process per version; each offer
also gets a row (sign-off, listing) and an action in the decision engine's catalog (``offer:<key>``, or one
``offer:<key>:<variant>`` per variant), so `GET /v1/offers` orders what a buyer may buy, and picks the variant
each offer is shown in, through the same learning policy as every other placement.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from functools import partial
from typing import Any

from sqlalchemy.orm import Session

from offerloop.core.cache import VersionedCache
from offerloop.core.clock import utcnow
from offerloop.core.money import Money, currency_code
from offerloop.core.pages import decode_cursor, page_of
from offerloop.db.uow import after_commit
from offerloop.decisions import service as decisions_service
from offerloop.decisions.exceptions import DecisionNotFound
from offerloop.decisions.schemas import ActionIn, DecideRequest
from offerloop.delivery import live
from offerloop.experiments import service as experiments_service
from offerloop.experiments.schemas import Arm
from offerloop.identity import service as identity_service
from offerloop.models import Coupon as CouponRow
from offerloop.models import DropStock
from offerloop.models import Offer as OfferRow
from offerloop.offers import repository
from offerloop.offers.catalog import Catalog, Offer, Variant, drop_state, parse_catalog
from offerloop.offers.exceptions import OfferNotFound, PricingError
from offerloop.offers.schemas import OfferPage, OfferRead
from offerloop.workspaces import service as workspace_service

ACTION_PREFIX = "offer:"
LIVE_WINDOW = "live_window"  # in an offer row's definition: the creator's open/close of a drop (ISO 8601 UTC)
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
        definition = offer.to_dict()
        if row.definition and LIVE_WINDOW in row.definition:  # a creator's open/close outlives a catalog edit
            definition[LIVE_WINDOW] = row.definition[LIVE_WINDOW]
        row.kind, row.title, row.definition, row.active, row.updated_at = (
            offer.kind, offer.title, definition, offer.active, now,
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
    actions = [a for o in catalog.offers for a in _actions(o)]
    decisions_service.upsert_actions(
        session=session,
        workspace_id=workspace_id,
        actions=[*actions, *_retired(session, workspace_id, catalog, actions)],
    )
    workspace_service.audit(session, workspace_id, actor=actor, action="offers.load", target_type="workspace",
                            target_id=workspace_id, details={"version": version, "offers": sorted(o.key for o in catalog.offers)})  # fmt: skip
    return {
        "version": version,
        "offers": sorted(o.key for o in catalog.offers),
        "coupons": sorted(c.code for c in catalog.coupons),
    }


def action_key(offer_key: str, variant: str | None = None) -> str:
    """The decision engine's action for an offer (``offer:<key>``) or one of its variants (``offer:<key>:<v>``)."""
    return f"{ACTION_PREFIX}{offer_key}" if variant is None else f"{ACTION_PREFIX}{offer_key}:{variant}"


def action_keys(offer: Offer) -> list[str]:
    """The actions a buyer may be shown ``offer`` as: one per variant, or the offer itself."""
    return [action_key(offer.key, v.key) for v in offer.variants] or [action_key(offer.key)]


def from_action(catalog: Catalog, key: str) -> tuple[Offer, Variant | None] | None:
    """The offer (and variant) an ``offer:`` action stands for in ``catalog``; None when it names neither."""
    offer_key, _, variant_key = key.removeprefix(ACTION_PREFIX).partition(":")
    offer = catalog.offer(offer_key)
    if offer is None:
        return None
    variant = offer.variant(variant_key) if variant_key else None
    return None if (variant is None) != (not offer.variants) else (offer, variant)


def _actions(offer: Offer) -> list[ActionIn]:
    if not offer.variants:
        return [_action(offer)]
    return [_action(offer, variant) for variant in offer.variants]


def _retired(
    session: Session, workspace_id: str, catalog: Catalog, current: list[ActionIn]
) -> list[ActionIn]:
    """The actions of this catalog's offers that no longer stand for a way to show them: the offer's own
    action once it has variants, a variant's once it is gone. They stay (decisions name them), inactive."""
    keys = {a.key for a in current}
    prefixes = tuple(action_key(o.key) for o in catalog.offers)
    return [
        ActionIn.model_validate({**a.model_dump(include=set(ActionIn.model_fields)), "active": False})
        for a in decisions_service.list_actions(session=session, workspace_id=workspace_id)
        if a.active
        and a.key not in keys
        and (a.key in prefixes or a.key.startswith(tuple(f"{p}:" for p in prefixes)))
    ]


def _action(offer: Offer, variant: Variant | None = None) -> ActionIn:
    prices = [
        m.amount
        for m in (variant.prices if variant is not None and variant.prices else offer.prices).values()
    ]
    price = min(prices) if prices else 0
    tags = list(offer.tags)[:29] + ([f"variant:{variant.key}"] if variant is not None else [])
    title = (variant.title if variant is not None and variant.title else offer.title)[:300]
    return ActionIn(
        key=action_key(offer.key, variant.key if variant is not None else None), kind="offer", title=title,
        tags=tags if variant is not None else list(offer.tags)[:30],
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
    window = _window(row.definition if row else None)
    state = str(
        drop_state(
            offer,
            now or utcnow(),
            signed_off=bool(row and row.signed_off_at),
            sold=stock.sold if stock else 0,
            opened_at=window[0],
            closed_at=window[1],
        )
    )
    if state == "live" and stock is not None and stock.sold + stock.held >= stock.total:
        return "sold_out"
    return state


def _window(definition: dict[str, Any] | None) -> tuple[datetime | None, datetime | None]:
    found = (definition or {}).get(LIVE_WINDOW) or {}
    return tuple(  # type: ignore[return-value]
        datetime.fromisoformat(found[k]) if found.get(k) else None for k in ("opened_at", "closed_at")
    )


def live_window(*, session: Session, workspace_id: str, key: str) -> tuple[datetime | None, datetime | None]:
    """When the creator opened (and closed) drop ``key`` by hand, overriding its schedule (None: never)."""
    row = repository.offer(session, workspace_id, key)
    return _window(row.definition if row else None)


def set_live_window(
    *, session: Session, workspace_id: str, key: str, opened_at: datetime | None, closed_at: datetime | None
) -> None:
    """Record the creator's open/close of drop ``key``; its streams are woken once this commits."""
    row = repository.offer(session, workspace_id, key, lock=True)
    if row is None:
        raise OfferNotFound(f"offer {key!r} does not exist")
    window = {"opened_at": opened_at.isoformat() if opened_at else None,
              "closed_at": closed_at.isoformat() if closed_at else None}  # fmt: skip
    row.definition = {**row.definition, LIVE_WINDOW: window}  # a new dict: the JSON column sees the change
    row.updated_at = utcnow()
    stock_changed(session=session, workspace_id=workspace_id, offer_key=key)


def drop_topic(workspace_id: str, offer_key: str) -> tuple[str, str, str]:
    """The wake-up topic (``delivery.live``) of a drop's live streams."""
    return ("drop", workspace_id, offer_key)


def stock_changed(*, session: Session, workspace_id: str, offer_key: str) -> None:
    """A drop's state or units changed in this unit of work: wake its live streams once it commits."""
    after_commit(session, partial(live.notify, drop_topic(workspace_id, offer_key)))


def units_left(*, session: Session, workspace_id: str, key: str) -> int | None:
    """A drop's units neither sold nor held (None: not a drop with stock)."""
    stock = repository.stock(session, workspace_id, key)
    return None if stock is None else max(0, stock.total - stock.sold - stock.held)


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
    # the order's buyer may have merged into another since: what the survivor owns
    mine = identity_service.survivor_lineage(session=session, workspace_id=workspace_id, buyer_id=buyer_id)
    owned = repository.owned_counts(session, workspace_id, mine)
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
    """The offers this buyer may buy, ordered (and the variant of each chosen) by the decision engine. The
    decision is logged in the caller's transaction, or, with ``log``, appended there for ``record_decisions``
    (so presenting needs only reads)."""
    catalog = catalog_for(session=session, workspace_id=workspace_id)
    now = utcnow()
    buyer_id = decisions_service.resolve_buyer(session=session, workspace_id=workspace_id, request=request)
    owned: dict[str, int] = {}
    if buyer_id:  # what the buyers merged into this one bought is this buyer's
        mine = identity_service.lineage(session=session, workspace_id=workspace_id, buyer_id=buyer_id)
        owned = repository.owned_counts(session, workspace_id, mine)
    currency = currency_code(currency)  # an unknown code is a 422 naming it, not an empty list
    buyable = [o for o in catalog.offers
               if o.price(currency) is not None and _may_buy(session, workspace_id, o, buyer_id, owned, now)]  # fmt: skip
    if not buyable:
        return {"decision_id": None, "offers": [], "persona": None, "holdout": False, "currency": currency}
    pins = _pins(session, workspace_id, buyable, buyer_id, now)
    decided, shown = _decide(session, workspace_id, catalog, buyable, request, holdout_share, log, pins, now)
    offers = []
    for item, offer, variant in shown:
        pin = pins.get(offer.key)
        offers.append({
            **_shown(offer, variant, currency), "kind": offer.kind, "interval": offer.interval,
            "trial_days": offer.trial_days or None, "order_bumps": list(offer.order_bumps),
            "score": item.score, "propensity": item.propensity, "reasons": item.reasons,
            "experiment": {"key": pin.experiment, "arm": pin.arm} if pin is not None else None,
        })  # fmt: skip
    return {"decision_id": decided.decision_id, "offers": offers, "currency": currency,
            "persona": decided.persona.model_dump() if decided.persona else None, "holdout": decided.holdout,
            "model_version": decided.model_version}  # fmt: skip


def present_offer(
    *, session: Session, workspace_id: str, offer: Offer, request: DecideRequest, currency: str,
    holdout_share: float, log: list[Any] | None = None,
) -> dict[str, Any]:  # fmt: skip
    """One offer as this buyer is shown it (a live drop's overlay): its variant chosen by the decision engine
    and logged with its propensity as :func:`present` does (a never-seen buyer is decided on the persona
    prior). With no eligible action (rules exclude every variant) the first variant is shown, undecided."""
    currency = currency_code(currency)
    now = utcnow()
    buyer_id = decisions_service.resolve_buyer(session=session, workspace_id=workspace_id, request=request)
    pins = _pins(session, workspace_id, [offer], buyer_id, now)
    decided, shown = _decide(session, workspace_id, catalog_for(session=session, workspace_id=workspace_id),
                             [offer], request.model_copy(update={"k": 1}), holdout_share, log, pins, now)  # fmt: skip
    variant = shown[0][2] if shown else (offer.variants[0] if offer.variants else None)
    return {**_shown(offer, variant, currency), "decision_id": decided.decision_id if shown else None,
            "action": action_key(offer.key, variant.key if variant else None),
            "persona": decided.persona.name if decided.persona else None}  # fmt: skip


def _pins(
    session: Session, workspace_id: str, offers: Iterable[Offer], buyer_id: str | None, now: datetime
) -> dict[str, Arm]:
    """Per offer with variants and an experiment on it (subject ``offer`` or ``variant``, ``subject_id`` the
    offer's key) whose arm's value names one of its variants: the buyer's arm, which pins the variant shown.
    An arm without a value (or naming no variant of the offer), and a buyer not in the experiment (paused
    before they were exposed, stopped), leave the choice to the decision engine."""
    with_variants = {o.key: o for o in offers if o.variants}
    if buyer_id is None or not with_variants:
        return {}
    arms = experiments_service.pinned(session=session, workspace_id=workspace_id, subject_ids=list(with_variants),
                                      buyer_id=buyer_id, now=now)  # fmt: skip
    return {
        k: a for k, a in arms.items() if a.value is not None and with_variants[k].variant(a.value) is not None
    }


def _decide(
    session: Session, workspace_id: str, catalog: Catalog, offers: Iterable[Offer], request: DecideRequest,
    holdout_share: float, log: list[Any] | None, pins: dict[str, Arm], now: datetime,
) -> tuple[Any, list[tuple[Any, Offer, Variant | None]]]:  # fmt: skip
    """One decision over the ways to show ``offers`` (each variant is an action; an offer pinned by an
    experiment, its arm's variant only), keeping for each offer the first-ranked of its variants, up to
    ``request.k`` offers. The logged decision lists what was shown, and logs the first exposure of a buyer
    to the experiment of each pinned offer shown."""
    candidates = [
        key
        for offer in offers
        for key in (
            [action_key(offer.key, pins[offer.key].value)] if offer.key in pins else action_keys(offer)
        )
    ]
    mine: list[dict[str, Any]] = []
    decided = decisions_service.decide_for(
        session=session, workspace_id=workspace_id, holdout_share=holdout_share, log=mine,
        # every variant is ranked, so each offer's best variant is known; the log keeps only those shown
        request=request.model_copy(update={"candidates": candidates, "k": len(candidates)}),
    )  # fmt: skip
    shown: list[tuple[Any, Offer, Variant | None]] = []
    for item in decided.items:
        found = from_action(catalog, item.id)
        assert found is not None  # the candidates come from this catalog
        if all(found[0].key != o.key for _, o, _ in shown):
            shown.append((item, *found))
    shown = shown[: request.k]
    exposures = [(pin.experiment, row["buyer_id"], pin.arm, now) for row in mine for _, o, _ in shown
                 if (pin := pins.get(o.key)) is not None and pin.expose]  # fmt: skip
    for row in mine:
        row["items"] = [item.model_dump() for item, _, _ in shown]
        if exposures:
            row[decisions_service.EXPOSURES] = [*row.get(decisions_service.EXPOSURES, []), *exposures]
    if log is None:
        decisions_service.record(session=session, decisions=mine)
    else:
        log.extend(mine)
    return decided, shown


def _shown(offer: Offer, variant: Variant | None, currency: str) -> dict[str, Any]:
    """How ``offer`` reads in ``variant``: its copy and price, and the variant itself (None: no variants)."""
    price = offer.price_of_variant(variant, currency) or Money.zero(currency)
    title = variant.title if variant is not None and variant.title else offer.title
    description = variant.description if variant is not None and variant.description else offer.description
    return {
        "key": offer.key, "title": title, "description": description, "price": price.amount, "currency": currency,
        "formatted": price.format(),
        "variant": None if variant is None else {"key": variant.key, "title": title, "description": description,
                                                 "price": price.amount, "formatted": price.format(),
                                                 "bundle": [c.to_dict() for c in variant.bundle]},
    }  # fmt: skip


def variant_sold(
    *, session: Session, workspace_id: str, offer: Offer, variant: str | None, decision_id: str | None
) -> str | None:
    """The variant a checkout of ``offer`` sells: the one named, else the one ``decision_id`` presented (None:
    the offer as itself). A variant other than the one the decision presented is refused (``variant_not_presented``:
    the decision's reward and propensity are about what it showed); an unknown one is refused by pricing."""
    if not offer.variants or decision_id is None:
        return variant
    try:
        decision = decisions_service.get_decision(
            session=session, workspace_id=workspace_id, decision_id=decision_id
        )
    except DecisionNotFound:
        return variant  # a decision from elsewhere (or none logged): the checkout is priced as named
    prefix = action_key(offer.key) + ":"
    shown = [
        str(i["id"]).removeprefix(prefix) for i in decision.items if str(i.get("id", "")).startswith(prefix)
    ]
    if variant is None:
        return shown[0] if shown else None
    if shown and variant not in shown:
        raise PricingError(f"decision {decision_id} presented {offer.key!r} as {shown[0]!r}, not {variant[:40]!r}",
                           code="variant_not_presented")  # fmt: skip
    return variant


def record_decisions(*, session: Session, decisions: list[Any]) -> None:
    """Write the decisions ``present(log=...)`` made (a short write after the read)."""
    decisions_service.record(session=session, decisions=decisions)


def sign_offs(*, session: Session, workspace_id: str) -> dict[str, tuple[str | None, datetime | None]]:
    """Who signed off each offer of the workspace and when ((None, None): not signed off), by key."""
    return {r.key: (r.signed_off_by, r.signed_off_at) for r in repository.offers(session, workspace_id)}
