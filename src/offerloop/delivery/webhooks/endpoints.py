"""HTTP API of outgoing webhooks: endpoints (CRUD, secret rotation), their delivery log, manual replay."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Path, Query, Request

from offerloop.core.errors import ValidationFailed, error_responses
from offerloop.core.pages import DEFAULT_LIMIT, InvalidCursor, Page
from offerloop.delivery.webhooks import service
from offerloop.delivery.webhooks.exceptions import (
    DeliveryNotFound,
    EndpointDisabled,
    EndpointNotFound,
    InvalidTargetUrl,
    TooManyEndpoints,
)
from offerloop.delivery.webhooks.schemas import (
    DeliveryRead,
    DeliveryStatus,
    EndpointCreate,
    EndpointRead,
    EndpointUpdate,
    EndpointWithSecret,
    ReplayQueued,
)
from offerloop.web import Cursor, Limit
from offerloop.workspaces.auth import DB, SecretKey, get_settings
from offerloop.workspaces.exceptions import InvalidKey, SecretKeyRequired

router = APIRouter(prefix="/v1/webhooks", tags=["webhooks"])

_KEY = (InvalidKey, SecretKeyRequired, ValidationFailed)
_ENDPOINT = (*_KEY, EndpointNotFound)
EndpointId = Annotated[str, Path(max_length=40, description="`whe_…`")]
DeliveryId = Annotated[str, Path(max_length=40, description="`whd_…`")]


def _allow_private(request: Request) -> bool:
    return bool(get_settings(request).webhook_allow_private)


@router.post(
    "/endpoints", status_code=201, summary="Add an endpoint; its signing secret is shown this once",
    responses=error_responses(*_KEY, InvalidTargetUrl, TooManyEndpoints),
)  # fmt: skip
def create_endpoint(
    request: Request, db: DB, principal: SecretKey, body: EndpointCreate
) -> EndpointWithSecret:
    with db.write() as session:
        return service.create_endpoint(session=session, workspace_id=principal.workspace_id, body=body,
                                       allow_private=_allow_private(request))  # fmt: skip


@router.get(
    "/endpoints",
    summary="The workspace's endpoints, newest first",
    responses=error_responses(*_KEY, InvalidCursor),
)
def list_endpoints(
    db: DB, principal: SecretKey, limit: Limit = DEFAULT_LIMIT, cursor: Cursor = None
) -> Page[EndpointRead]:
    with db.read() as session:
        return service.list_endpoints(
            session=session, workspace_id=principal.workspace_id, limit=limit, cursor=cursor
        )


@router.get("/endpoints/{endpoint_id}", summary="One endpoint", responses=error_responses(*_ENDPOINT))
def get_endpoint(db: DB, principal: SecretKey, endpoint_id: EndpointId) -> EndpointRead:
    with db.read() as session:
        return service.get_endpoint(
            session=session, workspace_id=principal.workspace_id, endpoint_id=endpoint_id
        )


@router.patch(
    "/endpoints/{endpoint_id}", summary="Change an endpoint (only the fields given); enabling clears the reason "
    "it was disabled", responses=error_responses(*_ENDPOINT, InvalidTargetUrl),
)  # fmt: skip
def update_endpoint(
    request: Request, db: DB, principal: SecretKey, endpoint_id: EndpointId, body: EndpointUpdate
) -> EndpointRead:
    with db.write() as session:
        return service.update_endpoint(session=session, workspace_id=principal.workspace_id, endpoint_id=endpoint_id,
                                       body=body, allow_private=_allow_private(request))  # fmt: skip


@router.delete(
    "/endpoints/{endpoint_id}", summary="Delete an endpoint with its deliveries and their log",
    responses=error_responses(*_ENDPOINT),
)  # fmt: skip
def delete_endpoint(db: DB, principal: SecretKey, endpoint_id: EndpointId) -> EndpointRead:
    with db.write() as session:
        return service.delete_endpoint(
            session=session, workspace_id=principal.workspace_id, endpoint_id=endpoint_id
        )


@router.post(
    "/endpoints/{endpoint_id}/rotate-secret",
    summary="A new signing secret, shown this once; the old one also signs for 24 hours",
    responses=error_responses(*_ENDPOINT),
)
def rotate_secret(db: DB, principal: SecretKey, endpoint_id: EndpointId) -> EndpointWithSecret:
    with db.write() as session:
        return service.rotate_secret(
            session=session, workspace_id=principal.workspace_id, endpoint_id=endpoint_id
        )


@router.get(
    "/endpoints/{endpoint_id}/deliveries", summary="The endpoint's delivery log, newest first, with attempts",
    responses=error_responses(*_ENDPOINT, InvalidCursor),
)  # fmt: skip
def list_deliveries(
    db: DB, principal: SecretKey, endpoint_id: EndpointId, limit: Limit = DEFAULT_LIMIT, cursor: Cursor = None,
    status: Annotated[DeliveryStatus | None, Query(description="Only deliveries in this status")] = None,
) -> Page[DeliveryRead]:  # fmt: skip
    with db.read() as session:
        return service.list_deliveries(session=session, workspace_id=principal.workspace_id, endpoint_id=endpoint_id,
                                       status=status, limit=limit, cursor=cursor)  # fmt: skip


@router.get(
    "/deliveries/{delivery_id}",
    summary="One delivery and its attempts",
    responses=error_responses(*_KEY, DeliveryNotFound),
)
def get_delivery(db: DB, principal: SecretKey, delivery_id: DeliveryId) -> DeliveryRead:
    with db.read() as session:
        return service.get_delivery(
            session=session, workspace_id=principal.workspace_id, delivery_id=delivery_id
        )


@router.post(
    "/deliveries/{delivery_id}/replay", status_code=202,
    summary="Send a delivery again now (same event id, fresh signature), whatever its status",
    responses=error_responses(*_KEY, DeliveryNotFound, EndpointNotFound, EndpointDisabled),
)  # fmt: skip
def replay(db: DB, principal: SecretKey, delivery_id: DeliveryId) -> ReplayQueued:
    with db.write() as session:
        return service.replay(session=session, workspace_id=principal.workspace_id, delivery_id=delivery_id)
