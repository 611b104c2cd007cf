"""Pydantic I/O of the invoices domain."""

from __future__ import annotations

from datetime import datetime
from typing import Literal

from pydantic import BaseModel, Field

Kind = Literal["invoice", "credit_note"]


class InvoiceLine(BaseModel):
    """One line as invoiced. Amounts are minor units of the document's currency."""

    title: str
    offer_key: str | None = None
    quantity: int
    unit_amount: int
    subtotal: int
    discount: int
    total: int


class InvoiceRead(BaseModel):
    """An issued invoice or credit note; what it says never changes after issue."""

    id: str
    number: str = Field(description="Sequential per workspace and kind: INV-000001, CN-000001")
    kind: Kind
    order_id: str
    buyer_id: str
    refers_to: str | None = Field(default=None, description="A credit note's invoice number")
    currency: str
    lines: list[InvoiceLine]
    subtotal: int
    discount: int
    tax: int
    total: int = Field(description="subtotal - discount + tax, minor units")
    tax_percent: str
    formatted_total: str
    seller_name: str
    buyer_name: str | None
    buyer_email: str | None
    issued_at: datetime
    download_url: str = Field(description="A signed link to the PDF that needs no key (for the buyer)")
