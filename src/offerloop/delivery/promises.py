"""A micro-offer's turnaround promise, tracked per paid order.

The promise belongs to the offer (``turnaround_hours`` in the catalog, required for a micro-offer): it is what
the creator sells, the same for every buyer and whatever journeys say about it. When an ``Order Completed``
of a micro-offer is logged, the order is read back (a client can track an event of that name) and a promise
is recorded, due ``turnaround_hours`` after payment, with a due job (``delivery.promise_due``) at that
time. The deliverable's ``Artifact Ready`` meets it, on time or late. If the due time passes first, the
promise turns ``late`` and ``Promise Late`` goes on the buyer's record: a transactional journey triggered by
it alerts the creator through a delivery channel (the demo's ``promise_late`` posts to the creator's
webhooks), and ``GET /v1/promises?status=late`` lists what is overdue.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Final, Literal

from pydantic import BaseModel, ConfigDict, Field
from sqlalchemy.orm import Session

from offerloop.assembly import service as assembly_service
from offerloop.assembly.announce import EVENT as ARTIFACT_READY
from offerloop.assembly.exceptions import ArtifactNotFound
from offerloop.checkout import service as checkout_service
from offerloop.core.pages import Page, decode_cursor, page_by_id
from offerloop.delivery import clock_repository
from offerloop.events import service as events_service
from offerloop.jobs import queue
from offerloop.models import Promise
from offerloop.offers import service as offers_service
from offerloop.offers.exceptions import OfferNotFound
from offerloop.pipeline.registry import LogEvent

DUE: Final = "delivery.promise_due"
LATE_EVENT: Final = "Promise Late"
_PAID: Final = ("paid", "partially_refunded")

PromiseStatus = Literal["open", "met", "late", "canceled"]


class PromiseRead(BaseModel):
    """A micro-offer's turnaround promise for one paid order."""

    model_config = ConfigDict(from_attributes=True)
    id: int
    order_id: str
    buyer_id: str
    offer_key: str
    policy_id: str = Field(description="the composition policy of the promised deliverable")
    turnaround_hours: int
    paid_at: datetime
    due_at: datetime
    status: PromiseStatus = Field(description="open | met | late (overdue, the creator alerted) | canceled")
    on_time: bool | None = Field(description="once met: whether the deliverable was ready by the due time")
    artifact_id: str | None
    met_at: datetime | None
    late_at: datetime | None = Field(description="when it was found overdue")


def job_key(workspace_id: str, order_id: str) -> str:
    return f"{workspace_id}/{order_id}"


def on_events(session: Session, workspace_id: str, events: Sequence[LogEvent], now: datetime) -> None:
    """Record promises of paid micro-offers, meet them when their deliverable is ready, cancel refunded ones."""
    for event in events:
        if event.type != "track" or event.buyer_id is None:
            continue
        props = event.properties or {}
        if event.name == "Order Completed" and props.get("kind") == "micro_offer":
            _promise(session, workspace_id, props.get("order_id"), props.get("offer_key"), now)
        elif event.name == ARTIFACT_READY:
            _ready(session, workspace_id, event.buyer_id, props.get("artifact_id"), event.received_at)
        elif event.name == "Order Refunded":
            _refunded(session, workspace_id, props.get("order_id"))


def _promise(session: Session, workspace_id: str, order_id: object, offer_key: object, now: datetime) -> None:
    order = checkout_service.order_named_by(session=session, workspace_id=workspace_id, order_id=order_id)
    if order is None or order.status not in _PAID or order.paid_at is None:
        return  # not an order we took payment for (a tracked look-alike, or not paid)
    if not any(line.offer_key == offer_key for line in order.lines):
        return
    try:
        offer = offers_service.get_offer(session=session, workspace_id=workspace_id, key=str(offer_key))
    except OfferNotFound:
        return
    if offer.kind != "micro_offer" or not offer.turnaround_hours or not offer.deliverable_policy:
        return
    due_at = order.paid_at + timedelta(hours=offer.turnaround_hours)
    added = clock_repository.add_promise(session, {
        "workspace_id": workspace_id, "order_id": order.id, "buyer_id": order.buyer_id, "offer_key": offer.key,
        "policy_id": offer.deliverable_policy, "turnaround_hours": offer.turnaround_hours,
        "paid_at": order.paid_at, "due_at": due_at, "status": "open",
    })  # fmt: skip
    if added is not None:
        queue.enqueue(session, kind=DUE, key=job_key(workspace_id, order.id), workspace_id=workspace_id,
                      run_at=due_at, now=now)  # fmt: skip


