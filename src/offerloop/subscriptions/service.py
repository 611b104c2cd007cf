"""Subscriptions: start a plan from a paid order, drive its lifecycle, keep access and quotas in step, and
act on its own at its period end and retry dates (manual provider; Stripe reports its own by webhook).

The lifecycle itself is the pure state machine of ``subscriptions.lifecycle``; this module stores it, turns
its effects into buyer events, grants and (through ``checkout.service``) the orders and ledger entries of
charges and credits.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy.orm import Session

from offerloop.checkout import due
from offerloop.checkout import service as checkout_service
from offerloop.core.clock import utcnow
from offerloop.core.errors import ValidationFailed
from offerloop.core.ids import new_id
from offerloop.core.money import Money
from offerloop.core.pages import InvalidCursor, Page, decode_cursor, page_of
from offerloop.entitlements import service as entitlements_service
from offerloop.identity import service as identity_service
from offerloop.models import Order
from offerloop.models import Subscription as SubscriptionRow
from offerloop.offers import service as offers_service
from offerloop.offers.catalog import Offer
from offerloop.subscriptions import repository
from offerloop.subscriptions.exceptions import InvalidAction, ProviderManaged, SubscriptionNotFound
from offerloop.subscriptions.lifecycle import (
    Cancel,
    Downgrade,
    Effect,
    Event,
    Pause,
    PausedBy,
    PaymentFailed,
    PaymentSucceeded,
    Renew,
    Resume,
    Start,
    Subscription,
    Upgrade,
    apply,
    new_subscription,
)
from offerloop.subscriptions.schemas import Action, Status, SubscriptionRead, SubscriptionState

SCHEDULER = "schedule"  # the actor of due work on the buyer's record and the entitlements' history
SWEEP_LIMIT = 500  # rows per kind per sweep pass; a full pass runs again at once
PROVIDER = "stripe"  # the actor of a change the payment provider reports (its webhooks)
#: The actions asked for here that a provider-billed subscription makes at the provider first.
_PROVIDER_ACTIONS = ("cancel", "pause", "resume", "change_plan")
#: The payment steps: on a provider-billed subscription only the provider's webhooks take them.
_PAYMENT_ACTIONS = ("renew", "payment_failed", "payment_succeeded")

# -- stored state ----------------------------------------------------------------------------------


def _to_json(sub: Subscription) -> dict[str, Any]:
    data: dict[str, Any] = {}
    for f in dataclasses.fields(sub):
        v = getattr(sub, f.name)
        if isinstance(v, datetime):
            v = v.isoformat()
        elif isinstance(v, Mapping):
            v = dict(v)
        elif isinstance(v, tuple):
            v = list(v)
        data[f.name] = v
    return data


def state_of(row: SubscriptionRow) -> Subscription:
    """The lifecycle state stored on the row."""
    values = dict(row.state)
    for f in dataclasses.fields(Subscription):
        v = values.get(f.name)
        if isinstance(v, str) and "datetime" in str(f.type):
            values[f.name] = datetime.fromisoformat(v)
    values["retry_days"] = tuple(values.get("retry_days") or ())
    return Subscription(**values)


def subscription_read(row: SubscriptionRow) -> SubscriptionRead:
    return SubscriptionRead(
        id=row.id, buyer_id=row.buyer_id, order_id=row.order_id, offer_key=row.offer_key,
        status=row.status,
        state=SubscriptionState.model_validate(row.state), provider_subscription_id=row.provider_subscription_id,
        created_at=row.created_at,
    )  # fmt: skip


def access_end(row: SubscriptionRow, ends: datetime | None) -> datetime | None:
    """When access granted now from the subscription ends: at the pause of a paused one."""
    if row.status == "paused":
        paused = state_of(row).paused_at
        return paused if paused is not None else ends
    return ends


# -- reads -----------------------------------------------------------------------------------------


def get(*, session: Session, workspace_id: str, subscription_id: str) -> SubscriptionRead:
    return subscription_read(row_of(session, workspace_id, subscription_id))


def row_of(
    session: Session, workspace_id: str, subscription_id: str, *, lock: bool = False
) -> SubscriptionRow:
    """The stored subscription (its row locked with ``lock``); SubscriptionNotFound when there is none."""
    find = repository.subscription_for_update if lock else repository.subscription
    row = find(session, workspace_id, subscription_id)
    if row is None:
        raise SubscriptionNotFound(f"subscription {subscription_id} does not exist")
    return row


def lock(*, session: Session, workspace_id: str, subscription_id: str) -> SubscriptionRow | None:
    """The subscription's row locked for this transaction (None when there is none by that id)."""
    return repository.subscription_for_update(session, workspace_id, subscription_id)


