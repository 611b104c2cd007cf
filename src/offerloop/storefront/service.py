"""The hosted pages' work: no business logic of their own. An offer is shown as the decision engine picks it
for the visitor (``offers.service.present_offer``, logged with its propensity like ``/v1/offers``); a buy
form becomes an order through ``checkout.service.checkout``; a thank-you page reads the order
(``checkout.service.get_order``) and its deliverable (``assembly.service``: the instant preview, then a
signed download link once the file is ready).

What the pages keep themselves is one row per buy form submitted (``storefront_checkouts``): the form's
idempotency key makes a double submit one order, and the thank-you page's token is derived from it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import re
import secrets
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.exc import IntegrityError
from sqlalchemy.orm import Session

from offerloop import pipeline
from offerloop.assembly import service as assembly_service
from offerloop.checkout import service as checkout_service
from offerloop.checkout.schemas import OrderDetail
from offerloop.checkout.stripe_provider import StripeProvider
from offerloop.core.clock import utcnow
from offerloop.core.errors import OfferloopError
from offerloop.core.identifiers import normalize_email
from offerloop.db.uow import Database
from offerloop.decisions import service as decisions_service
from offerloop.decisions.schemas import DecideRequest
from offerloop.delivery import service as delivery_service
from offerloop.identity import service as identity_service
from offerloop.identity.exceptions import BuyerNotFound
from offerloop.models import StorefrontCheckout
from offerloop.offers import service as offers_service
from offerloop.offers.catalog import Offer
from offerloop.storefront import repository
from offerloop.storefront.exceptions import BadForm, PageNotFound
from offerloop.workspaces import service as workspace_service

PLACEMENT = "offers"  # an offer page shows an offer: the offers placement's policy chooses its variant
_WORKSPACE = re.compile(r"[A-Za-z0-9_-]{1,64}")
_OFFER = re.compile(r"[a-z0-9][a-z0-9-]{0,63}")  # the catalog's offer keys (offers.schema)
VISITOR = re.compile(r"v_[A-Za-z0-9_-]{22,64}")
IDEMPOTENCY = re.compile(r"[A-Za-z0-9_-]{22,64}")
TOKEN = re.compile(r"[A-Za-z0-9_-]{43}")
_CURRENCY = re.compile(r"[A-Za-z]{3}")
MAX_EMAIL = 320
FORMATS = ("pdf", "html")  # what the thank-you page links to, once the deliverable is ready


@dataclass(frozen=True, slots=True)
class Visitor:
    """Who is looking: a first-party cookie's anonymous id, and a known buyer's user id when a signed link
    (a delivery inbox token) named them."""

    anonymous_id: str
    user_id: str | None = None

    def decide_request(self) -> DecideRequest:
        if self.user_id:
            return DecideRequest(user_id=self.user_id, placement=PLACEMENT, k=1)
        return DecideRequest(anonymous_id=self.anonymous_id, placement=PLACEMENT, k=1)


def new_visitor_id() -> str:
    return "v_" + secrets.token_urlsafe(18)


def new_form_key() -> str:
    """A buy form's idempotency key (one per page shown)."""
    return secrets.token_urlsafe(24)


