"""Offers, drops' stock and holds, orders, subscriptions, payment events, entitlements, fulfilment and the ledger."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, Boolean, ForeignKey, Index, Integer, String, Text, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from offerloop.db.base import Base
from offerloop.db.types import BigIntPK, JSONType, UTCDateTime


class Offer(Base):
    """One sellable offer of the catalog (its full definition as validated JSON)."""

    __tablename__ = "offers"
    __table_args__ = (UniqueConstraint("workspace_id", "key"),)

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    workspace_id: Mapped[str] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    key: Mapped[str] = mapped_column(String(120))
    kind: Mapped[str] = mapped_column(String(20))
    title: Mapped[str] = mapped_column(String(300))
    definition: Mapped[dict[str, Any]] = mapped_column(JSONType)
    active: Mapped[bool] = mapped_column(Boolean, default=True)
    signed_off_by: Mapped[str | None] = mapped_column(
        String(200), nullable=True
    )  # drops go live only once signed off
    signed_off_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class Coupon(Base):
    __tablename__ = "coupons"
    __table_args__ = (UniqueConstraint("workspace_id", "code"),)

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    workspace_id: Mapped[str] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    code: Mapped[str] = mapped_column(String(64))
    definition: Mapped[dict[str, Any]] = mapped_column(JSONType)
    redemptions: Mapped[int] = mapped_column(Integer, default=0)


class DropStock(Base):
    """A limited drop's units: sold + held never exceeds total (a conditional UPDATE, on every database)."""

    __tablename__ = "drop_stock"
    __table_args__ = (UniqueConstraint("workspace_id", "offer_key"),)

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    workspace_id: Mapped[str] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    offer_key: Mapped[str] = mapped_column(String(120))
    total: Mapped[int] = mapped_column(Integer)
    sold: Mapped[int] = mapped_column(Integer, default=0)
    held: Mapped[int] = mapped_column(Integer, default=0)


class BuyerClaim(Base):
    """Units of a per-buyer limit one buyer holds (a drop's units, a once-per-buyer coupon's use).

    The limit is enforced by the database: a conditional UPDATE ``used + n <= limit`` on this row, so
    concurrent checkouts of one buyer serialise on it (row lock on PostgreSQL, the single writer on SQLite).
    """

    __tablename__ = "buyer_claims"
    __table_args__ = (UniqueConstraint("workspace_id", "scope", "key", "buyer_id"),)

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    workspace_id: Mapped[str] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    scope: Mapped[str] = mapped_column(String(16))  # drop | coupon
    key: Mapped[str] = mapped_column(String(120))  # the drop's offer key or the coupon code
    buyer_id: Mapped[str] = mapped_column(String(40))
    used: Mapped[int] = mapped_column(Integer, default=0)


class StockHold(Base):
    __tablename__ = "stock_holds"
    __table_args__ = (Index(None, "workspace_id", "offer_key", "status", "expires_at"),)

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    workspace_id: Mapped[str] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    offer_key: Mapped[str] = mapped_column(String(120))
    order_id: Mapped[str] = mapped_column(String(40))
    buyer_id: Mapped[str] = mapped_column(String(40))
    quantity: Mapped[int] = mapped_column(Integer)
    status: Mapped[str] = mapped_column(String(12))  # held | converted | released | expired
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    expires_at: Mapped[datetime] = mapped_column(UTCDateTime())