def by_provider(*, session: Session, workspace_id: str, provider_id: str) -> SubscriptionRow | None:
    """The subscription the provider knows by ``provider_id``."""
    return repository.by_provider(session, workspace_id, provider_id)


def of_buyer(*, session: Session, workspace_id: str, buyer_id: str) -> list[SubscriptionRow]:
    """The subscriptions of ``buyer_id`` (as stored: a live id) and of the buyers merged into it (a merge
    moves none), oldest first."""
    mine = identity_service.lineage(session=session, workspace_id=workspace_id, buyer_id=buyer_id)
    return repository.of_buyer(session, workspace_id, mine)


def list_subscriptions(
    *, session: Session, workspace_id: str, limit: int, cursor: str | None = None, status: Status | None = None,
    buyer_id: str | None = None, offer_key: str | None = None,
) -> Page[SubscriptionRead]:  # fmt: skip
    """The workspace's subscriptions, newest first (ids are time-ordered and unique), filtered by status,
    buyer (its lineage: a merged-away id answers with its survivor's) or plan."""
    after = decode_cursor(cursor, types=(str,))
    if after is not None and not after[0].startswith("sub_"):  # another list's cursor
        raise InvalidCursor("cursor does not belong to this list: pass the next_cursor of its previous page")
    buyer_ids = None
    if buyer_id is not None:
        buyer_ids = identity_service.survivor_lineage(
            session=session, workspace_id=workspace_id, buyer_id=buyer_id
        )
    rows = repository.page(session, workspace_id, limit=limit + 1, before_id=after[0] if after else None,
                           status=status, buyer_ids=buyer_ids, offer_key=offer_key)  # fmt: skip
    return page_of(rows, limit, key=lambda r: (r.id,), item=subscription_read)


# -- lifecycle -------------------------------------------------------------------------------------


def start(*, session: Session, order: Order, offer: Offer, at: datetime, provider_ref: str | None) -> str:
    """The subscription a paid order of a plan starts (trialing, or active with its first period)."""
    sub = new_subscription(offer, order.currency)
    sub, effects = apply(sub, Start(trial_days=offer.trial_days), at=at)
    if sub.state != "trialing":
        sub, more = apply(sub, PaymentSucceeded(), at=at)
        effects += more
    row = SubscriptionRow(id=new_id("sub"), workspace_id=order.workspace_id, buyer_id=order.buyer_id, order_id=order.id,
                          offer_key=offer.key, status=sub.state, state=_to_json(sub),
                          provider_subscription_id=provider_ref, created_at=at, updated_at=at)  # fmt: skip
    repository.add(session, row)
    started = {"subscription_id": row.id, "plan": offer.key, "state": sub.state, "order_id": order.id}
    checkout_service.buyer_event(
        session, order.workspace_id, order.buyer_id, "Subscription Started", started, f"{row.id}-started"
    )
    _schedule(session, row, order)
    return row.id


# How far ahead of the server's clock a caller's ``at`` may be (its clock may run a little fast).
AT_SKEW = timedelta(minutes=5)


