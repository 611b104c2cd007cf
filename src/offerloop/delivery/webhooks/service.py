"""Webhook endpoints, deliveries and their schedule. The caller owns the transaction; sending is a job
(``tasks.py``): ``plan_attempt`` (read) -> ``sender.post`` (no database) -> ``record_attempt`` (write)."""

from __future__ import annotations

import hashlib
import secrets as secrets_module
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import orjson
from sqlalchemy.orm import Session

from offerloop.core.clock import utcnow
from offerloop.core.ids import new_id
from offerloop.core.pages import Page, decode_cursor, page_of
from offerloop.delivery.webhooks import repository, targets
from offerloop.delivery.webhooks.exceptions import (
    DeliveryNotFound,
    EndpointDisabled,
    EndpointNotFound,
    TooManyEndpoints,
)
from offerloop.delivery.webhooks.schemas import (
    AttemptRead,
    DeliveryRead,
    EndpointCreate,
    EndpointRead,
    EndpointUpdate,
    EndpointWithSecret,
    ReplayQueued,
)
from offerloop.delivery.webhooks.sender import Outcome
from offerloop.jobs import queue
from offerloop.models.delivery_channels import WebhookAttempt, WebhookDelivery, WebhookEndpoint

SEND = "webhooks.send"
REPLAY = "webhooks.replay"
MAX_ENDPOINTS = 50
# Retries: 30 s, 1 min, 2 min … doubling up to 6 h between attempts, each stretched by up to 25 % (the same
# for a given delivery and attempt), until 3 days after the first attempt; then the delivery has failed.
RETRY_BASE_S = 30.0
RETRY_CAP_S = 6 * 3600.0
RETRY_JITTER = 0.25
RETRY_WINDOW = timedelta(days=3)
ROTATION_GRACE = timedelta(hours=24)
LOG_PER_DELIVERY = 50


def new_secret() -> str:
    return "whsec_" + secrets_module.token_urlsafe(32)


def retry_delay_s(attempts: int, *, delivery_id: str) -> float:
    """Seconds from attempt number ``attempts`` (1 = the first) to the next one."""
    nominal = min(RETRY_CAP_S, RETRY_BASE_S * 2.0 ** (attempts - 1))
    spread = int.from_bytes(
        hashlib.blake2b(f"{delivery_id}:{attempts}".encode(), digest_size=4).digest(), "big"
    )
    return nominal * (1.0 + RETRY_JITTER * spread / 2**32)


def matches(event_types: list[str], event_type: str) -> bool:
    """An endpoint's filter: empty or ``*`` takes everything; ``order.*`` takes ``order.paid``."""
    if not event_types:
        return True
    for wanted in event_types:
        if wanted == "*" or wanted == event_type:
            return True
        if wanted.endswith(".*") and event_type.startswith(wanted[:-1]):
            return True
    return False


# --- endpoints -------------------------------------------------------------------------------------------


def _endpoint(
    session: Session, workspace_id: str, endpoint_id: str, *, lock: bool = False
) -> WebhookEndpoint:
    row = repository.get_endpoint(session, workspace_id, endpoint_id, lock=lock)
    if row is None:
        raise EndpointNotFound(f"no webhook endpoint {endpoint_id!r} in this workspace")
    return row


def _with_secret(row: WebhookEndpoint) -> EndpointWithSecret:
    return EndpointWithSecret.model_validate(row, from_attributes=True)


def create_endpoint(
    *,
    session: Session,
    workspace_id: str,
    body: EndpointCreate,
    allow_private: bool,
    now: datetime | None = None,
) -> EndpointWithSecret:
    now = now or utcnow()
    url = targets.check_url(body.url, allow_private=allow_private)
    if repository.count_endpoints(session, workspace_id) >= MAX_ENDPOINTS:
        raise TooManyEndpoints(f"a workspace has at most {MAX_ENDPOINTS} webhook endpoints")
    row = WebhookEndpoint(
        id=new_id("whe"), workspace_id=workspace_id, url=url, description=body.description, enabled=body.enabled,
        event_types=list(dict.fromkeys(body.event_types)), secret=new_secret(), created_at=now, updated_at=now,
    )  # fmt: skip
    repository.add(session, row)
    return _with_secret(row)