def _mac(secret: str, purpose: str, *parts: str) -> str:
    message = "\x1f".join((purpose, *parts)).encode()
    digest = hmac.new(secret.encode(), message, hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


def secret_of(session: Session, configured: str) -> str:
    return workspace_service.signing_secret(session=session, configured=configured)


def decision_seal(secret: str, workspace_id: str, key: str, visitor: Visitor, decision_id: str) -> str:
    """What ties a decision to the visitor it was made for (a form can not carry another's cheaper pick)."""
    return _mac(secret, "storefront-decision", workspace_id, key, visitor.anonymous_id, decision_id)[:32]


def thanks_token(secret: str, workspace_id: str, csrf: str, form_key: str) -> str:
    """The thank-you page's token: unguessable (an HMAC of the form's key and the visitor's CSRF cookie), and
    the same for a second submit of the same form, so both land on one page."""
    return _mac(secret, "storefront-thanks", workspace_id, csrf, form_key)


def _row_id(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


# -- reading what a page shows --------------------------------------------------------------------------


def offer_of(*, session: Session, workspace_id: str, key: str) -> Offer:
    """The active offer ``key`` of the workspace; PageNotFound for an unknown workspace, catalog or offer, and
    for one no longer for sale (the public pages do not tell these apart)."""
    if not _WORKSPACE.fullmatch(workspace_id) or not _OFFER.fullmatch(key):
        raise PageNotFound("there is no such page")
    try:
        workspace_service.get_workspace(session=session, workspace_id=workspace_id)
        offer = offers_service.get_offer(session=session, workspace_id=workspace_id, key=key)
    except OfferloopError:
        raise PageNotFound("there is no such page") from None
    if not offer.active or not offer.prices:
        raise PageNotFound("this offer is not for sale")
    return offer


def currency_for(offer: Offer, asked: str | None) -> str:
    """The asked currency when the offer has a price in it, else USD when offered, else its first."""
    code = (asked or "").upper()
    if _CURRENCY.fullmatch(code) and code in offer.prices:
        return code
    return "USD" if "USD" in offer.prices else offer.currencies[0]


def known_visitor(
    *, session: Session, workspace_id: str, anonymous_id: str, secret: str, token: str | None
) -> Visitor:
    """The visitor, as the buyer a signed link names when it carries a valid inbox token of this workspace
    (from delivery); an invalid, expired or foreign token is ignored (the visitor stays anonymous)."""
    if not token or len(token) > 4096:
        return Visitor(anonymous_id)
    try:
        owner_ws, buyer_id = delivery_service.inbox_owner(secret, token)
        if owner_ws != workspace_id:
            return Visitor(anonymous_id)
        buyer = identity_service.contact(session=session, workspace_id=workspace_id, buyer_id=buyer_id)
    except OfferloopError:
        return Visitor(anonymous_id)
    if buyer.deleted:
        return Visitor(anonymous_id)
    if buyer.user_id:
        return Visitor(anonymous_id, user_id=buyer.user_id)
    anon = next((i.value for i in buyer.identities if i.kind == "anonymous_id"), None)
    return Visitor(anon or anonymous_id)


@dataclass(frozen=True, slots=True)
class Shown:
    """An offer as one visitor is shown it."""

    key: str
    kind: str
    title: str
    description: str | None
    formatted: str
    currency: str
    variant: str | None
    decision_id: str | None
    buyable: bool
    state: str
    interval: str | None


def _kept(session: Session, workspace_id: str, offer: Offer, visitor: Visitor, secret: str, kept: str | None,
          currency: str, state: str) -> Shown | None:  # fmt: skip
    """The offer as the visitor's earlier decision showed it (``kept``: that decision's id and seal, from their
    cookie), while the decision's outcome window lasts: a visitor sees one variant, and one decision is
    rewarded for it. None when there is no such decision for this visitor and offer (then: decide anew)."""
    decision_id, _, seal = (kept or "").partition(".")
    if (
        not decision_id
        or len(decision_id) > 40
        or not hmac.compare_digest(
            seal.encode(), decision_seal(secret, workspace_id, offer.key, visitor, decision_id).encode()
        )
    ):
        return None
    try:
        decision = decisions_service.get_decision(
            session=session, workspace_id=workspace_id, decision_id=decision_id
        )
    except OfferloopError:
        return None
    if decision.window_ends_at is not None and decision.window_ends_at <= utcnow():
        return None
    catalog = offers_service.catalog_for(session=session, workspace_id=workspace_id)
    mine = offers_service.action_key(offer.key)
    shown = [str(i.get("id", "")) for i in decision.items]
    found = next((f for a in shown if (a == mine or a.startswith(mine + ":"))
                  and (f := offers_service.from_action(catalog, a)) is not None), None)  # fmt: skip
    if found is None:
        return None
    variant = found[1]
    price = offer.price_of_variant(variant, currency)
    if price is None:
        return None
    return Shown(
        key=offer.key, kind=offer.kind, title=(variant.title if variant and variant.title else offer.title),
        description=(variant.description if variant and variant.description else offer.description),
        formatted=price.format(), currency=currency, variant=variant.key if variant else None,
        decision_id=decision_id, buyable=state in ("active", "live"), state=state, interval=offer.interval,
    )  # fmt: skip


def present(*, db: Database, workspace_id: str, key: str, visitor: Visitor, currency: str | None,
            holdout_share: float, secret: str = "", kept: str | None = None, shown: bool = True) -> Shown:  # fmt: skip
    """How the visitor is shown the offer and what they can do with it: as their earlier decision showed it
    (``kept``, see ``_kept``), else decided now (logged with its propensity, in a short write after the read,
    as ``/v1/offers`` does). ``shown=False`` (a HEAD: nobody sees the page) logs nothing and answers no
    decision: an impression nobody saw would teach the policy that the offer was ignored."""
    with db.read() as session:
        offer = offer_of(
            session=session, workspace_id=workspace_id, key=key
        )  # a 404 before any pipeline work
        if kept:
            state = offers_service.state_of(session=session, workspace_id=workspace_id, offer=offer)
            again = _kept(
                session, workspace_id, offer, visitor, secret, kept, currency_for(offer, currency), state
            )
            if again is not None:
                return again
    pending: list[Any] = []
    with pipeline.fresh_read(db, workspace_id=workspace_id) as session:
        offer = offer_of(session=session, workspace_id=workspace_id, key=key)
        cur = currency_for(offer, currency)
        picked = offers_service.present_offer(
            session=session, workspace_id=workspace_id, offer=offer, request=visitor.decide_request(),
            currency=cur, holdout_share=holdout_share, log=pending,
        )  # fmt: skip
        state = offers_service.state_of(session=session, workspace_id=workspace_id, offer=offer)
    if pending and shown:
        with db.write() as session:
            offers_service.record_decisions(session=session, decisions=pending)
    variant = picked.get("variant")
    return Shown(
        key=offer.key, kind=offer.kind, title=picked["title"], description=picked["description"],
        formatted=picked["formatted"], currency=cur, variant=variant["key"] if variant else None,
        decision_id=picked["decision_id"] if shown else None, buyable=state in ("active", "live"), state=state,
        interval=offer.interval,
    )  # fmt: skip


# -- buying ----------------------------------------------------------------------------------------------


def clean_email(value: str, *, required: bool) -> str | None:
    text = value.strip()
    if not text:
        if required:
            raise BadForm("enter your e-mail address", details={"field": "email"})
        return None
    email = normalize_email(text) if len(text) <= MAX_EMAIL else None
    if email is None:
        raise BadForm("that is not an e-mail address", details={"field": "email"})
    return email


@dataclass(frozen=True, slots=True)
class BuyForm:
    """A validated buy form."""

    workspace_id: str
    key: str
    visitor: Visitor
    email: str | None
    currency: str | None
    decision_id: str | None
    seal: str
    csrf: str
    form_key: str


@dataclass(frozen=True, slots=True)
class Bought:
    """Where the buyer goes next: the provider's checkout page, or the thank-you page."""

    token: str
    redirect: str | None = None  # the provider's page; None: the thank-you page


def _someone_else(session: Session, workspace_id: str, visitor: Visitor, email: str | None) -> bool:
    """Whether the e-mail belongs to a buyer this visitor is not (known by other identifiers only)."""
    if email is None or visitor.user_id:
        return False
    try:
        owner = identity_service.lookup(session=session, workspace_id=workspace_id, email=email)
    except (BuyerNotFound, OfferloopError):
        return False
    return not any(i.kind == "anonymous_id" and i.value == visitor.anonymous_id for i in owner.identities)


def buy(
    *, db: Database, form: BuyForm, secret_configured: str, provider: StripeProvider | None, tax_percent: str,
    public_url: str, holdout_share: float,
) -> Bought:  # fmt: skip
    """The buy form's checkout: once per form (a second submit finds the first's order), through the checkout
    service (Stripe's hosted page when the workspace uses Stripe, else the manual provider's pending order)."""
    ws, key = form.workspace_id, form.key
    with db.read() as session:
        secret = secret_of(session, secret_configured)
        offer = offer_of(session=session, workspace_id=ws, key=key)
        shows = not _someone_else(session, ws, form.visitor, form.email)
    token = thanks_token(secret, ws, form.csrf, form.form_key)
    row_id = _row_id(token)
    try:
        with db.write() as session:
            repository.add(session, StorefrontCheckout(id=row_id, workspace_id=ws, offer_key=key, order_id=None,
                                                       shows_deliverable=shows, created_at=utcnow()))  # fmt: skip
    except IntegrityError:
        return _again(db, ws, token)
    try:
        decision_id = form.decision_id
        if decision_id and not hmac.compare_digest(
            form.seal.encode(), decision_seal(secret, ws, key, form.visitor, decision_id).encode()
        ):
            decision_id = None
        if decision_id is None and offer.variants:  # no decision of this visitor's: decide as the page would
            decision_id = present(db=db, workspace_id=ws, key=key, visitor=form.visitor, currency=form.currency,
                                  holdout_share=holdout_share).decision_id  # fmt: skip
        base = public_url.rstrip("/")
        order = checkout_service.checkout(
            db=db, workspace_id=ws, offer_key=key, currency=currency_for(offer, form.currency),
            provider_name="stripe" if provider is not None else "manual", provider=provider,
            user_id=form.visitor.user_id, anonymous_id=form.visitor.anonymous_id, email=form.email,
            decision_id=decision_id, tax_percent=tax_percent,
            success_url=f"{base}/o/{ws}/thanks/{token}", cancel_url=f"{base}/o/{ws}/{key}",
        )  # fmt: skip
    except BaseException:
        with db.write() as session:  # the form can be sent again (the claim holds no order)
            repository.remove(session, ws, row_id)
        raise
    with db.write() as session:
        repository.set_order(session, ws, row_id, order.id)
    return Bought(token=token, redirect=order.checkout_url if order.status == "pending" else None)


def _again(db: Database, workspace_id: str, token: str) -> Bought:
    """A second submit of a form: the first's provider page while its order waits for payment there, else
    its thank-you page (which says "processing" while the first submit is still being handled)."""
    with db.read() as session:
        row = repository.checkout(session, workspace_id, _row_id(token))
        if row is None or row.order_id is None:
            return Bought(token=token)
        order = checkout_service.read_order(session=session, workspace_id=workspace_id, order_id=row.order_id)
    return Bought(token=token, redirect=order.checkout_url if order.status == "pending" else None)


# -- the thank-you page ----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Thanks:
    """What a thank-you page shows: the order's state, the deliverable's preview and, once ready, its links."""

    token: str
    title: str
    status: str  # processing | pending | paid | partially_refunded | refunded | canceled | unpaid
    provider: str | None
    total: str | None
    order_id: str | None
    deliverable: str  # none | hidden | waiting | preview | review | ready | failed
    preview_html: str | None = None
    links: dict[str, str] = field(default_factory=dict)
    expires: int | None = None

    @property
    def done(self) -> bool:
        """Nothing left to wait for: the polling stops."""
        if self.status in ("canceled", "refunded", "unpaid"):
            return True
        return self.status in ("paid", "partially_refunded") and self.deliverable in ("none", "hidden", "ready",
                                                                                    "failed")  # fmt: skip


def thanks(*, session: Session, workspace_id: str, token: str, secret_configured: str, ttl_s: int) -> Thanks:
    """The thank-you page of the buy form ``token`` was given for; PageNotFound for any other token (a
    made-up one, another workspace's) — nobody can reach another buyer's order from here."""
    if not _WORKSPACE.fullmatch(workspace_id) or not TOKEN.fullmatch(token):
        raise PageNotFound("there is no such page")
    row = repository.checkout(session, workspace_id, _row_id(token))
    if row is None:
        raise PageNotFound("there is no such page")
    try:
        title = offers_service.get_offer(session=session, workspace_id=workspace_id, key=row.offer_key).title
    except OfferloopError:
        title = row.offer_key
    if row.order_id is None:
        return Thanks(token=token, title=title, status="processing", provider=None, total=None, order_id=None,
                      deliverable="waiting")  # fmt: skip
    order = checkout_service.get_order(session=session, workspace_id=workspace_id, order_id=row.order_id)
    deliverable = _deliverable(session, workspace_id, order, row.shows_deliverable, secret_configured, ttl_s)
    return Thanks(token=token, title=title, status=order.status, provider=order.provider,
                  total=order.formatted_total, order_id=order.id, **deliverable)  # fmt: skip


def _deliverable(
    session: Session, workspace_id: str, order: OrderDetail, shows: bool, secret_configured: str, ttl_s: int
) -> dict[str, Any]:
    tasks = [t for t in order.fulfilment if t.component == "deliverable"]
    if not tasks:
        # a paid order's tasks are queued with the payment: none then means this offer has no deliverable
        return {"deliverable": "none" if order.status != "pending" else "waiting"}
    if not shows:
        return {"deliverable": "hidden"}
    task = tasks[0]
    if task.status == "failed" or task.status == "canceled":
        return {"deliverable": "failed"}
    artifact_id = (task.result or {}).get("artifact_id")
    if task.status != "done" or not isinstance(artifact_id, str):
        return {"deliverable": "waiting"}
    try:
        artifact = assembly_service.get_artifact(
            session=session, workspace_id=workspace_id, artifact_id=artifact_id
        )
    except OfferloopError:  # erased since
        return {"deliverable": "failed"}
    out: dict[str, Any] = {"preview_html": artifact.preview_html}
    if artifact.downloadable_version is None:
        failed = artifact.status == "failed"
        out["deliverable"] = (
            "failed" if failed else "review" if artifact.status == "awaiting_review" else "preview"
        )
        return out
    secret = secret_of(session, secret_configured)
    links = {}
    for fmt in FORMATS:
        link = assembly_service.download_link(session=session, workspace_id=workspace_id, artifact_id=artifact_id,
                                              fmt=fmt, secret=secret, ttl_s=ttl_s)  # fmt: skip
        links[fmt] = link.url
        out["expires"] = link.expires
    return {**out, "deliverable": "ready", "links": links}