def check_requested_at(
    *, session: Session, workspace_id: str, subscription_id: str, at: datetime, now: datetime
) -> None:
    """Refuse (422) an ``at`` a caller gave before the subscription's last recorded change, or after both now
    and the current period's end (a creator may date a step to the period's end, as a renewal is). The paused
    time is added to the period and a plan change is prorated from ``at``: a pause dated years back or a resume
    dated decades ahead gave years of access nobody paid for; what is recorded stays in time order."""
    row = row_of(session, workspace_id, subscription_id)
    last = row.updated_at
    if at < last:
        raise ValidationFailed(
            f"at {at.isoformat()} is before the subscription's last recorded change ({last.isoformat()})",
            details={"field": "at", "not_before": last.isoformat()},
        )
    latest = max(now, state_of(row).current_period_end or now) + AT_SKEW
    if at > latest:
        raise ValidationFailed(
            f"at {at.isoformat()} is after the current period's end and after now (not after {latest.isoformat()})",
            details={"field": "at", "not_after": latest.isoformat()},
        )


def act(
    *, session: Session, workspace_id: str, subscription_id: str, action: Action | str, plan: str | None = None,
    at_period_end: bool = True, at: datetime | None = None, actor: str = "api",
    provider: checkout_service.StripeProvider | None = None, prorations: tuple[Money, Money] | None = None,
    by: PausedBy | None = None,
) -> SubscriptionRead:  # fmt: skip
    """Drive the lifecycle: renew, payment_failed, payment_succeeded, pause, resume, cancel, change_plan.
    Every step is an event on the buyer record; charges and credits go to the ledger; access follows. On a
    subscription Stripe bills, a cancel, pause, resume or plan change asked for here (``actor`` not "stripe") is
    made in Stripe through ``provider`` first, and a downgrade's credit refunded there; if Stripe does not, the
    error is raised and the caller's unit of work rolls back (nothing changes). Stripe's report of a change
    already recorded here is a no-op. Its payment steps (renew, payment_failed, payment_succeeded) are Stripe's
    alone (ProviderManaged, 409, when asked for by anyone else). ``prorations`` (net, tax; signed): a plan change's
    prorations the provider charged with this renewal, booked on the renewal's order. ``by``: who a pause is
    the pause of, when not who reports it (the provider reporting a pause the buyer asked for here)."""
    if action in _PAYMENT_ACTIONS and actor != PROVIDER:
        billed = row_of(session, workspace_id, subscription_id)
        if not checkout_service.collects_itself(session=session, row=billed):
            # Stripe charges, retries and renews it, and its invoice webhooks record each payment: a renewal or a
            # payment recorded here would book money nobody charged (or drop money Stripe took)
            raise ProviderManaged(
                f"subscription {subscription_id} is billed by its payment provider, which charges and renews it: "
                f"{action} is recorded from the provider's webhooks, not asked for here",
                details={"action": action, "provider_subscription_id": billed.provider_subscription_id},
            )
    if action == "change_plan" and actor != "stripe":  # a downgrade refunds from the orders: lock them first
        checkout_service.lock_orders_of_subscription(
            session=session, row=row_of(session, workspace_id, subscription_id)
        )
    row = row_of(session, workspace_id, subscription_id, lock=True)
    at = at or utcnow()
    sub = state_of(row)
    event: Event
    if action == "renew":
        event = Renew()
    elif action == "payment_failed":
        # a provider billing the subscription retries it by its own schedule and reports when it gives up
        event = PaymentFailed(
            provider_retries=actor == PROVIDER
            and not checkout_service.collects_itself(session=session, row=row)
        )
    elif action == "payment_succeeded":
        event = PaymentSucceeded()
    elif action == "pause":
        # a pause the provider reports (its dashboard) is taken in any state it makes one in
        reported = actor == PROVIDER and not checkout_service.collects_itself(session=session, row=row)
        event = Pause(by=by or _role(actor), reported=reported)
    elif action == "resume":
        # a Stripe subscription's period runs on through pause_collection: our period stays Stripe's
        event = Resume(by=_role(actor), extend=checkout_service.collects_itself(session=session, row=row))
    elif action == "cancel":
        event = Cancel(at_period_end=at_period_end)
    elif action == "change_plan":
        if not plan:
            raise InvalidAction("change_plan needs the new plan's offer key", code="plan_required")
        target = offers_service.get_offer(session=session, workspace_id=workspace_id, key=plan)
        price = target.price(sub.currency)
        if not target.recurring or price is None:
            raise InvalidAction(f"{plan} is not a plan offered in {sub.currency}", code="invalid_plan")
        if not target.active and actor != PROVIDER:
            # not for sale (checkout refuses it too); the provider reporting a subscription on it is a fact
            raise InvalidAction(f"{plan} is not for sale", code="invalid_plan")
        kind = Upgrade if price.amount >= sub.amount else Downgrade
        event = kind(plan=plan, amount=price.amount, quotas=dict(target.quotas), interval=target.interval)
    else:
        raise InvalidAction(f"unknown action {action!r}", code="invalid_action")
    if actor == PROVIDER and _reached(sub, event):
        # the provider reporting a change already recorded here (the echo of one made here, maybe delivered
        # while that change was being committed): nothing to do
        return subscription_read(row)
    before, old_plan, period = sub.state, sub.plan, (sub.current_period_start, sub.current_period_end)
    previous = sub
    sub, effects = apply(sub, event, at=at)
    if not effects and sub == previous:
        # asked twice (a double submit, a retried request): nothing changed, so nothing is recorded either
        return subscription_read(row)
    charged = None
    if actor != PROVIDER and action in _PROVIDER_ACTIONS:
        # a subscription Stripe bills changes there first: if Stripe does not make the change, the error rolls
        # the caller's unit of work back and nothing changes here either; what Stripe charged for it is booked
        charged = checkout_service.change_in_provider(session=session, row=row, before=previous, after=sub,
                                                      at=at, provider=provider)  # fmt: skip
        if charged is not None and not any(e.kind == "charge" for e in effects):
            effects = [*effects, Effect("charge", charged[0], at=at, reason="proration")]
    row.state, row.status, row.updated_at = _to_json(sub), sub.state, at
    # the step's number names its buyer event: unique per step (two dated the same millisecond are two events),
    # and the same for a replay of it, which changes nothing and returned above without a new number
    row.steps = (row.steps or 0) + 1
    if action == "change_plan":
        row.offer_key = sub.plan
    try:
        _effects(session, row, effects, at, actor, provider, charged, prorations)
    except Exception:
        if actor != PROVIDER and action == "change_plan":
            # the downgrade is already made in Stripe, and its credit was not refunded there: it fails here (the
            # unit of work rolls back), so Stripe's price is put back too
            checkout_service.undo_in_provider(session=session, row=row, before=previous, after=sub, at=at,
                                              provider=provider)  # fmt: skip
        raise
    if action == "change_plan":
        _switch_grants(session, row, old_plan, sub.plan, actor)
    if before == "active" and sub.state in ("past_due", "canceled") and action == "payment_failed":
        checkout_service.renewal_unpaid(session=session, row=row, period=period, at=at, actor=actor)
    elif before == "past_due" and sub.state == "active":
        checkout_service.renewal_recovered(session=session, row=row, at=at)
    name = {"renew": "Subscription Renewed", "payment_failed": "Payment Failed", "payment_succeeded": "Payment Succeeded",
            "pause": "Subscription Paused", "resume": "Subscription Resumed", "cancel": "Subscription Canceled",
            "change_plan": "Subscription Changed"}[action]  # fmt: skip
    checkout_service.buyer_event(session, workspace_id, row.buyer_id, name,
                                 {"subscription_id": row.id, "plan": sub.plan, "from": before, "to": sub.state},
                                 f"{row.id}-{action}-step{row.steps}")  # fmt: skip
    _schedule(session, row)
    return subscription_read(row)