def list_endpoints(
    *, session: Session, workspace_id: str, limit: int, cursor: str | None
) -> Page[EndpointRead]:
    after = decode_cursor(cursor, types=(str,))
    rows = repository.endpoints_page(
        session, workspace_id, limit=limit + 1, before_id=after[0] if after else None
    )
    return page_of(
        rows,
        limit,
        key=lambda r: (r.id,),
        item=lambda r: EndpointRead.model_validate(r, from_attributes=True),
    )


def get_endpoint(*, session: Session, workspace_id: str, endpoint_id: str) -> EndpointRead:
    return EndpointRead.model_validate(_endpoint(session, workspace_id, endpoint_id), from_attributes=True)


def update_endpoint(
    *, session: Session, workspace_id: str, endpoint_id: str, body: EndpointUpdate, allow_private: bool,
    now: datetime | None = None,
) -> EndpointRead:  # fmt: skip
    now = now or utcnow()
    row = _endpoint(session, workspace_id, endpoint_id, lock=True)
    given = body.model_fields_set
    if "url" in given and body.url is not None:
        row.url = targets.check_url(body.url, allow_private=allow_private)
    if "description" in given and body.description is not None:
        row.description = body.description
    if "event_types" in given and body.event_types is not None:
        row.event_types = list(dict.fromkeys(body.event_types))
    if "enabled" in given and body.enabled is not None:
        row.enabled = body.enabled
        if body.enabled:
            row.disabled_reason = None
    row.updated_at = now
    session.flush()
    return EndpointRead.model_validate(row, from_attributes=True)


def rotate_secret(
    *, session: Session, workspace_id: str, endpoint_id: str, now: datetime | None = None
) -> EndpointWithSecret:
    """A new secret; the old one keeps signing alongside it (a second ``v1=``) for 24 hours."""
    now = now or utcnow()
    row = _endpoint(session, workspace_id, endpoint_id, lock=True)
    row.previous_secret, row.previous_secret_until = row.secret, now + ROTATION_GRACE
    row.secret = new_secret()
    row.updated_at = now
    session.flush()
    return _with_secret(row)


def delete_endpoint(*, session: Session, workspace_id: str, endpoint_id: str) -> EndpointRead:
    """Delete the endpoint, its deliveries and their log (their queued jobs then find nothing and finish)."""
    gone = EndpointRead.model_validate(_endpoint(session, workspace_id, endpoint_id), from_attributes=True)
    repository.delete_endpoint(session, workspace_id, endpoint_id)
    return gone


# --- deliveries ------------------------------------------------------------------------------------------


def _read(row: WebhookDelivery, log: list[WebhookAttempt]) -> DeliveryRead:
    return DeliveryRead(
        id=row.id, endpoint_id=row.endpoint_id, event_id=row.event_id, event_type=row.event_type,
        idempotency_key=row.idempotency_key, status=row.status,
        attempts=row.attempts, created_at=row.created_at, first_attempt_at=row.first_attempt_at,
        next_attempt_at=row.next_attempt_at, delivered_at=row.delivered_at, last_status_code=row.last_status_code,
        last_error=row.last_error, log=[AttemptRead.model_validate(a, from_attributes=True) for a in log],
    )  # fmt: skip


def _reads(session: Session, workspace_id: str, rows: list[WebhookDelivery]) -> list[DeliveryRead]:
    logs = repository.attempts_of(session, workspace_id, [r.id for r in rows], per_delivery=LOG_PER_DELIVERY)
    return [_read(r, logs[r.id]) for r in rows]


