"""HTTP API of turnaround promises: what was promised by when, met on time or late (secret key)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Query

from offerloop.core.errors import ValidationFailed, error_responses
from offerloop.core.pages import DEFAULT_LIMIT, MAX_LIMIT, InvalidCursor, Page
from offerloop.delivery import promises
from offerloop.delivery.promises import PromiseRead, PromiseStatus
from offerloop.workspaces.auth import DB, SecretKey
from offerloop.workspaces.exceptions import InvalidKey, SecretKeyRequired

router = APIRouter(prefix="/v1", tags=["delivery"])


@router.get("/promises", summary="Turnaround promises of micro-offers, newest first",
            responses=error_responses(InvalidKey, SecretKeyRequired, ValidationFailed, InvalidCursor))  # fmt: skip
def list_promises(
    db: DB, principal: SecretKey,
    limit: Annotated[int, Query(ge=1, le=MAX_LIMIT, description="Items per page")] = DEFAULT_LIMIT,
    cursor: Annotated[str | None, Query(max_length=512, description="The next_cursor of the previous page")] = None,
    status: Annotated[PromiseStatus | None, Query(description="late: overdue, the creator was alerted")] = None,
    buyer_id: Annotated[str | None, Query(max_length=40)] = None,
    offer_key: Annotated[str | None, Query(max_length=120)] = None,
) -> Page[PromiseRead]:  # fmt: skip
    with db.read() as session:
        return promises.list_promises(session=session, workspace_id=principal.workspace_id, limit=limit,
                                      cursor=cursor, status=status, buyer_id=buyer_id, offer_key=offer_key)  # fmt: skip
