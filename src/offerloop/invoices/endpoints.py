"""HTTP API of the invoices domain: the workspace's invoices and credit notes, their PDFs (secret key), and
the signed download link a buyer opens without a key."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, Path, Query, Request
from fastapi.responses import Response

from offerloop.core.errors import ValidationFailed, error_responses
from offerloop.core.pages import DEFAULT_LIMIT, MAX_LIMIT, InvalidCursor, Page
from offerloop.invoices import service
from offerloop.invoices.exceptions import BadInvoiceLink, InvoiceNotFound
from offerloop.invoices.schemas import InvoiceRead, Kind
from offerloop.workspaces.auth import DB, SecretKey, get_settings
from offerloop.workspaces.exceptions import InvalidKey, SecretKeyRequired

router = APIRouter(prefix="/v1", tags=["invoices"])

Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT, description="Items per page")]
Cursor = Annotated[str | None, Query(description="The next_cursor of the previous page")]
Number = Annotated[
    str, Path(max_length=40, pattern=r"^[A-Z]{1,8}-[0-9]{1,12}$", description="e.g. INV-000001, CN-000001")
]
_KEY = (InvalidKey, SecretKeyRequired, ValidationFailed)


def _pdf_responses(*errors: Any) -> dict[int | str, dict[str, Any]]:
    return {
        200: {"description": "The PDF", "content": {"application/pdf": {"schema": {"type": "string", "format": "binary"}}}},
        **error_responses(*errors),
    }  # fmt: skip


def _pdf(content: bytes, name: str) -> Response:
    return Response(content, media_type="application/pdf",
                    headers={"Content-Disposition": f'inline; filename="{name}"'})  # fmt: skip


@router.get(
    "/invoices/download/{token}",
    summary="The PDF behind a signed download link (no key needed: the buyer's copy)",
    response_class=Response,
    responses=_pdf_responses(BadInvoiceLink, ValidationFailed),
)
def download(request: Request, db: DB, token: Annotated[str, Path(max_length=300)]) -> Response:
    with db.read() as session:
        content, name = service.open_link(session=session, token=token, secret=get_settings(request).secret)
    return _pdf(content, name)


@router.get(
    "/invoices",
    summary="The workspace's invoices and credit notes, newest first",
    responses=error_responses(*_KEY, InvalidCursor),
)
def list_invoices(
    request: Request, db: DB, principal: SecretKey, limit: Limit = DEFAULT_LIMIT, cursor: Cursor = None,
    buyer_id: Annotated[str | None, Query(max_length=40, description="Only this buyer's documents")] = None,
    order_id: Annotated[str | None, Query(max_length=40, description="Only this order's documents")] = None,
    kind: Annotated[Kind | None, Query(description="invoice or credit_note")] = None,
) -> Page[InvoiceRead]:  # fmt: skip
    settings = get_settings(request)
    with db.read() as session:
        return service.list_invoices(session=session, workspace_id=principal.workspace_id, limit=limit,
                                     cursor=cursor, buyer_id=buyer_id, order_id=order_id, kind=kind,
                                     secret=settings.secret, public_url=settings.public_url)  # fmt: skip


@router.get(
    "/invoices/{number}",
    summary="One invoice or credit note, with the buyer's signed download link",
    responses=error_responses(*_KEY, InvoiceNotFound),
)
def get_invoice(request: Request, db: DB, principal: SecretKey, number: Number) -> InvoiceRead:
    settings = get_settings(request)
    with db.read() as session:
        return service.get_invoice(session=session, workspace_id=principal.workspace_id, number=number,
                                   secret=settings.secret, public_url=settings.public_url)  # fmt: skip


@router.get(
    "/invoices/{number}/pdf",
    summary="The PDF of an invoice or credit note",
    response_class=Response,
    responses=_pdf_responses(*_KEY, InvoiceNotFound),
)
def invoice_pdf(db: DB, principal: SecretKey, number: Number) -> Response:
    with db.read() as session:
        content, name = service.pdf_by_number(
            session=session, workspace_id=principal.workspace_id, number=number
        )
    return _pdf(content, name)