def deliver(
    session: Session, *, workspace_id: str, event_type: str, payload: dict[str, Any], idempotency_key: str,
    now: datetime | None = None,
) -> list[DeliveryRead]:  # fmt: skip
    """One delivery per enabled endpoint whose filter takes ``event_type``, each sent by a job after commit.

    Idempotent: a second call with the same key creates nothing for endpoints that have it already (an
    endpoint added since gets it, with the same event id). Returns every delivery of the key."""
    now = now or utcnow()
    if not idempotency_key or len(idempotency_key) > 200:
        raise ValueError("idempotency_key must be 1 to 200 characters")
    if not event_type or len(event_type) > 120:
        raise ValueError("event_type must be 1 to 120 characters")
    try:  # what is stored is exactly what is sent: JSON (datetimes become ISO strings)
        data = orjson.loads(orjson.dumps(payload))
    except TypeError as exc:
        raise ValueError(f"the payload is not JSON-serialisable: {exc}") from None
    known = repository.event_of_key(session, workspace_id, idempotency_key)
    event_id, created = known if known is not None else (new_id("evt"), now)
    rows = [
        {
            "id": new_id("whd"),
            "workspace_id": workspace_id,
            "endpoint_id": endpoint.id,
            "event_id": event_id,
            "event_type": event_type,
            "idempotency_key": idempotency_key,
            "data": data,
            "status": "pending",
            "attempts": 0,
            "created_at": created,
            "next_attempt_at": now,
        }
        for endpoint in repository.enabled_endpoints(session, workspace_id)
        if matches(endpoint.event_types, event_type)
    ]
    repository.insert_deliveries(session, rows)
    found = list(repository.deliveries_of_key(session, workspace_id, idempotency_key))
    new_ids = {r["id"] for r in rows}
    for row in found:
        if row.id in new_ids:
            queue.enqueue(session, kind=SEND, key=row.id, workspace_id=workspace_id, run_at=now, now=now)
    return _reads(session, workspace_id, found)


def list_deliveries(
    *,
    session: Session,
    workspace_id: str,
    endpoint_id: str,
    status: str | None,
    limit: int,
    cursor: str | None,
) -> Page[DeliveryRead]:
    _endpoint(session, workspace_id, endpoint_id)
    after = decode_cursor(cursor, types=(str,))
    rows = list(
        repository.deliveries_page(
            session,
            workspace_id,
            endpoint_id=endpoint_id,
            status=status,
            limit=limit + 1,
            before_id=after[0] if after else None,
        )
    )
    page = page_of(rows, limit, key=lambda r: (r.id,), item=lambda r: r)
    return Page[DeliveryRead](items=_reads(session, workspace_id, page.items), next_cursor=page.next_cursor)


def get_delivery(*, session: Session, workspace_id: str, delivery_id: str) -> DeliveryRead:
    row = repository.get_delivery(session, workspace_id, delivery_id)
    if row is None:
        raise DeliveryNotFound(f"no webhook delivery {delivery_id!r} in this workspace")
    return _reads(session, workspace_id, [row])[0]


def replay(
    *, session: Session, workspace_id: str, delivery_id: str, now: datetime | None = None
) -> ReplayQueued:
    """Queue one more attempt of a delivery, whatever its status (same event id, a fresh signature)."""
    now = now or utcnow()
    row = repository.get_delivery(session, workspace_id, delivery_id)
    if row is None:
        raise DeliveryNotFound(f"no webhook delivery {delivery_id!r} in this workspace")
    endpoint = _endpoint(session, workspace_id, row.endpoint_id)
    if not endpoint.enabled:
        raise EndpointDisabled(f"webhook endpoint {endpoint.id} is disabled: enable it before replaying")
    queue.enqueue(session, kind=REPLAY, key=row.id, workspace_id=workspace_id, run_at=now, now=now)
    return ReplayQueued(delivery_id=row.id, event_id=row.event_id)


# --- sending (called by the jobs) --------------------------------------------------------------------------


@dataclass(frozen=True)
class AttemptPlan:
    """What one attempt sends, read before the request (which holds no transaction)."""

    delivery_id: str
    url: str
    body: bytes
    secrets: list[str]
    event_id: str


