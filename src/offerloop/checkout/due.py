"""Due work of the checkout domain: the job kinds that fire by themselves at a time, and their scheduling.

Every state with a due time enqueues one job at that time, keyed by the object, so scheduling again moves
the same job instead of adding one: a manual-provider subscription's period (or trial) end, its payment
retry date while past due, an unpaid order's drop-hold expiry. The handlers (``checkout/tasks.py``,
``subscriptions/tasks.py``) re-read the object and act only if it is still due, then say when it is next due. Stripe subscriptions get no due
work: Stripe renews, retries and cancels them and tells us by webhook.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.orm import Session

from offerloop.jobs import queue

PERIOD_END = "checkout.period_end"  # renew, convert a trial, or end a subscription set to cancel
PAYMENT_RETRY = "checkout.payment_retry"  # a past-due subscription's next retry date
HOLD_EXPIRY = "checkout.hold_expiry"  # an unpaid order's held drop units go back to stock
SWEEP = "checkout.due_sweep"  # recurring: enqueue due work whose job is missing
SWEEP_EVERY_S = 300.0


def key(workspace_id: str, object_id: str) -> str:
    """A due job's key: the object's id within its workspace (ids are not trusted to be unique across them)."""
    return f"{workspace_id}/{object_id}"


def object_id(job_key: str) -> str:
    return job_key.split("/", 1)[1]


def at(session: Session, kind: str, object_id: str, workspace_id: str, when: datetime) -> None:
    """Run ``kind`` for the object at ``when`` (an earlier queued time is kept; its handler re-reads the state)."""
    queue.enqueue(
        session, kind=kind, key=key(workspace_id, object_id), workspace_id=workspace_id, run_at=when
    )
