"""The invoices domain's errors."""

from __future__ import annotations

from offerloop.core.errors import NotFound


class InvoiceNotFound(NotFound):
    """No invoice or credit note by that number in this workspace."""

    code = "invoice_not_found"


class BadInvoiceLink(NotFound):
    """A download link that is not one we signed (or names a document that does not exist). A 404 like a
    missing document: a forged or mistyped link learns nothing about which documents exist."""

    code = "invoice_link_invalid"