def record_failed_attempts(
    *, session: Session, workspace_id: str, subscription_id: str, attempts: int
) -> bool:
    """The provider's count of failed attempts of the open payment (Stripe's invoice ``attempt_count``, which is
    authoritative) as the subscription's ``failed_attempts``, when it is more than recorded: a failure event lost,
    or a retry Stripe made while collection was paused. Not a lifecycle step (nothing else changes, and no event
    is recorded: the step that made it past due was). Returns whether it changed."""
    row = row_of(session, workspace_id, subscription_id, lock=True)
    sub = state_of(row)
    if attempts <= sub.failed_attempts:
        return False
    row.state = _to_json(dataclasses.replace(sub, failed_attempts=attempts))
    return True


def _role(actor: str) -> PausedBy:
    """Who an actor acts for: the buyer (the buyer portal, ``buyer:<id>``) or the creator (their keys, console
    users, and their payment provider's dashboard, reported by its webhooks)."""
    return "buyer" if actor.startswith("buyer:") else "creator"


def _reached(sub: Subscription, event: Event) -> bool:
    """Whether the subscription is already where ``event`` takes it (a provider's report of it is a no-op)."""
    match event:
        case Cancel(at_period_end=False):
            return sub.state == "canceled"
        case Upgrade() | Downgrade():
            return event.plan == sub.plan
        case Resume():
            return sub.state != "paused" and not sub.cancel_at_period_end
        case Pause():
            return sub.state == "paused"
    return False


