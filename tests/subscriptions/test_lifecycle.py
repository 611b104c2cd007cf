"""The subscription state machine: lifecycle, retries, pause/resume, cancellation, plan changes with
proration computed by hand, month-end clamping and per-period quotas."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from offerloop.core.money import Money
from offerloop.offers.catalog import load_catalog
from offerloop.offers.exceptions import PricingError
from offerloop.subscriptions.exceptions import SubscriptionError
from offerloop.subscriptions.lifecycle import (
    Cancel,
    Downgrade,
    Effect,
    Event,
    Pause,
    PaymentFailed,
    PaymentSucceeded,
    Renew,
    Resume,
    Start,
    Subscription,
    Upgrade,
    add_months,
    apply,
    new_subscription,
    next_period_end,
    prorate,
    quota_remaining,
    use_quota,
)

DEMO = Path(__file__).resolve().parents[2] / "examples" / "demo" / "offers.yaml"


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> datetime:
    return datetime(year, month, day, hour, minute, tzinfo=UTC)


def usd(amount: int) -> Money:
    return Money("USD", amount)


def state(before: str, after: str) -> Effect:
    return Effect("state", before=before, after=after)


def monthly() -> Subscription:
    """A fresh monthly plan at USD 39.00 with two coaching sessions a period."""
    return Subscription(
        plan="circle-monthly", currency="USD", amount=3900, interval="month", quotas={"coaching_session": 2}
    )


def active_from(start: datetime) -> Subscription:
    """An active monthly subscription whose first period started (and was paid) at ``start``."""
    sub, _ = apply(monthly(), Start(), at=start)
    sub, _ = apply(sub, PaymentSucceeded(), at=start)
    return sub


def refused(sub: Subscription, event: Event, at: datetime) -> SubscriptionError:
    with pytest.raises(SubscriptionError) as info:
        apply(sub, event, at=at)
    assert (info.value.status_code, info.value.code) == (409, "invalid_transition")
    return info.value


# --------------------------------------------------------------------------------------------------
# Calendar


def test_month_arithmetic_clamps_to_month_end() -> None:
    assert add_months(utc(2025, 1, 31, 10), 1) == utc(2025, 2, 28, 10)
    assert add_months(utc(2024, 1, 31, 10), 1) == utc(2024, 2, 29, 10)  # leap year
    assert add_months(utc(2025, 12, 31), 2) == utc(2026, 2, 28)
    assert add_months(utc(2025, 3, 31), -1) == utc(2025, 2, 28)
    assert add_months(utc(2025, 1, 15), 12) == utc(2026, 1, 15)
    # The anchor day comes back once the month is long enough.
    assert add_months(utc(2025, 2, 28), 1, anchor_day=31) == utc(2025, 3, 31)
    assert add_months(utc(2025, 3, 31), 1, anchor_day=31) == utc(2025, 4, 30)
    assert next_period_end(utc(2024, 2, 29), "year") == utc(2025, 2, 28)
    assert next_period_end(utc(2027, 2, 28), "year", anchor_day=29) == utc(2028, 2, 29)


def test_monthly_periods_follow_the_anchor_day() -> None:
    sub = active_from(utc(2025, 1, 31, 10))
    ends = [sub.current_period_end]
    for _ in range(4):
        sub, _ = apply(sub, Renew(), at=sub.current_period_end)  # type: ignore[arg-type]
        ends.append(sub.current_period_end)
    assert ends == [
        utc(2025, 2, 28, 10),
        utc(2025, 3, 31, 10),
        utc(2025, 4, 30, 10),
        utc(2025, 5, 31, 10),
        utc(2025, 6, 30, 10),
    ]
    assert sub.current_period_start == utc(2025, 5, 31, 10)


def test_annual_periods_from_a_leap_day() -> None:
    sub = replace(monthly(), interval="year", amount=39000)
    sub, _ = apply(sub, Start(), at=utc(2024, 2, 29))
    sub, _ = apply(sub, PaymentSucceeded(), at=utc(2024, 2, 29))
    ends = [sub.current_period_end]
    for _ in range(4):
        sub, _ = apply(sub, Renew(), at=sub.current_period_end)  # type: ignore[arg-type]
        ends.append(sub.current_period_end)
    assert ends == [utc(2025, 2, 28), utc(2026, 2, 28), utc(2027, 2, 28), utc(2028, 2, 29), utc(2029, 2, 28)]


# --------------------------------------------------------------------------------------------------
# The whole lifecycle


def test_trial_then_renewals_then_failed_retries_cancel() -> None:
    t0 = utc(2025, 1, 24, 10)
    trial_end = utc(2025, 1, 31, 10)

    sub, effects = apply(monthly(), Start(trial_days=7), at=t0)
    assert sub.state == "trialing"
    assert (sub.trial_end, sub.current_period_start, sub.current_period_end) == (trial_end, t0, trial_end)
    assert effects == [state("incomplete", "trialing"), Effect("access_start", at=t0)]

    # The trial ends: the first paid period starts at the trial's end and follows its day (the 31st).
    sub, effects = apply(sub, Renew(), at=trial_end)
    assert sub.state == "active"
    assert (sub.current_period_start, sub.current_period_end, sub.anchor_day) == (
        trial_end,
        utc(2025, 2, 28, 10),
        31,
    )
    assert effects == [
        state("trialing", "active"),
        Effect("charge", usd(3900), at=trial_end, reason="first_period"),
        Effect("quota_reset", at=trial_end),
    ]
    # The charge's confirmation changes nothing.
    confirmed, effects = apply(sub, PaymentSucceeded(), at=trial_end + timedelta(minutes=1))
    assert (confirmed, effects) == (sub, [])

    # A renewal processed late still starts at the previous end.
    sub, effects = apply(sub, Renew(), at=utc(2025, 2, 28, 11))
    assert (sub.current_period_start, sub.current_period_end) == (utc(2025, 2, 28, 10), utc(2025, 3, 31, 10))
    assert effects == [
        Effect("charge", usd(3900), at=utc(2025, 2, 28, 10), reason="renewal"),
        Effect("quota_reset", at=utc(2025, 2, 28, 10)),
    ]
    error = refused(sub, Renew(), utc(2025, 3, 30, 10))
    assert error.message == (
        "cannot renew an active subscription: the current period ends at 2025-03-31T10:00:00Z, not before"
    )
    sub, _ = apply(sub, Renew(), at=utc(2025, 3, 31, 10))
    assert sub.current_period_end == utc(2025, 4, 30, 10)

    # The renewal charge fails: past due, retries 1, 3 and 5 days after that first failure.
    failed_at = utc(2025, 3, 31, 10, 5)
    sub, effects = apply(sub, PaymentFailed(), at=failed_at)
    assert (sub.state, sub.failed_attempts, sub.past_due_since) == ("past_due", 1, failed_at)
    assert sub.next_retry_at == utc(2025, 4, 1, 10, 5)
    assert effects == [state("active", "past_due"), Effect("retry_scheduled", at=utc(2025, 4, 1, 10, 5))]
    error = refused(sub, Renew(), utc(2025, 4, 30, 10))
    assert error.message == "cannot renew a past_due subscription: the open payment must succeed first"

    sub, effects = apply(sub, PaymentFailed(), at=utc(2025, 4, 1, 10, 5))
    assert (sub.state, sub.failed_attempts, sub.next_retry_at) == ("past_due", 2, utc(2025, 4, 3, 10, 5))
    assert effects == [Effect("retry_scheduled", at=utc(2025, 4, 3, 10, 5))]
    sub, effects = apply(sub, PaymentFailed(), at=utc(2025, 4, 3, 10, 5))
    assert (sub.state, sub.failed_attempts, sub.next_retry_at) == ("past_due", 3, utc(2025, 4, 5, 10, 5))
    assert effects == [Effect("retry_scheduled", at=utc(2025, 4, 5, 10, 5))]

    # The last retry fails: canceled, access ends.
    last = utc(2025, 4, 5, 10, 5)
    sub, effects = apply(sub, PaymentFailed(), at=last)
    assert (sub.state, sub.failed_attempts, sub.next_retry_at, sub.canceled_at) == ("canceled", 4, None, last)
    assert effects == [state("past_due", "canceled"), Effect("access_end", at=last)]

    assert (
        refused(sub, Cancel(), last).message
        == "cannot cancel a canceled subscription: it is already canceled"
    )
    assert refused(sub, Resume(), last).message == (
        "cannot resume a canceled subscription: it is neither paused nor set to cancel"
    )
    assert refused(sub, PaymentSucceeded(), last).message == (
        "cannot record a successful payment for a canceled subscription: no payment is due"
    )


def test_a_retry_that_succeeds_recovers_the_subscription() -> None:
    sub = active_from(utc(2025, 3, 1))
    sub, _ = apply(sub, Renew(), at=utc(2025, 4, 1))
    sub, _ = apply(sub, PaymentFailed(), at=utc(2025, 4, 1))
    sub, _ = apply(sub, PaymentFailed(), at=utc(2025, 4, 2))
    sub, effects = apply(sub, PaymentSucceeded(), at=utc(2025, 4, 4))
    assert (sub.state, sub.failed_attempts, sub.next_retry_at, sub.past_due_since) == (
        "active",
        0,
        None,
        None,
    )
    assert effects == [state("past_due", "active")]
    # The next failure starts a fresh schedule.
    sub, _ = apply(sub, Renew(), at=utc(2025, 5, 1))
    sub, effects = apply(sub, PaymentFailed(), at=utc(2025, 5, 1))
    assert (sub.failed_attempts, sub.next_retry_at) == (1, utc(2025, 5, 2))


def test_custom_retry_schedule() -> None:
    sub = replace(active_from(utc(2025, 3, 1)), retry_days=(2,))
    sub, effects = apply(sub, PaymentFailed(), at=utc(2025, 3, 10))
    assert effects == [state("active", "past_due"), Effect("retry_scheduled", at=utc(2025, 3, 12))]
    sub, effects = apply(sub, PaymentFailed(), at=utc(2025, 3, 12))
    assert sub.state == "canceled"
    no_retries = replace(active_from(utc(2025, 3, 1)), retry_days=())
    sub, effects = apply(no_retries, PaymentFailed(), at=utc(2025, 3, 10))
    assert effects == [state("active", "canceled"), Effect("access_end", at=utc(2025, 3, 10))]


def test_start_without_trial_waits_for_the_first_payment() -> None:
    t0 = utc(2025, 1, 31, 10)
    sub, effects = apply(monthly(), Start(), at=t0)
    assert (sub.state, sub.started_at, sub.current_period_end) == ("incomplete", t0, None)
    assert effects == [Effect("charge", usd(3900), at=t0, reason="first_period")]

    sub, effects = apply(sub, PaymentFailed(), at=t0)
    assert (sub.state, sub.failed_attempts, effects) == ("incomplete", 1, [])

    paid_at = t0 + timedelta(minutes=5)
    sub, effects = apply(sub, PaymentSucceeded(), at=paid_at)
    assert (sub.state, sub.failed_attempts) == ("active", 0)
    assert (sub.current_period_start, sub.current_period_end) == (paid_at, utc(2025, 2, 28, 10, 5))
    assert effects == [
        state("incomplete", "active"),
        Effect("access_start", at=paid_at),
        Effect("quota_reset", at=paid_at),
    ]
    assert (
        refused(sub, Start(), paid_at).message
        == "cannot start an active subscription: it has already started"
    )


def test_illegal_transitions_name_the_state_and_why() -> None:
    fresh = monthly()
    at = utc(2025, 1, 1)
    assert refused(fresh, PaymentSucceeded(), at).message == (
        "cannot record a successful payment for an incomplete subscription: "
        "it has not started (no charge was asked for)"
    )
    assert refused(fresh, PaymentFailed(), at).code == "invalid_transition"
    assert refused(fresh, Renew(), at).message == "cannot renew an incomplete subscription"
    assert refused(fresh, Pause(), at).message == (
        "cannot pause an incomplete subscription: only an active subscription can be paused"
    )
    trialing, _ = apply(fresh, Start(trial_days=7), at=at)
    assert refused(trialing, Pause(), at).message == (
        "cannot pause a trialing subscription: only an active subscription can be paused"
    )
    assert refused(trialing, PaymentFailed(), at).message == (
        "cannot record a failed payment for a trialing subscription: no payment is due"
    )
    assert refused(trialing, Renew(), utc(2025, 1, 7)).message == (
        "cannot renew a trialing subscription: the current period ends at 2025-01-08T00:00:00Z, not before"
    )
    assert refused(trialing, Start(trial_days=7), at).message == (
        "cannot start a trialing subscription: it has already started"
    )
    error = refused(trialing, Pause(), at)
    assert error.details == {"state": "trialing", "event": "pause"}


def test_naive_datetimes_are_refused() -> None:
    with pytest.raises(ValueError, match="timezone-aware"):
        apply(monthly(), Start(), at=datetime(2025, 1, 1))


# --------------------------------------------------------------------------------------------------
# Pause and resume


def test_pause_and_resume_add_the_paused_time_to_the_period() -> None:
    sub = active_from(utc(2025, 3, 1))
    paused_at = utc(2025, 3, 21)
    sub, effects = apply(sub, Pause(), at=paused_at)
    assert (sub.state, sub.paused_at) == ("paused", paused_at)
    assert effects == [state("active", "paused"), Effect("access_end", at=paused_at)]
    assert refused(sub, Pause(), paused_at).message == (
        "cannot pause a paused subscription: only an active subscription can be paused"
    )
    assert refused(sub, Renew(), utc(2025, 4, 1)).message == "cannot renew a paused subscription"
    assert refused(sub, Resume(), utc(2025, 3, 20)).message == (
        "cannot resume a paused subscription: it was paused at 2025-03-21T00:00:00Z, after 2025-03-20T00:00:00Z"
    )

    # Paused for 20 days: the 11 paid days left (Mar 21 .. Apr 1) now run Apr 10 .. Apr 21.
    resumed_at = utc(2025, 4, 10)
    sub, effects = apply(sub, Resume(), at=resumed_at)
    assert (sub.state, sub.paused_at) == ("active", None)
    assert (sub.current_period_start, sub.current_period_end, sub.anchor_day) == (
        utc(2025, 3, 1),
        utc(2025, 4, 21),
        21,
    )
    assert effects == [state("paused", "active"), Effect("access_start", at=resumed_at)]
    sub, _ = apply(sub, Renew(), at=utc(2025, 4, 21))
    assert (sub.current_period_start, sub.current_period_end) == (utc(2025, 4, 21), utc(2025, 5, 21))


def test_a_creators_pause_is_lifted_by_the_creator_only_and_a_buyers_by_either() -> None:
    start, paused_at = utc(2025, 3, 1), utc(2025, 3, 21)
    sub, _ = apply(active_from(start), Pause(by="creator"), at=paused_at)
    assert sub.paused_by == "creator"
    with pytest.raises(SubscriptionError) as info:
        apply(sub, Resume(by="buyer"), at=utc(2025, 3, 22))
    assert (info.value.status_code, info.value.code) == (409, "paused_by_creator")
    resumed, _ = apply(sub, Resume(by="creator"), at=utc(2025, 3, 22))
    assert (resumed.state, resumed.paused_by) == ("active", None)
    for by in ("buyer", "creator"):
        theirs, _ = apply(active_from(start), Pause(by="buyer"), at=paused_at)
        assert apply(theirs, Resume(by=by), at=utc(2025, 3, 22))[0].state == "active"


def test_a_resume_that_keeps_the_providers_period_does_not_extend_it() -> None:
    sub, _ = apply(active_from(utc(2025, 3, 1)), Pause(), at=utc(2025, 3, 21))
    kept, _ = apply(sub, Resume(extend=False), at=utc(2025, 3, 25))
    assert (kept.current_period_start, kept.current_period_end) == (utc(2025, 3, 1), utc(2025, 4, 1))
    resumed_at = utc(2025, 4, 10)
    sub, effects = apply(sub, Resume(extend=False), at=resumed_at)
    # (paused Mar 21 .. Apr 10: the provider's period ended Apr 1 and its next one, voided, runs to May 1)
    assert (sub.state, sub.current_period_start, sub.current_period_end, sub.anchor_day) == (
        "active", utc(2025, 4, 1), utc(2025, 5, 1), 1,
    )  # fmt: skip
    assert effects == [state("paused", "active"), Effect("access_start", at=resumed_at)]
    # paused across two period ends (Jan 31 anchor): the period resumed into is the provider's, on its anchor
    sub, _ = apply(active_from(utc(2025, 1, 31)), Pause(), at=utc(2025, 2, 10))
    sub, _ = apply(sub, Resume(extend=False), at=utc(2025, 3, 31))
    assert (sub.current_period_start, sub.current_period_end) == (utc(2025, 3, 31), utc(2025, 4, 30))


def test_pause_after_the_period_ended_needs_a_renewal_first() -> None:
    sub = active_from(utc(2025, 3, 1))
    assert refused(sub, Pause(), utc(2025, 4, 1)).message == (
        "cannot pause an active subscription: the period ended at 2025-04-01T00:00:00Z: renew first"
    )


# --------------------------------------------------------------------------------------------------
# Cancellation


def test_cancel_at_period_end_then_renew_cancels() -> None:
    sub = active_from(utc(2025, 3, 1))
    sub, effects = apply(sub, Cancel(), at=utc(2025, 3, 10))
    assert (sub.state, sub.cancel_at_period_end) == ("active", True)
    assert effects == [Effect("cancel_scheduled", at=utc(2025, 4, 1))]
    again, effects = apply(sub, Cancel(), at=utc(2025, 3, 11))
    assert (again, effects) == (sub, [])

    # Changing one's mind: resume withdraws the cancellation, cancel schedules it again.
    kept, effects = apply(sub, Resume(), at=utc(2025, 3, 12))
    assert (kept.cancel_at_period_end, effects) == (False, [Effect("cancel_unscheduled")])
    renewed, _ = apply(kept, Renew(), at=utc(2025, 4, 1))
    assert renewed.state == "active"

    sub, effects = apply(sub, Renew(), at=utc(2025, 4, 1, 0, 30))
    assert (sub.state, sub.canceled_at, sub.cancel_at_period_end) == ("canceled", utc(2025, 4, 1), False)
    assert effects == [state("active", "canceled"), Effect("access_end", at=utc(2025, 4, 1))]


def test_cancel_during_trial_at_its_end_never_charges() -> None:
    sub, _ = apply(monthly(), Start(trial_days=7), at=utc(2025, 1, 1))
    sub, effects = apply(sub, Cancel(), at=utc(2025, 1, 3))
    assert effects == [Effect("cancel_scheduled", at=utc(2025, 1, 8))]
    sub, effects = apply(sub, Renew(), at=utc(2025, 1, 8))
    assert sub.state == "canceled"
    assert effects == [state("trialing", "canceled"), Effect("access_end", at=utc(2025, 1, 8))]


def test_cancel_immediately() -> None:
    at = utc(2025, 3, 10)
    active = active_from(utc(2025, 3, 1))
    sub, effects = apply(active, Cancel(at_period_end=False), at=at)
    assert (sub.state, sub.canceled_at) == ("canceled", at)
    assert effects == [state("active", "canceled"), Effect("access_end", at=at)]

    started, _ = apply(monthly(), Start(), at=at)
    _, effects = apply(started, Cancel(at_period_end=False), at=at)
    assert effects == [state("incomplete", "canceled")]  # never had access

    paused, _ = apply(active, Pause(), at=at)
    _, effects = apply(paused, Cancel(at_period_end=False), at=at)
    assert effects == [state("paused", "canceled")]  # access already ended at the pause

    past_due, _ = apply(active, PaymentFailed(), at=at)
    assert refused(past_due, Cancel(), at).message == (
        "cannot cancel a past_due subscription: at period end only when active or trialing; "
        "cancel immediately instead"
    )
    sub, effects = apply(past_due, Cancel(at_period_end=False), at=at)
    assert (sub.state, sub.next_retry_at) == ("canceled", None)
    assert effects == [state("past_due", "canceled"), Effect("access_end", at=at)]


# --------------------------------------------------------------------------------------------------
# Proration and plan changes

MARCH = utc(2025, 3, 1)
APRIL = utc(2025, 4, 1)  # March has 31 days
MARCH_11 = utc(2025, 3, 11)  # 21 of the 31 days are left


def test_prorate_by_hand() -> None:
    # (9900 - 3900) * 21 / 31 = 126000 / 31 = 4064.516... -> 4065
    assert prorate(3900, 9900, MARCH, APRIL, MARCH_11, "USD") == usd(4065)
    assert prorate(9900, 3900, MARCH, APRIL, MARCH_11, "usd") == usd(-4065)
    assert prorate(3900, 3900, MARCH, APRIL, MARCH_11, "USD") == usd(0)
    # Clamped into the period: the whole difference at (or before) the start, nothing at the end.
    assert prorate(3900, 9900, MARCH, APRIL, utc(2025, 2, 1), "USD") == usd(6000)
    assert prorate(3900, 9900, MARCH, APRIL, APRIL, "USD") == usd(0)
    with pytest.raises(ValueError, match="must end after it starts"):
        prorate(3900, 9900, APRIL, MARCH, MARCH_11, "USD")


def test_prorate_is_by_the_second_and_rounds_half_to_even() -> None:
    start = utc(2025, 1, 1)
    end = start + timedelta(seconds=1000)
    one_second_in = start + timedelta(seconds=1)  # 999 of 1000 seconds unused
    three_seconds_in = start + timedelta(seconds=3)  # 997 of 1000 unused
    assert prorate(0, 2000, start, end, one_second_in, "USD") == usd(1998)  # 1998.0
    assert prorate(0, 500, start, end, one_second_in, "USD") == usd(500)  # 499.5 -> 500 (even)
    assert prorate(0, 500, start, end, three_seconds_in, "USD") == usd(498)  # 498.5 -> 498 (even)
    assert prorate(500, 0, start, end, one_second_in, "USD") == usd(-500)  # -499.5 -> -500 (even)
    # Two days, half used: 1 -> 0.5 -> 0, 3 -> 1.5 -> 2, 5 -> 2.5 -> 2.
    mid = utc(2025, 1, 2)
    assert [prorate(0, d, start, utc(2025, 1, 3), mid, "USD").amount for d in (1, 3, 5)] == [0, 2, 2]
    assert prorate(0, 1000, start, end, one_second_in, "JPY") == Money("JPY", 999)


def test_upgrade_charges_the_prorated_difference() -> None:
    sub = active_from(MARCH)
    sub = use_quota(sub, "coaching_session", at=utc(2025, 3, 5))
    upgraded, effects = apply(
        sub,
        Upgrade(plan="inner-circle", amount=9900, quotas={"coaching_session": 4, "launch_review": 1}),
        at=MARCH_11,
    )
    assert effects == [
        Effect("plan_changed", before="circle-monthly", after="inner-circle", reason="upgrade"),
        Effect("charge", usd(4065), at=MARCH_11, reason="proration"),
    ]
    assert (upgraded.plan, upgraded.amount, upgraded.interval) == ("inner-circle", 9900, "month")
    assert (upgraded.current_period_start, upgraded.current_period_end) == (MARCH, APRIL)
    # Usage this period carries over to the new plan's quotas.
    assert quota_remaining(upgraded, "coaching_session") == 3
    assert quota_remaining(upgraded, "launch_review") == 1
    _, effects = apply(upgraded, Renew(), at=APRIL)
    assert effects[0] == Effect("charge", usd(9900), at=APRIL, reason="renewal")


def test_downgrade_credits_the_prorated_difference() -> None:
    sub = replace(active_from(MARCH), plan="inner-circle", amount=9900)
    downgraded, effects = apply(sub, Downgrade(plan="circle-monthly", amount=3900), at=MARCH_11)
    assert effects == [
        Effect("plan_changed", before="inner-circle", after="circle-monthly", reason="downgrade"),
        Effect("credit", usd(4065), at=MARCH_11, reason="proration"),
    ]
    assert (downgraded.plan, downgraded.amount, dict(downgraded.quotas)) == (
        "circle-monthly",
        3900,
        {"coaching_session": 2},
    )


def test_switching_to_an_annual_plan_starts_a_new_cycle() -> None:
    sub = use_quota(active_from(MARCH), "coaching_session", at=utc(2025, 3, 5))
    annual, effects = apply(
        sub,
        Upgrade(plan="circle-annual", amount=39000, interval="year", quotas={"coaching_session": 24}),
        at=MARCH_11,
    )
    # Unused monthly time: 3900 * 21 / 31 = 2641.93... -> 2642, credited against 39000: 36358.
    assert effects == [
        Effect("plan_changed", before="circle-monthly", after="circle-annual", reason="upgrade"),
        Effect("charge", usd(36358), at=MARCH_11, reason="plan_change"),
        Effect("quota_reset", at=MARCH_11),
    ]
    assert (annual.interval, annual.current_period_start, annual.current_period_end, annual.anchor_day) == (
        "year",
        MARCH_11,
        utc(2026, 3, 11),
        11,
    )
    assert quota_remaining(annual, "coaching_session") == 24

    # Back to monthly 11 days before the year ends: 39000 * 11 / 365 = 1175.34... -> 1175 of credit,
    # so the net charge is 3900 - 1175 = 2725, for a new month from Feb 28.
    monthly_again, effects = apply(
        annual, Downgrade(plan="circle-monthly", amount=3900, interval="month"), at=utc(2026, 2, 28)
    )
    assert effects[1] == Effect("charge", usd(2725), at=utc(2026, 2, 28), reason="plan_change")
    assert monthly_again.current_period_end == utc(2026, 3, 28)


def test_plan_change_direction_and_state_are_checked() -> None:
    sub = active_from(MARCH)
    assert refused(sub, Upgrade(plan="cheap", amount=2900), MARCH_11).message == (
        "cannot upgrade an active subscription: the new plan must cost more than USD 39.00 per month, "
        "got USD 29.00"
    )
    assert refused(sub, Downgrade(plan="dear", amount=9900), MARCH_11).message == (
        "cannot downgrade an active subscription: the new plan must cost less than USD 39.00 per month, "
        "got USD 99.00"
    )
    assert refused(sub, Upgrade(plan="same", amount=3900), MARCH_11).code == "invalid_transition"
    assert refused(sub, Upgrade(plan="later", amount=9900), APRIL).message == (
        "cannot upgrade an active subscription: the period ended at 2025-04-01T00:00:00Z: renew first"
    )
    paused, _ = apply(sub, Pause(), at=MARCH_11)
    assert refused(paused, Upgrade(plan="x", amount=9900), MARCH_11).message == (
        "cannot upgrade a paused subscription: only an active or trialing subscription can change plan"
    )


def test_plan_change_during_trial_is_free() -> None:
    sub, _ = apply(monthly(), Start(trial_days=7), at=MARCH)
    sub, effects = apply(sub, Upgrade(plan="inner-circle", amount=9900), at=utc(2025, 3, 3))
    assert effects == [
        Effect("plan_changed", before="circle-monthly", after="inner-circle", reason="upgrade")
    ]
    sub, effects = apply(sub, Renew(), at=utc(2025, 3, 8))
    assert effects[1] == Effect("charge", usd(9900), at=utc(2025, 3, 8), reason="first_period")


# --------------------------------------------------------------------------------------------------
# Quotas


def test_quota_use_refuses_over_use_and_resets_on_renewal() -> None:
    sub = active_from(MARCH)
    assert quota_remaining(sub, "coaching_session") == 2
    sub = use_quota(sub, "coaching_session", at=utc(2025, 3, 5))
    sub = use_quota(sub, "coaching_session", at=utc(2025, 3, 20))
    assert (dict(sub.quota_used), quota_remaining(sub, "coaching_session")) == ({"coaching_session": 2}, 0)
    with pytest.raises(SubscriptionError) as info:
        use_quota(sub, "coaching_session", at=utc(2025, 3, 25))
    assert (info.value.status_code, info.value.code) == (409, "quota_exhausted")
    assert (
        info.value.message == "quota 'coaching_session' exhausted: 2 of 2 used this period, 1 more requested"
    )
    assert info.value.details == {
        "quota": "coaching_session",
        "state": "active",
        "used": 2,
        "limit": 2,
        "requested": 1,
    }

    sub, effects = apply(sub, Renew(), at=APRIL)
    assert Effect("quota_reset", at=APRIL) in effects
    assert (dict(sub.quota_used), quota_remaining(sub, "coaching_session")) == ({}, 2)
    sub = use_quota(sub, "coaching_session", 2, at=APRIL)
    assert quota_remaining(sub, "coaching_session") == 0


def test_quota_errors() -> None:
    sub = active_from(MARCH)

    def error(s: Subscription, name: str, n: int, at: datetime) -> SubscriptionError:
        with pytest.raises(SubscriptionError) as info:
            use_quota(s, name, n, at=at)
        return info.value

    over = error(sub, "coaching_session", 3, MARCH_11)
    assert over.message == "quota 'coaching_session' exhausted: 0 of 2 used this period, 3 more requested"
    unknown = error(sub, "launch_review", 1, MARCH_11)
    assert (unknown.code, unknown.message) == (
        "quota_unknown",
        "plan 'circle-monthly' has no quota 'launch_review' (quotas: coaching_session)",
    )
    late = error(sub, "coaching_session", 1, APRIL)
    assert (late.code, late.message) == (
        "quota_unavailable",
        "cannot use quota 'coaching_session' at 2025-04-01T00:00:00Z: "
        "the current period is 2025-03-01T00:00:00Z .. 2025-04-01T00:00:00Z",
    )
    trialing, _ = apply(monthly(), Start(trial_days=7), at=MARCH)
    in_trial = error(trialing, "coaching_session", 1, MARCH_11)
    assert (in_trial.code, in_trial.message) == (
        "quota_unavailable",
        "cannot use quota 'coaching_session' of a trialing subscription: quotas start with the first paid period",
    )
    paused, _ = apply(sub, Pause(), at=MARCH_11)
    assert error(paused, "coaching_session", 1, MARCH_11).message == (
        "cannot use quota 'coaching_session' of a paused subscription: it gives no access"
    )
    with pytest.raises(ValueError, match="positive integer"):
        use_quota(sub, "coaching_session", 0, at=MARCH_11)
    # Past due still has access while the payment is retried.
    past_due, _ = apply(sub, PaymentFailed(), at=MARCH_11)
    assert quota_remaining(use_quota(past_due, "coaching_session", at=MARCH_11), "coaching_session") == 1


# --------------------------------------------------------------------------------------------------
# From the catalog


def test_new_subscription_from_the_demo_catalog() -> None:
    demo = load_catalog(DEMO)
    offer = demo.offer("membership-monthly")
    assert offer is not None
    sub = new_subscription(offer, "EUR")
    assert (sub.plan, sub.state, sub.price, sub.interval, dict(sub.quotas)) == (
        "membership-monthly",
        "incomplete",
        Money("EUR", 3500),
        "month",
        {"coaching_session": 2},
    )
    sub, _ = apply(sub, Start(trial_days=offer.trial_days), at=utc(2026, 1, 10, 9))
    assert (sub.state, sub.trial_end) == ("trialing", utc(2026, 1, 17, 9))

    playbook = demo.offer("pricing-playbook")
    assert playbook is not None
    with pytest.raises(ValueError, match="'pricing-playbook' is a product, not a subscription or tier"):
        new_subscription(playbook, "USD")
    with pytest.raises(PricingError) as info:
        new_subscription(offer, "GBP")
    assert info.value.code == "currency_not_offered"


def test_subscription_values_are_checked() -> None:
    with pytest.raises(ValueError, match="minor units"):
        Subscription(plan="p", currency="USD", amount=39.0, interval="month")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="month or year"):
        Subscription(plan="p", currency="USD", amount=3900, interval="week")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="retry_days"):
        Subscription(plan="p", currency="USD", amount=3900, interval="month", retry_days=(3, 1))
    with pytest.raises(TypeError):
        monthly().quotas["coaching_session"] = 5  # type: ignore[index]


def test_a_pause_stored_before_paused_by_existed_is_read_as_the_creators() -> None:
    """A pause recorded before ``paused_by`` existed has none (``None``): it may be the creator's, so only the
    creator lifts it (the buyer is told to ask them); a buyer's pause recorded since says so and is theirs."""
    sub, _ = apply(active_from(utc(2025, 3, 1)), Pause(by="buyer"), at=utc(2025, 3, 21))
    legacy = replace(sub, paused_by=None)
    with pytest.raises(SubscriptionError) as info:
        apply(legacy, Resume(by="buyer"), at=utc(2025, 3, 22))
    assert (info.value.status_code, info.value.code) == (409, "paused_by_creator")
    assert info.value.details == {"state": "paused", "event": "resume", "paused_by": None}
    assert apply(legacy, Resume(by="creator"), at=utc(2025, 3, 22))[0].state == "active"
    assert apply(sub, Resume(by="buyer"), at=utc(2025, 3, 22))[0].state == "active"