class Order(Base):
    __tablename__ = "orders"
    __table_args__ = (
        Index(None, "workspace_id", "buyer_id"),
        Index(None, "workspace_id", "id"),  # the orders newest first (console, GET /v1/orders)
        Index(None, "workspace_id", "status", "id"),  # of one status, newest first
        Index(None, "workspace_id", "paid_at"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    workspace_id: Mapped[str] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    buyer_id: Mapped[str] = mapped_column(String(40))
    # pending -> paid -> partially_refunded | refunded ; pending -> canceled | expired
    status: Mapped[str] = mapped_column(String(20))
    provider: Mapped[str] = mapped_column(String(16))  # manual | stripe
    provider_ref: Mapped[str | None] = mapped_column(String(200), nullable=True)  # e.g. Checkout Session id
    currency: Mapped[str] = mapped_column(String(3))
    subtotal: Mapped[int] = mapped_column(BigInteger)
    discount: Mapped[int] = mapped_column(BigInteger)
    tax: Mapped[int] = mapped_column(BigInteger)
    total: Mapped[int] = mapped_column(BigInteger)
    refunded: Mapped[int] = mapped_column(BigInteger, default=0)
    coupon: Mapped[str | None] = mapped_column(String(64), nullable=True)
    # the rates the order was priced and booked with; renewals of its subscription reuse them
    tax_percent: Mapped[str] = mapped_column(String(16), default="0")
    platform_fee_percent: Mapped[str] = mapped_column(String(16), default="0")
    lines: Mapped[list[dict[str, Any]]] = mapped_column(JSONType)
    decision_id: Mapped[str | None] = mapped_column(
        String(40), nullable=True
    )  # the presentation that sold it
    checkout_url: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    paid_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())


class Subscription(Base):
    __tablename__ = "subscriptions"
    __table_args__ = (Index(None, "workspace_id", "buyer_id"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    workspace_id: Mapped[str] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    buyer_id: Mapped[str] = mapped_column(String(40))
    order_id: Mapped[str] = mapped_column(String(40))
    offer_key: Mapped[str] = mapped_column(String(120))
    status: Mapped[str] = mapped_column(String(20))
    state: Mapped[dict[str, Any]] = mapped_column(JSONType)  # subscriptions.lifecycle.Subscription
    provider_subscription_id: Mapped[str | None] = mapped_column(String(200), nullable=True)
    created_at: Mapped[datetime] = mapped_column(UTCDateTime())
    updated_at: Mapped[datetime] = mapped_column(UTCDateTime())
    # The number of lifecycle steps recorded (incremented in each step's transaction): the step's buyer event
    # is named by it, so two steps dated the same instant are two events and a replayed step is the same one.
    steps: Mapped[int] = mapped_column(Integer, default=0, server_default="0")


class PaymentEvent(Base):
    """Every provider webhook, stored once by its event id (duplicates are acknowledged and ignored)."""

    __tablename__ = "payment_events"
    __table_args__ = (
        UniqueConstraint("provider", "provider_event_id"),
        Index(None, "provider", "payment_ref"),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    workspace_id: Mapped[str | None] = mapped_column(String(40), nullable=True)
    provider: Mapped[str] = mapped_column(String(16))
    provider_event_id: Mapped[str] = mapped_column(String(200))
    type: Mapped[str] = mapped_column(String(80))
    order_id: Mapped[str | None] = mapped_column(String(40), nullable=True)
    # The payment (intent, else invoice) it is about: an event that matched no order is adopted by the
    # order this payment later pays (a refund without metadata that overtook the checkout's completion).
    payment_ref: Mapped[str | None] = mapped_column(String(200), nullable=True)
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime())
    received_at: Mapped[datetime] = mapped_column(UTCDateTime())
    outcome: Mapped[str] = mapped_column(String(40))  # applied | ignored_stale | ignored_unknown | ...
    payload: Mapped[dict[str, Any]] = mapped_column(JSONType)


class Entitlement(Base):
    """Access to one component (a module, a community space, a coaching quota…) for one buyer."""

    __tablename__ = "entitlements"
    __table_args__ = (Index(None, "workspace_id", "buyer_id", "component", "ref"),)

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    workspace_id: Mapped[str] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    buyer_id: Mapped[str] = mapped_column(String(40))
    component: Mapped[str] = mapped_column(String(40))
    ref: Mapped[str] = mapped_column(String(200))
    status: Mapped[str] = mapped_column(String(12))  # active | revoked
    override: Mapped[str | None] = mapped_column(
        String(8), nullable=True
    )  # allow | deny (admin), beats status
    quantity: Mapped[int | None] = mapped_column(Integer, nullable=True)  # quotas: what is left
    source: Mapped[str] = mapped_column(String(80))  # order id, subscription id, or "admin"
    granted_at: Mapped[datetime] = mapped_column(UTCDateTime())
    access_ends_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)  # not billing end
    revoked_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    reason: Mapped[str | None] = mapped_column(Text, nullable=True)


class FulfilmentTask(Base):
    """One component of one paid order to deliver; retried on its own, never failing the order."""

    __tablename__ = "fulfilment_tasks"
    __table_args__ = (
        UniqueConstraint("workspace_id", "order_id", "component", "ref"),
        Index(None, "status", "next_attempt_at"),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    workspace_id: Mapped[str] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    order_id: Mapped[str] = mapped_column(String(40))
    buyer_id: Mapped[str] = mapped_column(String(40))
    component: Mapped[str] = mapped_column(String(40))
    ref: Mapped[str] = mapped_column(String(200))
    spec: Mapped[dict[str, Any]] = mapped_column(JSONType)
    status: Mapped[str] = mapped_column(String(12))  # pending | running | done | failed (gave up)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    next_attempt_at: Mapped[datetime] = mapped_column(UTCDateTime())
    done_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
    result: Mapped[dict[str, Any] | None] = mapped_column(JSONType, nullable=True)


class LedgerEntry(Base):
    __tablename__ = "ledger_entries"
    __table_args__ = (
        Index(None, "workspace_id", "occurred_at"),
        Index(None, "workspace_id", "order_id", "occurred_at"),  # an order's entries in time order
        Index(None, "workspace_id", "id"),  # the entries newest first
        Index(None, "workspace_id", "kind", "id"),  # of one kind, newest first
        UniqueConstraint("workspace_id", "reference"),
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    workspace_id: Mapped[str] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    order_id: Mapped[str | None] = mapped_column(String(40), nullable=True)
    kind: Mapped[str] = mapped_column(String(16))
    occurred_at: Mapped[datetime] = mapped_column(UTCDateTime())
    # an external reference that makes the entry idempotent (a payout's bank transfer id)
    reference: Mapped[str | None] = mapped_column(String(200), nullable=True)
    # attribution snapshot at posting time: offer keys, persona, first/last touch channel
    tags: Mapped[dict[str, Any]] = mapped_column(JSONType)


class LedgerPosting(Base):
    __tablename__ = "ledger_postings"
    __table_args__ = (
        Index(None, "workspace_id", "account"),
        Index(None, "workspace_id", "entry_id"),  # an entry's postings
    )

    id: Mapped[int] = mapped_column(BigIntPK, primary_key=True, autoincrement=True)
    workspace_id: Mapped[str] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    entry_id: Mapped[int] = mapped_column(ForeignKey("ledger_entries.id", ondelete="CASCADE"))
    account: Mapped[str] = mapped_column(String(32))
    amount: Mapped[int] = mapped_column(BigInteger)  # minor units; debit positive, credit negative
    currency: Mapped[str] = mapped_column(String(3))
    memo: Mapped[str] = mapped_column(Text, default="")


class LedgerBalance(Base):
    """The running sum of an account's postings in one currency, kept with every posting (the ledger page reads
    these few rows instead of summing every posting of the workspace)."""

    __tablename__ = "ledger_balances"

    workspace_id: Mapped[str] = mapped_column(
        ForeignKey("workspaces.id", ondelete="CASCADE"), primary_key=True
    )
    account: Mapped[str] = mapped_column(String(32), primary_key=True)
    currency: Mapped[str] = mapped_column(String(3), primary_key=True)
    amount: Mapped[int] = mapped_column(BigInteger)  # minor units; debit positive, credit negative
