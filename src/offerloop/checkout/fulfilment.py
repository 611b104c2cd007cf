"""Fulfilment: one task per component of a paid order, each delivered by its own job after commit.

Jobs run each on its own, retried with backoff, so a failing component never fails the order nor blocks
the others (handler in ``checkout/tasks.py``).
"""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from offerloop.assembly import service as assembly_service
from offerloop.checkout import repository
from offerloop.checkout.exceptions import OrderNotFound
from offerloop.checkout.schemas import RetryQueued
from offerloop.core.clock import utcnow
from offerloop.entitlements import service as entitlements_service
from offerloop.identity import service as identity_service
from offerloop.jobs import queue, runner
from offerloop.models import FulfilmentTask, Order
from offerloop.offers.catalog import Catalog, Offer
from offerloop.subscriptions import service as subscriptions_service

FULFIL_KIND = "checkout.fulfil"
MAX_ATTEMPTS = 5


def components(catalog: Catalog, offer: Offer) -> list[dict[str, Any]]:
    """What buying ``offer`` delivers: its components, those of the offers it includes, its deliverable."""
    specs = [c.to_dict() for c in offer.components]
    for key in offer.includes:  # a bundle grants what each included offer grants
        included = catalog.offer(key)
        if included is not None:
            specs.extend(c.to_dict() for c in included.components)
    if (
        offer.kind == "micro_offer"
        and offer.deliverable_policy
        and not any(s["component"] == "deliverable" for s in specs)
    ):
        specs.append(
            {
                "component": "deliverable",
                "ref": offer.deliverable_policy,
                "quantity": None,
                "access_days": None,
            }
        )
    return specs


def queue_task(session: Session, order: Order, spec: dict[str, Any], source: str, at: datetime) -> None:
    """One fulfilment task per component, driven by its job (kind ``checkout.fulfil``, key the task id)."""
    if repository.task(session, order.workspace_id, order.id, spec["component"], spec["ref"]) is not None:
        return
    task = FulfilmentTask(
        workspace_id=order.workspace_id, order_id=order.id, buyer_id=order.buyer_id, component=spec["component"],
        ref=spec["ref"], spec={**spec, "source": source}, status="pending", attempts=0, next_attempt_at=at,
    )  # fmt: skip
    repository.add(session, task)
    repository.flush(session)  # the job is keyed by the task's id
    queue.enqueue(session, kind=FULFIL_KIND, key=str(task.id), workspace_id=order.workspace_id, run_at=at)


# -- fulfilment (after commit, one task at a time) -----------------------------------------------------


def fulfil(*, session: Session, task: FulfilmentTask, now: datetime) -> dict[str, Any]:
    """Deliver one component: entitlements for access, a personalized deliverable for "deliverable".

    The order (and the subscription a grant comes from) is read under its row lock, as refunds and
    cancellations take it: a task of a refunded or canceled order, or of a canceled subscription, is
    skipped (``{"skipped": why}``), whichever of the payment, the refund and this task ran first. A plan's
    quota is not granted during its trial: quotas start with the first paid period (``quota_reset``)."""
    spec = task.spec
    order = repository.order_for_update(session, task.workspace_id, task.order_id)
    if order is None or order.status not in ("paid", "partially_refunded"):
        return {"skipped": f"order is {order.status if order else 'gone'}"}
    source = str(spec.get("source") or task.order_id)
    sub = (
        subscriptions_service.lock(session=session, workspace_id=task.workspace_id, subscription_id=source)
        if source != order.id
        else None
    )
    if sub is not None and sub.status == "canceled":
        return {"skipped": "subscription is canceled"}
    if identity_service.get_buyer(
        session=session, workspace_id=task.workspace_id, buyer_id=task.buyer_id
    ).deleted:
        return {"skipped": "buyer is erased"}  # paid after the erasure: booked, but delivered to no one
    if sub is not None and sub.status == "trialing" and spec.get("quantity") is not None:
        return {"deferred": "quotas start with the first paid period"}
    if task.component == "deliverable":
        artifact = assembly_service.request_artifact(session=session, workspace_id=task.workspace_id, buyer_id=task.buyer_id,
                                                     policy_id=task.ref, trigger=f"order:{task.order_id}",
                                                     offer_value_minor=order.total)  # fmt: skip
        return {"artifact_id": artifact["id"]}
    ends = now + timedelta(days=int(spec["access_days"])) if spec.get("access_days") else None
    if sub is not None:  # access follows the subscription (a paused or ending one has an access end)
        ends = subscriptions_service.access_end(sub, ends)
    granted = entitlements_service.grant(
        session=session, workspace_id=task.workspace_id, buyer_id=task.buyer_id, component=task.component, ref=task.ref,
        source=source, access_ends_at=ends, quantity=spec.get("quantity"), actor="fulfilment",
    )  # fmt: skip
    return {"entitlement_id": granted.id}


