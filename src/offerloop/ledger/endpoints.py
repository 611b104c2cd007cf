from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, Field

from offerloop.core.errors import ValidationFailed
from offerloop.ledger import service
from offerloop.workspaces.auth import DB, SecretKey

router = APIRouter(prefix="/v1", tags=["ledger"])

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


@router.get("/ledger/orders/{order_id}", summary="An order's ledger entries, postings and totals")
def order_ledger(db: DB, principal: SecretKey, order_id: str) -> dict[str, Any]:
    with db.read() as session:
        return service.order_ledger(session=session, workspace_id=principal.workspace_id, order_id=order_id)


@router.get("/ledger/payouts", summary="Payout totals of one currency over [start, end)")
def payouts(
    db: DB,
    principal: SecretKey,
    start: Annotated[str, Query(description=_INSTANT)],
    end: Annotated[str, Query(description=_INSTANT + "; exclusive")],
    currency: Annotated[str, Query(description="ISO 4217 code, e.g. USD")],
) -> dict[str, Any]:
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


class PayoutRecorded(BaseModel):
    reference: str
    entry_id: int
    currency: str
    amount: int
    formatted: str
    paid_at: str
    created: bool
    pending_balance: dict[str, Any]


@router.post(
    "/ledger/payouts",
    summary="Record a payout to the creator's bank (idempotent by reference)",
    response_model=PayoutRecorded,
    status_code=201,
    responses={200: {"description": "Already recorded", "model": PayoutRecorded}, 409: {}, 422: {}},
)
def record_payout(db: DB, principal: SecretKey, body: PayoutIn) -> Any:
    at = parse_instant("paid_at", body.paid_at)
    with db.write() as session:
        out = service.record_payout(
            session=session, workspace_id=principal.workspace_id, reference=body.reference, amount=body.amount,
            currency=body.currency, paid_at=at, actor=f"key:{principal.key_id}",
        )  # fmt: skip
    return out if out["created"] else JSONResponse(out, status_code=200)


@router.get(
    "/ledger/export.csv",
    summary="Every posting of [start, end) as CSV",
    response_class=Response,
    responses={200: {"content": {"text/csv": {}}}},
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


@router.get("/revenue", summary="Net revenue by offer, persona, first or last touch, largest first")
def revenue(
    db: DB,
    principal: SecretKey,
    by: Annotated[service.RevenueBy, Query(description="offer, persona, first_touch or last_touch")],
    currency: Annotated[str, Query(description="ISO 4217 code, e.g. USD")],
) -> list[dict[str, Any]]:
    with db.read() as session:
        return service.revenue(session=session, workspace_id=principal.workspace_id, by=by, currency=currency)


@router.get("/ledger/check", summary="Orders whose postings do not balance (must be empty)")
def check(db: DB, principal: SecretKey) -> dict[str, Any]:
    with db.read() as session:
        found = service.unbalanced_orders(session=session, workspace_id=principal.workspace_id)
    return {"balanced": not found, "unbalanced_orders": found}