def _switch_grants(session: Session, row: SubscriptionRow, old_key: str, new_key: str, actor: str) -> None:
    """A plan change changes access: the old plan's components the new one lacks are revoked, the new plan's
    are granted (its quotas only once paid periods run: not during a trial)."""
    if old_key == new_key:
        return
    old = offers_service.get_offer(session=session, workspace_id=row.workspace_id, key=old_key)
    new = offers_service.get_offer(session=session, workspace_id=row.workspace_id, key=new_key)
    keep = {(c.component, c.ref) for c in new.components}
    for c in old.components:
        if (c.component, c.ref) not in keep:
            entitlements_service.revoke_grant(session=session, workspace_id=row.workspace_id, buyer_id=row.buyer_id,
                                              component=c.component, ref=c.ref, source=row.id,
                                              reason=f"plan changed to {new_key}", actor=actor)  # fmt: skip
    ends = access_end(row, None)
    for c in new.components:
        if c.component == "deliverable" or (c.quantity is not None and row.status == "trialing"):
            continue
        entitlements_service.grant(session=session, workspace_id=row.workspace_id, buyer_id=row.buyer_id,
                                   component=c.component, ref=c.ref, source=row.id, quantity=c.quantity,
                                   access_ends_at=ends, actor=actor)  # fmt: skip


def _effects(
    session: Session, row: SubscriptionRow, effects: list[Effect], at: datetime, actor: str,
    provider: checkout_service.StripeProvider | None = None, charged: tuple[Money, Money, str | None] | None = None,
    prorations: tuple[Money, Money] | None = None,
) -> None:  # fmt: skip
    """Carry the effects out. ``charged``: what the provider charged at once for a plan change (net, tax), booked
    instead of the lifecycle's proration (the provider's is over its own period, rounded per line)."""
    reported = actor == PROVIDER and not checkout_service.collects_itself(session=session, row=row)
    for effect in effects:
        if effect.kind == "charge" and reported and effect.reason in ("proration", "plan_change"):
            continue  # a plan change the provider reports: its invoice books what it charged (not our proration)
        if effect.kind == "charge" and charged is not None and effect.reason in ("proration", "plan_change"):
            net, tax, paid_by = charged
            if net.amount or tax.amount:
                checkout_service.charge_subscription(session=session, row=row, amount=net, at=at,
                                                     reason=effect.reason, tax=tax, provider_ref=paid_by)  # fmt: skip
        elif effect.kind == "charge" and effect.amount is not None and effect.amount.amount > 0:
            checkout_service.charge_subscription(
                session=session,
                row=row,
                amount=effect.amount,
                at=at,
                reason=effect.reason or "renewal",
                prorations=prorations if effect.reason in ("renewal", "first_period") else None,
            )
        elif effect.kind == "credit" and effect.amount is not None and effect.amount.amount > 0:
            checkout_service.credit_subscription(
                session=session, row=row, amount=effect.amount, at=at, actor=actor, provider=provider
            )
        elif effect.kind == "access_end":
            entitlements_service.set_access_end(session=session, workspace_id=row.workspace_id, source=row.id,
                                                access_ends_at=effect.at or at, actor=actor)  # fmt: skip
        elif effect.kind == "access_start":
            entitlements_service.set_access_end(session=session, workspace_id=row.workspace_id, source=row.id,
                                                access_ends_at=None, actor=actor)  # fmt: skip
        elif effect.kind == "quota_reset":
            _reset_quotas(session, row, actor)