def run_task(*, session: Session, workspace_id: str, task_id: int, now: datetime) -> FulfilmentTask | None:
    """The fulfilment job's work, in the job's transaction: deliver a pending task once (done, or canceled
    when its order no longer wants it). A task no longer pending (delivered, canceled) is left alone."""
    # Not locked here: `fulfil` locks the order first, in the order refunds take their locks.
    task = repository.task_by_id(session, workspace_id, task_id)
    if task is None or task.status != "pending":
        return None
    task.result = fulfil(session=session, task=task, now=now)
    task.status = "canceled" if "skipped" in task.result else "done"
    task.done_at, task.attempts = now, task.attempts + 1
    return task


def task_failed(
    *, session: Session, workspace_id: str, task_id: int, attempts: int, error: str, retry_at: datetime,
    gave_up: bool,
) -> None:  # fmt: skip
    """The task mirrors its job's failure: attempts, the error, the next try, or failed when it gave up."""
    task = repository.task_by_id(session, workspace_id, task_id, lock=True)
    if task is None or task.status != "pending":
        return
    task.attempts, task.last_error = attempts, error[:2000]
    if gave_up:
        task.status = "failed"
    else:
        task.next_attempt_at = retry_at


def run_fulfilment(*, db: Any, now: datetime | None = None, limit: int = 100) -> list[tuple[str, str, str]]:
    """Run the fulfilment jobs due now in this thread (tests, CLI): (order, component, status) of each task
    run, status done, canceled, retrying or failed. Retries and giving up come from the job mechanism."""
    from offerloop.checkout import tasks  # noqa: F401  (registers the fulfilment job; it imports this module)

    done: list[tuple[str, str, str]] = []
    owner = runner.owner_id(":fulfil")
    while len(done) < limit and (
        ran := runner.run_due(db, owner=owner, now=now, only=(FULFIL_KIND,), deps={"fulfilled": done})
    ):
        for r in ran:
            if r.status in ("retrying", "parked"):
                with db.read() as session:
                    task = repository.task_by_id(session, str(r.workspace_id), int(r.key))
                    if task is not None:
                        status = "retrying" if r.status == "retrying" else "failed"
                        done.append((task.order_id, task.component, status))
    return done


def retry_task(
    *, session: Session, workspace_id: str, order_id: str, component: str, ref: str
) -> RetryQueued:
    """Queue a failed (or canceled) component of the order again, attempts reset."""
    task = repository.task(session, workspace_id, order_id, component, ref)
    if task is None or task.workspace_id != workspace_id:
        raise OrderNotFound(f"no {component} {ref} task on order {order_id}")
    task.status, task.next_attempt_at, task.attempts = "pending", utcnow(), 0
    queue.enqueue(
        session, kind=FULFIL_KIND, key=str(task.id), workspace_id=workspace_id, run_at=task.next_attempt_at
    )
    return RetryQueued(component=component, ref=ref, status=task.status)