def test_a_pause_the_provider_reports_is_taken_in_a_trial_past_due_and_past_the_period_end() -> None:
    t0 = utc(2025, 3, 1)
    trialing, _ = apply(monthly(), Start(trial_days=7), at=t0)
    paused, effects = apply(trialing, Pause(reported=True), at=utc(2025, 3, 3))
    assert (paused.state, paused.paused_from, paused.paused_by) == ("paused", "trialing", "creator")
    assert effects == [state("trialing", "paused"), Effect("access_end", at=utc(2025, 3, 3))]
    back, effects = apply(paused, Resume(extend=False), at=utc(2025, 3, 5))
    assert (back.state, back.paused_from, back.current_period_end) == ("trialing", None, utc(2025, 3, 8))
    assert effects == [state("paused", "trialing"), Effect("access_start", at=utc(2025, 3, 5))]
    # resumed after the trial's end: the provider's first period runs from it (its invoice voided while paused)
    ended, _ = apply(paused, Resume(extend=False), at=utc(2025, 3, 10))
    assert (ended.state, ended.current_period_start, ended.current_period_end) == (
        "active", utc(2025, 3, 8), utc(2025, 4, 8))  # fmt: skip
    due, _ = apply(active_from(t0), PaymentFailed(), at=utc(2025, 4, 1))
    paused, _ = apply(due, Pause(reported=True), at=utc(2025, 4, 2))
    back, _ = apply(paused, Resume(extend=False), at=utc(2025, 4, 3))
    assert (back.state, back.failed_attempts, back.next_retry_at, back.current_period_end) == (
        "past_due", 1, due.next_retry_at, due.current_period_end)  # fmt: skip
    # past our period's end (the provider's next invoice not reported yet): taken when reported, not otherwise
    late = utc(2025, 4, 1, 1)
    assert refused(active_from(t0), Pause(), late).message.endswith("renew first")
    paused, _ = apply(active_from(t0), Pause(reported=True), at=late)
    assert (paused.state, paused.paused_at) == ("paused", late)