def _reset_quotas(session: Session, row: SubscriptionRow, actor: str) -> None:
    """A new period restores each quota component of the plan to its granted quantity (access end kept); the
    first paid period grants them (a trial has none)."""
    plan = offers_service.get_offer(session=session, workspace_id=row.workspace_id, key=row.offer_key)
    held = {(e.component, e.ref): e for e in entitlements_service.list_for_buyer(
        session=session, workspace_id=row.workspace_id, buyer_id=row.buyer_id) if e.source == row.id}  # fmt: skip
    for component in plan.components:
        current = held.get((component.component, component.ref))
        if component.quantity is not None and (current is None or current.status == "active"):
            entitlements_service.grant(session=session, workspace_id=row.workspace_id, buyer_id=row.buyer_id,
                                       component=component.component, ref=component.ref, source=row.id,
                                       quantity=component.quantity, actor=actor,
                                       access_ends_at=current.access_ends_at if current else access_end(row, None))  # fmt: skip


# -- due work: a manual subscription acts by itself at its time (handlers in subscriptions/tasks.py) ----


def _period_due(row: SubscriptionRow) -> datetime | None:
    """When the period (or trial) of a trialing or active subscription ends; None for other states."""
    return state_of(row).current_period_end if row.status in ("trialing", "active") else None


def _retry_due(row: SubscriptionRow) -> datetime | None:
    return state_of(row).next_retry_at if row.status == "past_due" else None


def _schedule(session: Session, row: SubscriptionRow, first: Order | None = None) -> None:
    """Enqueue what the subscription's state makes due next (nothing for a Stripe subscription)."""
    if not checkout_service.collects_itself(session=session, row=row, first=first):
        return
    for kind, when in ((due.PERIOD_END, _period_due(row)), (due.PAYMENT_RETRY, _retry_due(row))):
        if when is not None:
            due.at(session, kind, row.id, row.workspace_id, when)


def _due_subscription(session: Session, workspace_id: str, subscription_id: str) -> SubscriptionRow | None:
    row = repository.subscription_for_update(session, workspace_id, subscription_id)
    return row if row is not None and checkout_service.collects_itself(session=session, row=row) else None


def period_end_due(
    *, session: Session, workspace_id: str, subscription_id: str, now: datetime
) -> datetime | None:
    """A manual subscription whose period (or trial) has ended by ``now`` takes the renew step, as the renew
    action does: a charged renewal order, a trial converted with its first charge, or the end of one set to
    cancel at period end (access ends at the period's end). Nothing when it is not due (renewed, canceled,
    paused, past due since). Returns when its period next ends."""
    row = _due_subscription(session, workspace_id, subscription_id)
    if row is None:
        return None
    end = _period_due(row)
    if end is not None and end <= now:  # on the period's end, as the state machine dates the charge
        act(session=session, workspace_id=workspace_id, subscription_id=row.id, action="renew", at=end,
            actor=SCHEDULER)  # fmt: skip
    return _period_due(row)


def payment_retry_due(
    *, session: Session, workspace_id: str, subscription_id: str, now: datetime
) -> datetime | None:
    """A past-due manual subscription at its retry date. The manual provider has no card to charge again: the
    retry succeeds when the payment was recorded (``payment_succeeded``) before it, which made the subscription
    active and this a no-op; otherwise the attempt fails, scheduling the next retry or, after the last one,
    canceling the subscription and ending access (``subscriptions.lifecycle``: +1, +3, +5 days). Returns when
    the next retry is due."""
    row = _due_subscription(session, workspace_id, subscription_id)
    if row is None:
        return None
    when = _retry_due(row)
    if when is not None and when <= now:
        act(session=session, workspace_id=workspace_id, subscription_id=row.id, action="payment_failed", at=when,
            actor=SCHEDULER)  # fmt: skip
    return _retry_due(row)


