"""The subscription lifecycle as a pure state machine, with proration and per-period quotas.

:func:`apply` takes a :class:`Subscription`, an event and the instant it happens, and returns the next
subscription plus a list of :class:`Effect` values: plain data the service turns into buyer events and
ledger entries. Nothing here reads a clock, a database or a payment provider.

States and events (anything not listed raises :class:`SubscriptionError`, code ``invalid_transition``)::

    incomplete --Start(trial_days>0)--> trialing          (access starts, no charge)
    incomplete --Start()--> incomplete                    (charge the first period)
    incomplete --PaymentSucceeded--> active               (first period starts at the payment)
    trialing   --Renew (at trial end)--> active           (charge the first period, quotas reset)
    active     --Renew (at period end)--> active          (next period, charge, quotas reset)
    active     --PaymentFailed--> past_due                (retry at +1, +3, +5 days from the failure)
    past_due   --PaymentSucceeded--> active
    past_due   --PaymentFailed--> past_due | canceled     (canceled after the last retry fails)
    active     --Pause--> paused --Resume--> active       (the paused time is added to the period)
    trialing, past_due --Pause(reported)--> paused --Resume--> trialing, past_due (a pause the payment provider
                                                          reports; back to the state it paused, if still due)
    active, trialing --Cancel(at_period_end)--> (same; Renew then cancels)
    active, trialing --Resume (a cancel scheduled)--> (same, the cancel withdrawn; a trial only before it ends)
    any but canceled --Cancel(at_period_end=False)--> canceled
    active, trialing --Upgrade / Downgrade--> (same; prorated charge or credit when active)

Renewal is optimistic, as with card processors: the new period starts when ``Renew`` is applied and
its charge is emitted; a failure of that charge arrives as ``PaymentFailed`` and makes it past due.

Monthly periods follow the billing anchor's day of month, clamped to shorter months: a subscription
started on January 31 renews on February 28 (29 in leap years), then March 31, April 30, ...
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import datetime, timedelta
from types import MappingProxyType
from typing import ClassVar, Final, Literal, TypeAlias

from offerloop.core.money import Money, currency_code
from offerloop.offers.catalog import INTERVALS, Interval, Offer
from offerloop.offers.exceptions import PricingError
from offerloop.subscriptions.exceptions import (
    PAUSED_BY_CREATOR,
    QUOTA_EXHAUSTED,
    QUOTA_UNAVAILABLE,
    QUOTA_UNKNOWN,
    SubscriptionError,
)
from offerloop.subscriptions.periods import _iso, _utc
from offerloop.subscriptions.periods import add_months as add_months
from offerloop.subscriptions.periods import next_period_end as next_period_end
from offerloop.subscriptions.periods import prorate as prorate

__all__ = [
    "DEFAULT_RETRY_DAYS",
    "STATES",
    "Cancel",
    "Downgrade",
    "Effect",
    "EffectKind",
    "Event",
    "Pause",
    "PausedBy",
    "PaymentFailed",
    "PaymentSucceeded",
    "Renew",
    "Resume",
    "Start",
    "State",
    "Subscription",
    "Upgrade",
    "add_months",
    "apply",
    "new_subscription",
    "next_period_end",
    "prorate",
    "quota_remaining",
    "use_quota",
]

State: TypeAlias = Literal["incomplete", "trialing", "active", "past_due", "paused", "canceled"]
#: Who asks for a pause or resume: the creator (their team, their keys, their payment provider's dashboard) or
#: the buyer (the buyer portal).
PausedBy: TypeAlias = Literal["creator", "buyer"]
STATES: Final[tuple[str, ...]] = ("incomplete", "trialing", "active", "past_due", "paused", "canceled")
# Retries after a failed renewal, in days after that first failure; the last failure cancels.
DEFAULT_RETRY_DAYS: Final[tuple[int, ...]] = (1, 3, 5)
# Quotas are used while the buyer has paid access (past due still has access during the retries).
_QUOTA_STATES: Final = ("active", "past_due")

EffectKind: TypeAlias = Literal[
    "state",  # before -> after
    "charge",  # amount to collect (positive), at when it is due; reason first_period|renewal|proration|plan_change
    "credit",  # amount owed back to the buyer (positive); reason proration|plan_change
    "quota_reset",  # at: the start of the period whose quotas start from zero
    "access_start",  # at
    "access_end",  # at
    "retry_scheduled",  # at: when to charge again
    "cancel_scheduled",  # at: the period end when the subscription will cancel
    "cancel_unscheduled",  # a scheduled cancellation was withdrawn
    "plan_changed",  # before -> after (plan keys); reason upgrade|downgrade
]


@dataclass(frozen=True, slots=True)
class Effect:
    """Something the service must do or record because of a transition."""

    kind: EffectKind
    amount: Money | None = None
    at: datetime | None = None
    before: str | None = None
    after: str | None = None
    reason: str | None = None


# --------------------------------------------------------------------------------------------------
# The subscription


@dataclass(frozen=True, slots=True)
class Subscription:
    """One buyer's subscription to a plan. Datetimes are aware UTC; amounts are minor units."""

    plan: str
    currency: str
    amount: int  # per interval
    interval: Interval
    state: State = "incomplete"
    started_at: datetime | None = None
    current_period_start: datetime | None = None
    current_period_end: datetime | None = None
    anchor_day: int | None = None  # the day of month periods end on (clamped in short months)
    trial_end: datetime | None = None
    failed_attempts: int = 0  # failed charges of the open payment, the first failure included
    past_due_since: datetime | None = None
    next_retry_at: datetime | None = None
    cancel_at_period_end: bool = False
    paused_at: datetime | None = None
    paused_by: PausedBy | None = None  # who paused it: a creator's pause is not the buyer's to lift
    paused_from: State | None = (
        None  # the state it was paused in (None: active, as every pause before it existed)
    )
    canceled_at: datetime | None = None
    quotas: Mapping[str, int] = field(default_factory=dict, hash=False)  # allowed uses per period
    quota_used: Mapping[str, int] = field(default_factory=dict, hash=False)  # uses this period
    retry_days: tuple[int, ...] = DEFAULT_RETRY_DAYS

    def __post_init__(self) -> None:
        object.__setattr__(self, "currency", currency_code(self.currency))
        if isinstance(self.amount, bool) or not isinstance(self.amount, int) or self.amount < 0:
            raise ValueError(f"amount must be a non-negative integer of minor units, got {self.amount!r}")
        if self.interval not in INTERVALS:
            raise ValueError(f"interval must be month or year, got {self.interval!r}")
        if self.state not in STATES:
            raise ValueError(f"state must be one of {', '.join(STATES)}, got {self.state!r}")
        if any(d < 1 for d in self.retry_days) or list(self.retry_days) != sorted(set(self.retry_days)):
            raise ValueError(f"retry_days must be increasing positive days, got {self.retry_days!r}")
        object.__setattr__(self, "quotas", MappingProxyType(dict(self.quotas)))
        object.__setattr__(self, "quota_used", MappingProxyType(dict(self.quota_used)))

    @property
    def price(self) -> Money:
        return Money(self.currency, self.amount)