def body_of(row: WebhookDelivery) -> bytes:
    return orjson.dumps(
        {
            "id": row.event_id,
            "type": row.event_type,
            "created": int(row.created_at.timestamp()),
            "data": row.data,
        }
    )


def plan_attempt(
    *, session: Session, workspace_id: str, delivery_id: str, trigger: str, now: datetime
) -> AttemptPlan | str | None:
    """The attempt to make; None when there is nothing to send (gone, or no longer pending for a scheduled
    attempt); a string (the reason) when the delivery must fail without a request (its endpoint is disabled)."""
    row = repository.get_delivery(session, workspace_id, delivery_id)
    if row is None or (trigger == "schedule" and row.status != "pending"):
        return None
    endpoint = repository.get_endpoint(session, workspace_id, row.endpoint_id)
    if endpoint is None:
        return None
    if not endpoint.enabled:
        return "endpoint disabled" + (f": {endpoint.disabled_reason}" if endpoint.disabled_reason else "")
    keys = [endpoint.secret]
    if endpoint.previous_secret and endpoint.previous_secret_until and endpoint.previous_secret_until > now:
        keys.append(endpoint.previous_secret)
    return AttemptPlan(
        delivery_id=row.id, url=endpoint.url, body=body_of(row), secrets=keys, event_id=row.event_id
    )


def fail_unsent(*, session: Session, workspace_id: str, delivery_id: str, reason: str, now: datetime) -> None:
    row = repository.get_delivery(session, workspace_id, delivery_id, lock=True)
    if row is not None and row.status == "pending":
        row.status, row.last_error, row.next_attempt_at = "failed", reason[:500], None


def record_attempt(
    *, session: Session, workspace_id: str, delivery_id: str, trigger: str, outcome: Outcome, now: datetime
) -> datetime | None:
    """Log the attempt and move the delivery on; returns when the next scheduled attempt is due (or None)."""
    row = repository.get_delivery(session, workspace_id, delivery_id, lock=True)
    if row is None or (trigger == "schedule" and row.status != "pending"):
        return None  # deleted meanwhile, or finished by a replay that ran at the same time
    row.attempts += 1
    row.first_attempt_at = row.first_attempt_at or now
    row.last_status_code = outcome.status_code
    row.last_error = outcome.error
    repository.add(
        session,
        WebhookAttempt(
            workspace_id=workspace_id,
            delivery_id=row.id,
            number=row.attempts,
            trigger=trigger,
            at=now,
            duration_ms=outcome.duration_ms,
            status_code=outcome.status_code,
            response_excerpt=outcome.excerpt,
            error=outcome.error,
            succeeded=outcome.succeeded,
        ),
    )
    if outcome.succeeded:
        row.status, row.delivered_at, row.next_attempt_at, row.last_error = "delivered", now, None, None
        return None
    if outcome.status_code == 410:  # the receiver says the endpoint is gone for good
        endpoint = repository.get_endpoint(session, workspace_id, row.endpoint_id, lock=True)
        if endpoint is not None and endpoint.enabled:
            endpoint.enabled = False
            endpoint.disabled_reason = f"the receiver answered 410 Gone on {now.isoformat()}"
            endpoint.updated_at = now
        row.status, row.next_attempt_at = "failed", None
        row.last_error = "the receiver answered 410 Gone: endpoint disabled"
        return None
    if trigger == "replay" or row.status != "pending":  # a replay changes no schedule
        return None
    if outcome.final:
        row.status, row.next_attempt_at = "failed", None
        return None
    due = now + timedelta(seconds=retry_delay_s(row.attempts, delivery_id=row.id))
    if due > row.first_attempt_at + RETRY_WINDOW:
        row.status, row.next_attempt_at = "failed", None
        row.last_error = (row.last_error or f"HTTP {outcome.status_code}") + " (gave up after 3 days)"
        row.last_error = row.last_error[:500]
        return None
    row.next_attempt_at = due
    return due
