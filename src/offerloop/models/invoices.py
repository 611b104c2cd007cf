"""Invoices and credit notes: one numbered document per paid order (or refund), and the per-workspace
counters that keep their numbers sequential and gapless."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import BigInteger, ForeignKey, Index, Integer, LargeBinary, String, UniqueConstraint
from sqlalchemy.orm import Mapped, mapped_column

from offerloop.db.base import Base
from offerloop.db.types import JSONType, UTCDateTime


class InvoiceCounter(Base):
    """The last number issued per workspace and kind. Issuing locks this row (PostgreSQL) or holds the one
    writer (SQLite) and takes the next number in the same transaction as the document, so a rollback gives
    the number back and the sequence has no gaps."""

    __tablename__ = "invoice_counters"

    workspace_id: Mapped[str] = mapped_column(
        ForeignKey("workspaces.id", ondelete="CASCADE"), primary_key=True
    )
    kind: Mapped[str] = mapped_column(String(12), primary_key=True)  # invoice | credit_note
    last: Mapped[int] = mapped_column(Integer, default=0)


class Invoice(Base):
    """An issued invoice or credit note: what it says is frozen at issue (lines, amounts, the parties'
    names), so the document reads the same for ever. ``source_key`` names what it was issued for (the order
    id; for a credit note the refund event's message id): one document per source and kind."""

    __tablename__ = "invoices"
    __table_args__ = (
        UniqueConstraint("workspace_id", "number"),
        UniqueConstraint("workspace_id", "kind", "source_key"),
        Index(None, "workspace_id", "order_id"),
        Index(None, "workspace_id", "buyer_id"),
    )

    id: Mapped[str] = mapped_column(String(40), primary_key=True)
    workspace_id: Mapped[str] = mapped_column(ForeignKey("workspaces.id", ondelete="CASCADE"))
    kind: Mapped[str] = mapped_column(String(12))
    seq: Mapped[int] = mapped_column(Integer)
    number: Mapped[str] = mapped_column(String(40))
    source_key: Mapped[str] = mapped_column(String(255))
    order_id: Mapped[str] = mapped_column(String(40))
    buyer_id: Mapped[str] = mapped_column(String(40))
    refers_to: Mapped[str | None] = mapped_column(String(40), nullable=True)  # a credit note's invoice number
    currency: Mapped[str] = mapped_column(String(3))
    lines: Mapped[list[dict[str, Any]]] = mapped_column(JSONType)
    subtotal: Mapped[int] = mapped_column(BigInteger)
    discount: Mapped[int] = mapped_column(BigInteger)
    tax: Mapped[int] = mapped_column(BigInteger)
    total: Mapped[int] = mapped_column(BigInteger)
    tax_percent: Mapped[str] = mapped_column(String(12))
    seller_name: Mapped[str] = mapped_column(String(200))
    buyer_name: Mapped[str | None] = mapped_column(String(200), nullable=True)
    buyer_email: Mapped[str | None] = mapped_column(String(320), nullable=True)
    issued_at: Mapped[datetime] = mapped_column(UTCDateTime())
    # Rendered by the announce job (deterministic: the same bytes whenever it is rendered); None until then.
    pdf: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True, deferred=True)
    announced_at: Mapped[datetime | None] = mapped_column(UTCDateTime(), nullable=True)