def new_subscription(
    offer: Offer, currency: str, *, retry_days: Sequence[int] = DEFAULT_RETRY_DAYS
) -> Subscription:
    """An ``incomplete`` subscription to a recurring catalog offer, priced in ``currency``.

    Start it with ``Start(trial_days=offer.trial_days)`` (or ``Start()`` to skip the trial).
    """
    if not offer.recurring or offer.interval is None:
        raise ValueError(f"{offer.key!r} is a {offer.kind}, not a subscription or tier")
    price = offer.price(currency)
    if price is None:
        raise PricingError(f"{offer.key!r} is not offered in {currency}", code="currency_not_offered")
    return Subscription(
        plan=offer.key,
        currency=price.currency,
        amount=price.amount,
        interval=offer.interval,
        quotas=offer.quotas,
        retry_days=tuple(retry_days),
    )


# --------------------------------------------------------------------------------------------------
# Events


@dataclass(frozen=True, slots=True)
class Start:
    """The buyer subscribes: a trial of ``trial_days`` days, or (0) a charge for the first period."""

    trial_days: int = 0
    name: ClassVar[str] = "start"
    verb: ClassVar[str] = "start"


@dataclass(frozen=True, slots=True)
class PaymentSucceeded:
    name: ClassVar[str] = "payment_succeeded"
    verb: ClassVar[str] = "record a successful payment for"


@dataclass(frozen=True, slots=True)
class PaymentFailed:
    name: ClassVar[str] = "payment_failed"
    verb: ClassVar[str] = "record a failed payment for"
    # The provider retries and decides when to give up (Stripe's retry settings; it reports the end as the
    # subscription canceled): its failures keep the subscription past due, however many, instead of
    # canceling it after ``retry_days`` — a retry it makes later may still succeed, and charge the buyer.
    provider_retries: bool = False


