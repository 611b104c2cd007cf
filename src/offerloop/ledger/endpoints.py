from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field

from offerloop.core.errors import ValidationFailed, error_responses
from offerloop.core.pages import DEFAULT_LIMIT, MAX_LIMIT, InvalidCursor, Page
from offerloop.ledger import service
from offerloop.ledger.postings import LedgerError
from offerloop.ledger.schemas import (
    EntryRead,
    LedgerCheck,
    OrderLedger,
    PayoutRecorded,
    PayoutTotals,
    RevenueRow,
)
from offerloop.workspaces.auth import DB, SecretKey
from offerloop.workspaces.exceptions import InvalidKey, SecretKeyRequired

router = APIRouter(prefix="/v1", tags=["ledger"])

Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT, description="Items per page")]
Cursor = Annotated[str | None, Query(description="The next_cursor of the previous page")]
_KEY = (InvalidKey, SecretKeyRequired, ValidationFailed)

_INSTANT = "ISO 8601 date or date-time; a date is midnight UTC, a time without an offset is UTC"


def parse_instant(name: str, value: str | None) -> datetime | None:
    """A query parameter as aware UTC: an ISO date (midnight UTC) or date-time (no offset means UTC)."""
    if value is None or not value.strip():
        return None
    text = value.strip()
    if text[-1:] in ("Z", "z"):
        text = text[:-1] + "+00:00"
    try:
        parsed = datetime.fromisoformat(text)
        return parsed.replace(tzinfo=UTC) if parsed.tzinfo is None else parsed.astimezone(UTC)
    except (ValueError, OverflowError):
        raise ValidationFailed(
            f"{name} must be an ISO 8601 date (2026-11-01) or date-time (2026-11-01T00:00:00Z), got {value!r}",
            details={"parameter": name, "value": value},
        ) from None


def _required(name: str, value: str) -> datetime:
    parsed = parse_instant(name, value)
    if parsed is None:
        raise ValidationFailed(f"{name} is required", details={"parameter": name})
    return parsed


@router.get(
    "/ledger/orders/{order_id}", summary="An order's ledger entries, postings and totals",
    responses=error_responses(*_KEY, service.LedgerOrderNotFound),
)  # fmt: skip
def order_ledger(db: DB, principal: SecretKey, order_id: str) -> OrderLedger:
    with db.read() as session:
        return service.order_ledger(session=session, workspace_id=principal.workspace_id, order_id=order_id)


@router.get(
    "/ledger/entries", summary="Ledger entries in booking order, by kind, order and period (e.g. the payouts of a month)",
    responses=error_responses(*_KEY, InvalidCursor),
)  # fmt: skip
def entries(
    db: DB, principal: SecretKey, limit: Limit = DEFAULT_LIMIT, cursor: Cursor = None,
    kind: Annotated[service.EntryKindName | None, Query(description="Only entries of this kind")] = None,
    order_id: Annotated[str | None, Query(max_length=40, description="Only this order's entries")] = None,
    start: Annotated[str | None, Query(description=_INSTANT)] = None,
    end: Annotated[str | None, Query(description=_INSTANT + "; exclusive")] = None,
) -> Page[EntryRead]:  # fmt: skip
    since, until = parse_instant("start", start), parse_instant("end", end)
    with db.read() as session:
        return service.list_entries(session=session, workspace_id=principal.workspace_id, limit=limit, cursor=cursor,
                                    kind=kind, order_id=order_id, start=since, end=until)  # fmt: skip


@router.get(
    "/ledger/payouts",
    summary="Payout totals of one currency over [start, end)",
    responses=error_responses(*_KEY),
)
def payouts(
    db: DB,
    principal: SecretKey,
    start: Annotated[str, Query(description=_INSTANT)],
    end: Annotated[str, Query(description=_INSTANT + "; exclusive")],
    currency: Annotated[str, Query(description="ISO 4217 code, e.g. USD")],
) -> PayoutTotals:
    since, until = _required("start", start), _required("end", end)
    with db.read() as session:
        return service.payouts(
            session=session, workspace_id=principal.workspace_id, start=since, end=until, currency=currency
        )


class PayoutIn(BaseModel):
    reference: str = Field(min_length=1, max_length=200, description="The transfer's id: repeats are no-ops")
    amount: int = Field(gt=0, lt=2**62, description="Minor units")
    currency: str = Field(min_length=3, max_length=3, description="ISO 4217 code, e.g. USD")
    paid_at: str | None = Field(default=None, description=_INSTANT)


@router.post(
    "/ledger/payouts",
    summary="Record a payout to the creator's bank (idempotent by reference)",
    response_model=PayoutRecorded,
    status_code=201,
    responses={
        200: {"description": "Already recorded", "model": PayoutRecorded},
        **error_responses(*_KEY, service.PayoutConflict, LedgerError),
    },
)
def record_payout(db: DB, principal: SecretKey, body: PayoutIn) -> Any:
    at = parse_instant("paid_at", body.paid_at)
    with db.write() as session:
        out = service.record_payout(
            session=session, workspace_id=principal.workspace_id, reference=body.reference, amount=body.amount,
            currency=body.currency, paid_at=at, actor=f"key:{principal.key_id}",
        )  # fmt: skip
    return out if out.created else JSONResponse(out.model_dump(mode="json"), status_code=200)


@router.get(
    "/ledger/export.csv",
    summary="Every posting of [start, end) as CSV",
    response_class=Response,
    responses={
        200: {"content": {"text/csv": {}}, "description": "One row per posting"},
        **error_responses(*_KEY),
    },
)
def export_csv(
    db: DB,
    principal: SecretKey,
    start: Annotated[str | None, Query(description=_INSTANT)] = None,
    end: Annotated[str | None, Query(description=_INSTANT + "; exclusive")] = None,
) -> Response:
    since, until = parse_instant("start", start), parse_instant("end", end)
    with db.read() as session:
        text = service.export_csv(
            session=session, workspace_id=principal.workspace_id, start=since, end=until
        )
    span = "-".join(f"{label}-{t:%Y%m%dT%H%M%SZ}" for label, t in (("from", since), ("to", until)) if t)
    filename = f"ledger-{span}.csv" if span else "ledger.csv"
    return Response(
        content=text,
        media_type="text/csv; charset=utf-8",
        headers={"Content-Disposition": f'attachment; filename="{filename}"'},
    )


@router.get(
    "/revenue", summary="Net revenue by offer, persona, first or last touch, largest first",
    responses=error_responses(*_KEY, InvalidCursor),
)  # fmt: skip
def revenue(
    db: DB,
    principal: SecretKey,
    by: Annotated[service.RevenueBy, Query(description="offer, persona, first_touch or last_touch")],
    currency: Annotated[str, Query(description="ISO 4217 code, e.g. USD")],
    limit: Limit = DEFAULT_LIMIT,
    cursor: Cursor = None,
) -> Page[RevenueRow]:
    with db.read() as session:
        return service.revenue_page(session=session, workspace_id=principal.workspace_id, by=by, currency=currency,
                                    limit=limit, cursor=cursor)  # fmt: skip


@router.get(
    "/ledger/check",
    summary="Orders whose postings do not balance (must be empty)",
    responses=error_responses(*_KEY),
)
def check(db: DB, principal: SecretKey) -> LedgerCheck:
    with db.read() as session:
        return service.check(session=session, workspace_id=principal.workspace_id)