def sweep_due(*, session: Session, limit: int = SWEEP_LIMIT) -> int:
    """Enqueue the due work of subscriptions whose job is missing; returns how many it scheduled."""
    rows = repository.unscheduled(
        session, kind=due.PERIOD_END, statuses=("trialing", "active"), limit=limit
    ) + repository.unscheduled(session, kind=due.PAYMENT_RETRY, statuses=("past_due",), limit=limit)
    for row in rows:
        _schedule(session, row)
    return len(rows)


def end_for_refund(
    *, session: Session, order: Order, at: datetime, actor: str, reason: str,
    provider: checkout_service.StripeProvider | None = None,
) -> None:  # fmt: skip
    """A fully refunded order that started or renewed a subscription: the subscription is canceled now (in
    Stripe first, through ``provider``, when Stripe bills it and the refund was asked for here) and everything
    it granted is revoked. A refund Stripe reports (``actor`` "stripe": made in its dashboard, or the money of a
    refund asked for here whose cancel then failed) leaves a subscription Stripe bills as it is."""
    subs = {line.get("subscription_id") for line in order.lines} - {None}
    for row in repository.of_buyer(session, order.workspace_id, (order.buyer_id,)):
        if row.order_id == order.id or row.id in subs:
            if actor == PROVIDER and not checkout_service.collects_itself(session=session, row=row):
                # Stripe's refund is not Stripe's cancel: refunding a payment in Stripe's dashboard leaves the
                # subscription active there, and Stripe goes on charging it. Its own state, reported by its
                # customer.subscription.* webhooks, is what drives ours (a cancel in the dashboard, with or
                # without a refund, arrives as customer.subscription.deleted). Canceling here alone would drop
                # the money of Stripe's next invoices; canceling in Stripe from this webhook would turn a report
                # into a command: a goodwill refund of one period would end a paying subscription for good (a
                # canceled Stripe subscription cannot be restarted), a webhook would hold the order's lock
                # across a call to Stripe, and a Stripe failure would have Stripe redeliver the refund for days.
                # Mirroring Stripe keeps what is charged and what is booked equal by construction; a full refund
                # asked for here (an offerloop refund ends the purchase) cancels in Stripe first instead.
                continue
            if row.status not in ("canceled", "incomplete"):
                act(session=session, workspace_id=order.workspace_id, subscription_id=row.id,
                    action="cancel", at_period_end=False, at=at, actor=actor, provider=provider)  # fmt: skip
            entitlements_service.revoke_source(session=session, workspace_id=order.workspace_id, source=row.id,
                                               reason=reason, actor=actor)  # fmt: skip


# What ends, for journeys that fire before it: the trial of a trialing subscription, the period of a paying one.
_ENDS: dict[str, tuple[str, tuple[str, ...]]] = {
    "trial": ("trial_end", ("trialing",)),
    "subscription": ("current_period_end", ("active", "past_due")),
}


def ending_between(
    *, session: Session, workspace_id: str, what: str, start: datetime, end: datetime,
    after: tuple[datetime, str] | None = None, limit: int = 500,
) -> list[tuple[SubscriptionRow, datetime]]:  # fmt: skip
    """Subscriptions whose trial (``what`` "trial") or current period ("subscription") ends in (start, end],
    soonest first, a page of ``limit`` after ``after`` ((end, id) of the last one seen), with that end."""
    field, statuses = _ENDS[what]

    def text(at: datetime) -> str:
        return at.astimezone(UTC).isoformat()

    rows = repository.ending_between(
        session, workspace_id, field, statuses, text(start), text(end),
        (text(after[0]), after[1]) if after is not None else None, limit,
    )  # fmt: skip
    return [(row, datetime.fromisoformat(row.state[field])) for row in rows]