@dataclass(frozen=True, slots=True)
class Renew:
    """The current period (or trial) reached its end."""

    name: ClassVar[str] = "renew"
    verb: ClassVar[str] = "renew"


@dataclass(frozen=True, slots=True)
class Pause:
    """Pause an active subscription (access ends until it resumes); ``by`` who asked. ``reported``: the payment
    provider reports a pause made on its side (Stripe's ``pause_collection``), which it also makes on a trialing or
    past-due subscription, and after our period's end while its paid invoice is on its way (its period moved on)."""

    by: PausedBy = "creator"
    reported: bool = False
    name: ClassVar[str] = "pause"
    verb: ClassVar[str] = "pause"


@dataclass(frozen=True, slots=True)
class Resume:
    """Resume a paused subscription, or withdraw a scheduled cancellation; ``by`` who asked. A pause the creator
    made is lifted by the creator only. ``extend``: the paused time is added to the period (False when the
    payment provider keeps its own period through a pause, as Stripe's ``pause_collection`` does)."""

    by: PausedBy = "creator"
    extend: bool = True
    name: ClassVar[str] = "resume"
    verb: ClassVar[str] = "resume"


@dataclass(frozen=True, slots=True)
class Cancel:
    at_period_end: bool = True
    name: ClassVar[str] = "cancel"
    verb: ClassVar[str] = "cancel"


@dataclass(frozen=True, slots=True)
class Upgrade:
    """Switch to a plan with a higher per-interval amount (or another interval), prorated at once.

    ``quotas`` are the new plan's per-period quotas (None keeps the current ones); ``interval`` None
    keeps the current interval.
    """

    plan: str
    amount: int
    quotas: Mapping[str, int] | None = field(default=None, hash=False)
    interval: Interval | None = None
    name: ClassVar[str] = "upgrade"
    verb: ClassVar[str] = "upgrade"


@dataclass(frozen=True, slots=True)
class Downgrade:
    """Switch to a plan with a lower per-interval amount (or another interval), prorated at once."""

    plan: str
    amount: int
    quotas: Mapping[str, int] | None = field(default=None, hash=False)
    interval: Interval | None = None
    name: ClassVar[str] = "downgrade"
    verb: ClassVar[str] = "downgrade"


Event: TypeAlias = (
    Start | PaymentSucceeded | PaymentFailed | Renew | Pause | Resume | Cancel | Upgrade | Downgrade
)


def _illegal(sub: Subscription, event: Event, why: str = "") -> SubscriptionError:
    article = "an" if sub.state[0] in "aeiou" else "a"
    message = f"cannot {event.verb} {article} {sub.state} subscription"
    return SubscriptionError(
        f"{message}: {why}" if why else message,
        details={"state": sub.state, "event": event.name},
    )


def _state(before: State, after: State) -> Effect:
    return Effect("state", before=before, after=after)


def apply(sub: Subscription, event: Event, *, at: datetime) -> tuple[Subscription, list[Effect]]:
    """The subscription after ``event`` at ``at``, and the effects to carry out (in order).

    Raises :class:`SubscriptionError` (409, ``invalid_transition``) for an event the state does not
    allow, or one that comes too early (a renewal before the period ends).
    """
    at = _utc(at)
    match event:
        case Start():
            return _start(sub, event, at)
        case PaymentSucceeded():
            return _payment_succeeded(sub, event, at)
        case PaymentFailed():
            return _payment_failed(sub, event, at)
        case Renew():
            return _renew(sub, event, at)
        case Pause():
            return _pause(sub, event, at)
        case Resume():
            return _resume(sub, event, at)
        case Cancel():
            return _cancel(sub, event, at)
        case Upgrade() | Downgrade():
            return _change_plan(sub, event, at)
    raise TypeError(f"not a subscription event: {event!r}")  # pragma: no cover - exhaustive above


def _first_period(sub: Subscription, start: datetime) -> Subscription:
    return replace(
        sub,
        current_period_start=start,
        current_period_end=next_period_end(start, sub.interval),
        anchor_day=start.day,
        quota_used={},
    )