def _ready(session: Session, workspace_id: str, buyer_id: str, artifact_id: object, at: datetime) -> None:
    if not isinstance(artifact_id, str) or not artifact_id or len(artifact_id) > 40:
        return
    try:
        artifact = assembly_service.get_artifact(
            session=session, workspace_id=workspace_id, artifact_id=artifact_id
        )
    except ArtifactNotFound:
        return  # a tracked look-alike: only a deliverable that exists and is ready meets a promise
    if artifact.downloadable_version is None:
        return
    trigger = str(artifact.provenance.get("trigger") or "")
    promise = None
    if trigger.startswith("order:"):
        promise = clock_repository.promise_of_order(session, workspace_id, trigger[6:], lock=True)
    if promise is None or promise.status not in ("open", "late") or promise.buyer_id != artifact.buyer_id:
        promise = clock_repository.oldest_unmet(session, workspace_id, artifact.buyer_id, artifact.policy)
    if promise is None or promise.status not in ("open", "late"):
        return
    on_time = promise.status == "open" and at <= promise.due_at  # once the creator was alerted, it is late
    promise.status, promise.met_at, promise.artifact_id, promise.on_time = "met", at, artifact.id, on_time


def _refunded(session: Session, workspace_id: str, order_id: object) -> None:
    order = checkout_service.order_named_by(session=session, workspace_id=workspace_id, order_id=order_id)
    if order is None or order.status != "refunded":
        return
    promise = clock_repository.promise_of_order(session, workspace_id, order.id, lock=True)
    if promise is not None and promise.status in ("open", "late"):
        promise.status = "canceled"


def due(*, session: Session, workspace_id: str, order_id: str, now: datetime) -> datetime | None:
    """The due job: an open promise whose time has come turns late, and the creator is alerted (once: the
    promise's status and the job's finish commit together)."""
    promise = clock_repository.promise_of_order(session, workspace_id, order_id, lock=True)
    if promise is None or promise.status != "open":
        return None
    if now < promise.due_at:
        return promise.due_at
    order = checkout_service.order_named_by(session=session, workspace_id=workspace_id, order_id=order_id)
    if order is None or order.status not in _PAID:
        promise.status = "canceled"
        return None
    promise.status, promise.late_at = "late", now
    _alert(session, promise)
    return None


def _alert(session: Session, promise: Promise) -> None:
    message = events_service.buyer_track(
        session, promise.workspace_id, promise.buyer_id, LATE_EVENT,
        {"promise_id": promise.id, "order_id": promise.order_id, "offer_key": promise.offer_key,
         "policy_id": promise.policy_id, "turnaround_hours": promise.turnaround_hours,
         "due_at": promise.due_at.isoformat()},
        f"promise-{promise.order_id}-late",
    )  # fmt: skip
    events_service.record_server_events(session, promise.workspace_id, [message])


def list_promises(
    *, session: Session, workspace_id: str, limit: int, cursor: str | None, status: str | None = None,
    buyer_id: str | None = None, offer_key: str | None = None,
) -> Page[PromiseRead]:  # fmt: skip
    """Promises newest first, by status, buyer and offer."""
    before = decode_cursor(cursor, types=(int,))
    rows = clock_repository.promises_page(session, workspace_id, limit=limit + 1,
                                          before_id=before[0] if before else None, status=status,
                                          buyer_id=buyer_id, offer_key=offer_key)  # fmt: skip
    return page_by_id(rows, limit, PromiseRead)