def _start(sub: Subscription, event: Start, at: datetime) -> tuple[Subscription, list[Effect]]:
    if sub.state != "incomplete" or sub.started_at is not None:
        raise _illegal(sub, event, "it has already started")
    if isinstance(event.trial_days, bool) or not isinstance(event.trial_days, int) or event.trial_days < 0:
        raise ValueError(f"trial_days must be a non-negative integer, got {event.trial_days!r}")
    if event.trial_days == 0:
        return replace(sub, started_at=at), [Effect("charge", sub.price, at=at, reason="first_period")]
    trial_end = at + timedelta(days=event.trial_days)
    trialing = replace(
        sub,
        state="trialing",
        started_at=at,
        trial_end=trial_end,
        current_period_start=at,
        current_period_end=trial_end,
        quota_used={},
    )
    return trialing, [_state("incomplete", "trialing"), Effect("access_start", at=at)]


def _payment_succeeded(
    sub: Subscription, event: PaymentSucceeded, at: datetime
) -> tuple[Subscription, list[Effect]]:
    if sub.state == "incomplete":
        if sub.started_at is None:
            raise _illegal(sub, event, "it has not started (no charge was asked for)")
        active = replace(_first_period(sub, at), state="active", failed_attempts=0)
        return active, [
            _state("incomplete", "active"),
            Effect("access_start", at=at),
            Effect("quota_reset", at=at),
        ]
    if sub.state == "past_due":
        recovered = replace(sub, state="active", failed_attempts=0, past_due_since=None, next_retry_at=None)
        return recovered, [_state("past_due", "active")]
    if sub.state == "active":
        return sub, []  # the confirmation of a renewal or proration charge: nothing changes
    raise _illegal(sub, event, "no payment is due")


def _payment_failed(
    sub: Subscription, event: PaymentFailed, at: datetime
) -> tuple[Subscription, list[Effect]]:
    if sub.state == "incomplete":
        if sub.started_at is None:
            raise _illegal(sub, event, "it has not started (no charge was asked for)")
        # No retries before the first payment: the buyer is at checkout and can try another card.
        return replace(sub, failed_attempts=sub.failed_attempts + 1), []
    before: State = sub.state
    if sub.state == "active":
        since, attempts = at, 1
    elif sub.state == "past_due":
        since, attempts = sub.past_due_since or at, sub.failed_attempts + 1
    else:
        raise _illegal(sub, event, "no payment is due")
    retries_done = attempts - 1
    if event.provider_retries:
        past_due = replace(
            sub, state="past_due", failed_attempts=attempts, past_due_since=since, next_retry_at=None
        )
        return past_due, ([_state("active", "past_due")] if before == "active" else [])
    if retries_done >= len(sub.retry_days):
        canceled = replace(
            sub, state="canceled", failed_attempts=attempts, next_retry_at=None, canceled_at=at
        )
        return canceled, [_state(before, "canceled"), Effect("access_end", at=at)]
    retry_at = since + timedelta(days=sub.retry_days[retries_done])
    past_due = replace(
        sub, state="past_due", failed_attempts=attempts, past_due_since=since, next_retry_at=retry_at
    )
    effects = [Effect("retry_scheduled", at=retry_at)]
    return past_due, ([_state("active", "past_due"), *effects] if before == "active" else effects)


def _period_end(sub: Subscription) -> datetime:
    assert sub.current_period_end is not None  # every started, non-incomplete state has a period
    return sub.current_period_end


def _renew(sub: Subscription, event: Renew, at: datetime) -> tuple[Subscription, list[Effect]]:
    if sub.state == "past_due":
        raise _illegal(sub, event, "the open payment must succeed first")
    if sub.state not in ("trialing", "active"):
        raise _illegal(sub, event)
    end = _period_end(sub)
    if at < end:
        raise _illegal(sub, event, f"the current period ends at {_iso(end)}, not before")
    if sub.cancel_at_period_end:
        canceled = replace(sub, state="canceled", canceled_at=end, cancel_at_period_end=False)
        return canceled, [_state(sub.state, "canceled"), Effect("access_end", at=end)]
    if sub.state == "trialing":
        active = replace(_first_period(sub, end), state="active")
        return active, [
            _state("trialing", "active"),
            Effect("charge", sub.price, at=end, reason="first_period"),
            Effect("quota_reset", at=end),
        ]
    # Periods run back to back from the previous end, whenever the renewal is processed.
    renewed = replace(
        sub,
        current_period_start=end,
        current_period_end=next_period_end(end, sub.interval, anchor_day=sub.anchor_day),
        quota_used={},
    )
    return renewed, [Effect("charge", sub.price, at=end, reason="renewal"), Effect("quota_reset", at=end)]


def _pause(sub: Subscription, event: Pause, at: datetime) -> tuple[Subscription, list[Effect]]:
    if sub.state != "active" and not (event.reported and sub.state in ("trialing", "past_due")):
        raise _illegal(sub, event, "only an active subscription can be paused")
    if at >= _period_end(sub) and not event.reported:
        raise _illegal(sub, event, f"the period ended at {_iso(sub.current_period_end)}: renew first")
    paused_from = None if sub.state == "active" else sub.state
    return replace(sub, state="paused", paused_at=at, paused_by=event.by, paused_from=paused_from), [
        _state(sub.state, "paused"),
        Effect("access_end", at=at),
    ]


def _resume(sub: Subscription, event: Resume, at: datetime) -> tuple[Subscription, list[Effect]]:
    if sub.state == "trialing" and sub.cancel_at_period_end:
        # a trial set to end keeps going only while it runs: once it has ended, its Renew cancels it
        if at >= _period_end(sub):
            raise _illegal(sub, event, f"the trial ended at {_iso(sub.current_period_end)}")
        return replace(sub, cancel_at_period_end=False), [Effect("cancel_unscheduled")]
    if sub.state == "active" and sub.cancel_at_period_end:
        return replace(sub, cancel_at_period_end=False), [Effect("cancel_unscheduled")]
    if sub.state != "paused" or sub.paused_at is None:
        raise _illegal(sub, event, "it is neither paused nor set to cancel")
    if at < sub.paused_at:
        raise _illegal(sub, event, f"it was paused at {_iso(sub.paused_at)}, after {_iso(at)}")
    if sub.paused_by != "buyer" and event.by == "buyer":
        # a pause stored before paused_by existed (None) could be the creator's: read as theirs, so a buyer
        # never lifts a creator's pause; the creator can lift any pause
        raise SubscriptionError(
            "cannot resume this subscription: the creator paused it, and only the creator can resume it",
            details={"state": sub.state, "event": event.name, "paused_by": sub.paused_by}, code=PAUSED_BY_CREATOR,
        )  # fmt: skip
    if not event.extend:
        back: State = "active"
        if sub.paused_from == "trialing" and at < _period_end(sub):
            back = "trialing"  # the trial goes on to its end (Stripe's trial end does not move with a pause)
        elif sub.paused_from == "past_due":
            back = "past_due"  # its open invoice is still open (retried by the provider): paid, it renews its period
        # The provider's period ran on through the pause, on its billing anchor (Stripe voids the invoices of
        # the periods that ended while paused: nothing was charged for them, nothing is booked): billing follows it.
        start, end = sub.current_period_start, _period_end(sub)
        while end <= at and back == "active":
            start, end = end, next_period_end(end, sub.interval, anchor_day=sub.anchor_day)
        resumed = replace(sub, state=back, paused_at=None, paused_by=None, paused_from=None,
                          current_period_start=start, current_period_end=end)  # fmt: skip
        return resumed, [_state("paused", back), Effect("access_start", at=at)]
    # The buyer paid for the whole period: the paused time is added to it, and billing follows.
    end = _period_end(sub) + (at - sub.paused_at)
    resumed = replace(sub, state="active", paused_at=None, paused_by=None, paused_from=None, current_period_end=end,
                      anchor_day=end.day)  # fmt: skip
    return resumed, [_state("paused", "active"), Effect("access_start", at=at)]


def _cancel(sub: Subscription, event: Cancel, at: datetime) -> tuple[Subscription, list[Effect]]:
    if sub.state == "canceled":
        raise _illegal(sub, event, "it is already canceled")
    if event.at_period_end:
        if sub.state not in ("active", "trialing"):
            raise _illegal(
                sub, event, "at period end only when active or trialing; cancel immediately instead"
            )
        if sub.cancel_at_period_end:
            return sub, []  # already scheduled: asking twice changes nothing
        return replace(sub, cancel_at_period_end=True), [Effect("cancel_scheduled", at=_period_end(sub))]
    effects = [_state(sub.state, "canceled")]
    if sub.state in ("trialing", "active", "past_due"):  # incomplete never had access; paused lost it
        effects.append(Effect("access_end", at=at))
    canceled = replace(sub, state="canceled", canceled_at=at, cancel_at_period_end=False, next_retry_at=None)
    return canceled, effects


def _change_plan(
    sub: Subscription, event: Upgrade | Downgrade, at: datetime
) -> tuple[Subscription, list[Effect]]:
    if sub.state not in ("active", "trialing"):
        raise _illegal(sub, event, "only an active or trialing subscription can change plan")
    if isinstance(event.amount, bool) or not isinstance(event.amount, int) or event.amount < 0:
        raise ValueError(f"amount must be a non-negative integer of minor units, got {event.amount!r}")
    interval = event.interval or sub.interval
    if interval not in INTERVALS:
        raise ValueError(f"interval must be month or year, got {interval!r}")
    if interval == sub.interval:
        going_up = event.amount > sub.amount
        if event.amount == sub.amount or going_up != isinstance(event, Upgrade):
            direction = "more" if isinstance(event, Upgrade) else "less"
            raise _illegal(
                sub,
                event,
                f"the new plan must cost {direction} than {sub.price.format()} per {sub.interval}, "
                f"got {Money(sub.currency, event.amount).format()}",
            )
    changed = replace(
        sub,
        plan=event.plan,
        amount=event.amount,
        interval=interval,
        quotas=sub.quotas if event.quotas is None else event.quotas,
    )
    effects = [Effect("plan_changed", before=sub.plan, after=event.plan, reason=event.name)]
    if sub.state == "trialing":
        return changed, effects  # nothing paid yet: the trial simply continues on the new plan
    start, end = sub.current_period_start, _period_end(sub)
    assert start is not None
    if at >= end:
        raise _illegal(sub, event, f"the period ended at {_iso(end)}: renew first")
    if interval == sub.interval:
        # Same cycle: pay (or get back) the price difference for the time left.
        difference = prorate(sub.amount, event.amount, start, end, at, sub.currency)
        if difference.amount > 0:
            effects.append(Effect("charge", difference, at=at, reason="proration"))
        elif difference.amount < 0:
            effects.append(Effect("credit", -difference, at=at, reason="proration"))
        return changed, effects
    # A new interval starts a new cycle now: the unused old time is credited against the new price.
    unused = -prorate(sub.amount, 0, start, end, at, sub.currency)
    net = Money(sub.currency, event.amount) - unused
    restarted = replace(_first_period(changed, at), failed_attempts=0)
    if net.amount > 0:
        effects.append(Effect("charge", net, at=at, reason="plan_change"))
    elif net.amount < 0:
        effects.append(Effect("credit", -net, at=at, reason="plan_change"))
    effects.append(Effect("quota_reset", at=at))
    return restarted, effects


# --------------------------------------------------------------------------------------------------
# Quotas


def quota_remaining(sub: Subscription, name: str) -> int:
    """Uses of ``name`` left this period (0 for a quota the plan does not have)."""
    return max(0, sub.quotas.get(name, 0) - sub.quota_used.get(name, 0))


def use_quota(sub: Subscription, name: str, n: int = 1, *, at: datetime) -> Subscription:
    """The subscription with ``n`` more uses of quota ``name`` this period.

    Raises :class:`SubscriptionError` with code ``quota_unavailable`` (not active or past due, e.g.
    trialing: quotas start with the first paid period; or the period has ended and needs renewing),
    ``quota_unknown`` (the plan has no such quota) or ``quota_exhausted`` (not enough left).
    """
    at = _utc(at)
    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"n must be a positive integer, got {n!r}")
    details = {"quota": name, "state": sub.state}
    if sub.state not in _QUOTA_STATES:
        why = "quotas start with the first paid period" if sub.state == "trialing" else "it gives no access"
        raise SubscriptionError(
            f"cannot use quota {name!r} of a {sub.state} subscription: {why}",
            details=details,
            code=QUOTA_UNAVAILABLE,
        )
    start, end = sub.current_period_start, _period_end(sub)
    if start is None or not start <= at < end:
        raise SubscriptionError(
            f"cannot use quota {name!r} at {_iso(at)}: the current period is {_iso(start)} .. {_iso(end)}",
            details=details,
            code=QUOTA_UNAVAILABLE,
        )
    if name not in sub.quotas:
        known = ", ".join(sorted(sub.quotas)) or "none"
        raise SubscriptionError(
            f"plan {sub.plan!r} has no quota {name!r} (quotas: {known})", details=details, code=QUOTA_UNKNOWN
        )
    left = quota_remaining(sub, name)
    if n > left:
        used, limit = sub.quota_used.get(name, 0), sub.quotas[name]
        raise SubscriptionError(
            f"quota {name!r} exhausted: {used} of {limit} used this period, {n} more requested",
            details={**details, "used": used, "limit": limit, "requested": n},
            code=QUOTA_EXHAUSTED,
        )
    return replace(sub, quota_used={**sub.quota_used, name: sub.quota_used.get(name, 0) + n})
