"""Due work runs by itself on a controllable clock (issue 10, item 4): manual-provider renewals and trial ends
at period end, payment retries on their dates then past_due → canceled, cancel-at-period-end, expired drop
holds released, and the sweep that schedules what lost its job. Every pass is `run_due(now=...)` with a fake
clock: nothing before its time, once at its time, never twice (same worker or a restarted one), a no-op
after a state change, and money and access stay exact (the ledger and entitlement checks of issue 8)."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import delete, or_, select
from tests.checkout.test_money_property import _check, _step

from offerloop.checkout import due
from offerloop.checkout import repository as checkout_repository
from offerloop.checkout import service as checkout_service
from offerloop.checkout import tasks as _tasks  # noqa: F401  (registers the due-work kinds)
from offerloop.checkout.exceptions import CheckoutError, SoldOut
from offerloop.entitlements import service as entitlements_service
from offerloop.jobs import lease, runner
from offerloop.ledger import service as ledger_service
from offerloop.models import Job, Order
from offerloop.offers import service as offers_service
from offerloop.subscriptions import service as subscriptions_service
from offerloop.subscriptions.exceptions import SubscriptionError

CATALOG = (Path(__file__).resolve().parents[2] / "examples" / "demo" / "offers.yaml").read_text()
KINDS = (due.PERIOD_END, due.PAYMENT_RETRY, due.HOLD_EXPIRY)
T0 = datetime(2026, 3, 2, 10, 0, tzinfo=UTC)
DROP_T0 = datetime(2026, 11, 10, 12, 0, tzinfo=UTC)  # the demo drop is live from 2026-11-02
SECOND = timedelta(seconds=1)


@pytest.fixture
def shop(db, workspace) -> tuple[str, str]:
    with db.write() as session:
        offers_service.load_catalog(session=session, workspace_id=workspace.id, text=CATALOG)
        buyer = checkout_service.buyer_for(session=session, workspace_id=workspace.id, user_id="ada")
    return workspace.id, buyer


def run(db, now: datetime, *keys: str, owner: str = "w1") -> list[tuple[str, str, str]]:
    """One pass of the due-work kinds at ``now``; what ran for ``keys`` (the database may hold other tests'
    committed jobs on PostgreSQL: they are not this test's to assert on)."""
    ran = runner.run_due(db, owner=owner, now=now, only=KINDS, limit=100)
    return [(r.kind, due.object_id(r.key), r.status) for r in ran if due.object_id(r.key) in keys]


def subscribe(
    db, ws: str, buyer: str, plan: str, at: datetime, provider: str = "manual", ref: str | None = None
):
    with db.write() as session:
        order = checkout_service.begin(session=session, workspace_id=ws, buyer_id=buyer, offer_key=plan,
                                       currency="USD", provider=provider, now=at)  # fmt: skip
        checkout_service.mark_paid(session=session, workspace_id=ws, order_id=order.id, actor="t", paid_at=at,
                                   subscription_ref=ref)  # fmt: skip
        (row,) = subscriptions_service.of_buyer(session=session, workspace_id=ws, buyer_id=buyer)
    return order.id, row.id


def sub(db, ws: str, sid: str) -> tuple[str, Any]:
    with db.read() as session:
        row = subscriptions_service.row_of(session, ws, sid)
        return row.status, subscriptions_service.state_of(row)


def act(db, ws: str, sid: str, action: str, at: datetime, **extra) -> None:
    with db.write() as session:
        subscriptions_service.act(session=session, workspace_id=ws, subscription_id=sid, action=action,
                                             at=at, **extra)  # fmt: skip


def orders(db, ws: str, buyer: str) -> list[Order]:
    with db.read() as session:
        found = checkout_repository.orders_of(session, ws, buyer)
        for o in found:
            session.expunge(o)
        return sorted(found, key=lambda o: (o.created_at, o.id))


def job(db, kind: str, key: str) -> tuple[str, datetime] | None:
    with db.read() as session:
        mine = or_(Job.key == key, Job.key.endswith(f"/{key}"))  # a due job's key: workspace/object
        row = session.scalars(select(Job).where(Job.kind == kind, mine)).one_or_none()
        return None if row is None else (row.state, row.run_at)


def access_end(db, ws: str, buyer: str, source: str) -> set[datetime | None]:
    with db.read() as session:
        rows = entitlements_service.list_for_buyer(session=session, workspace_id=ws, buyer_id=buyer)
        return {e.access_ends_at for e in rows if e.source == source}


def fires_and_charges(
    db, ws: str, buyer: str, sid: str, end: datetime, next_end: datetime, total: int, reason: str
) -> Order:
    """The period-end job fires at ``end``: the subscription is active for [end, next_end), a paid order of
    ``total`` is dated ``end``, and the next period's end is scheduled. Returns that order."""
    assert run(db, end, sid) == [(due.PERIOD_END, sid, "again")]
    status, state = sub(db, ws, sid)
    assert (status, state.current_period_start, state.current_period_end) == ("active", end, next_end)
    charge = orders(db, ws, buyer)[-1]
    assert (charge.status, charge.total, charge.created_at, charge.lines[0]["reason"]) == (
        "paid",
        total,
        end,
        reason,
    )
    assert job(db, due.PERIOD_END, sid) == ("queued", next_end)
    return charge


# -- renewals at period end -------------------------------------------------------------------------------


def test_a_manual_subscription_renews_once_at_its_period_end(db, shop) -> None:
    ws, buyer = shop
    first, sid = subscribe(db, ws, buyer, "inner-circle", T0)
    end = sub(db, ws, sid)[1].current_period_end
    assert end == datetime(2026, 4, 2, 10, 0, tzinfo=UTC)
    assert job(db, due.PERIOD_END, sid) == ("queued", end)  # scheduled when the subscription started

    assert run(db, end - SECOND, sid) == []  # not before its time
    assert [o.id for o in orders(db, ws, buyer)] == [first]

    renewal = fires_and_charges(
        db, ws, buyer, sid, end, datetime(2026, 5, 2, 10, 0, tzinfo=UTC), 9900, "renewal"
    )

    # Once: the same worker again, and a restarted one (a new owner), find nothing due.
    assert run(db, end, sid) == []
    assert run(db, end + timedelta(hours=1), sid, owner="restarted") == []
    assert len(orders(db, ws, buyer)) == 2
    _check(db, ws, buyer, end + timedelta(hours=1))  # charged == booked, the ledger balances, access is paid
    with db.read() as session:
        booked = ledger_service.refundable(session=session, workspace_id=ws, order_id=renewal.id).amount
    assert booked == renewal.total == 9900


def test_a_renewal_claimed_by_a_worker_that_died_fires_once_after_its_lease(db, shop) -> None:
    ws, buyer = shop
    _, sid = subscribe(db, ws, buyer, "inner-circle", T0)
    end = sub(db, ws, sid)[1].current_period_end
    with db.write() as session:  # a worker claims the job and is killed before its transaction commits
        lease.claim(session, owner="dead", now=end, lease_s=60, kinds=(due.PERIOD_END,), limit=100)
    assert run(db, end + timedelta(seconds=30), sid, owner="w2") == []  # its lease still runs
    assert run(db, end + timedelta(seconds=61), sid, owner="w2") == [(due.PERIOD_END, sid, "again")]
    assert len(orders(db, ws, buyer)) == 2
    assert run(db, end + timedelta(seconds=200), sid, owner="w3") == []


def test_a_runner_that_was_down_renews_each_missed_period_once_back_to_back(db, shop) -> None:
    ws, buyer = shop
    _, sid = subscribe(db, ws, buyer, "inner-circle", T0)
    late = datetime(2026, 7, 15, tzinfo=UTC)  # four period ends passed: Apr 2, May 2, Jun 2, Jul 2
    statuses = []
    while ran := run(db, late, sid):
        statuses += [s for _, _, s in ran]
    assert statuses == ["again"] * 4
    renewals = [o for o in orders(db, ws, buyer)][1:]
    assert [o.created_at.month for o in renewals] == [4, 5, 6, 7]
    assert sub(db, ws, sid)[1].current_period_end == datetime(2026, 8, 2, 10, 0, tzinfo=UTC)
    _check(db, ws, buyer, late)


def test_a_state_change_before_the_period_end_makes_the_job_a_no_op(db, shop) -> None:
    ws, buyer = shop
    _, sid = subscribe(db, ws, buyer, "inner-circle", T0)
    end = sub(db, ws, sid)[1].current_period_end
    act(db, ws, sid, "renew", end)  # renewed by hand (the API's renew action) before the runner came by
    assert run(db, end, sid) == [(due.PERIOD_END, sid, "again")]  # found it renewed: moves on to the next end
    assert len(orders(db, ws, buyer)) == 2  # one renewal, not two

    _, other = subscribe_again(db, ws, "bea", "inner-circle", T0)
    act(db, ws, other, "cancel", T0 + timedelta(days=3), at_period_end=False)
    assert run(db, end, other) == [(due.PERIOD_END, other, "done")]
    assert sub(db, ws, other)[0] == "canceled"
    assert job(db, due.PERIOD_END, other) == ("done", end)


def subscribe_again(db, ws: str, user: str, plan: str, at: datetime) -> tuple[str, str]:
    with db.write() as session:
        buyer = checkout_service.buyer_for(session=session, workspace_id=ws, user_id=user)
    _order_id, sid = subscribe(db, ws, buyer, plan, at)
    return buyer, sid


def test_a_paused_subscription_waits_and_its_resumed_period_end_is_rescheduled(db, shop) -> None:
    ws, buyer = shop
    _, sid = subscribe(db, ws, buyer, "inner-circle", T0)
    end = sub(db, ws, sid)[1].current_period_end
    act(db, ws, sid, "pause", T0 + timedelta(days=10))
    assert run(db, end, sid) == [(due.PERIOD_END, sid, "done")]  # paused: nothing is due
    assert len(orders(db, ws, buyer)) == 1
    act(db, ws, sid, "resume", end + timedelta(days=5))  # the paused 26 days are added to the period
    new_end = sub(db, ws, sid)[1].current_period_end
    assert new_end == end + timedelta(days=26)
    assert job(db, due.PERIOD_END, sid) == ("queued", new_end)
    assert run(db, new_end - SECOND, sid) == []
    assert run(db, new_end, sid) == [(due.PERIOD_END, sid, "again")]
    assert len(orders(db, ws, buyer)) == 2


# -- trial ends -------------------------------------------------------------------------------------------


def test_a_trial_converts_at_its_end_with_its_first_charge(db, shop) -> None:
    ws, buyer = shop
    _first, sid = subscribe(db, ws, buyer, "membership-monthly", T0)
    status, state = sub(db, ws, sid)
    trial_end = T0 + timedelta(days=7)
    assert (status, state.trial_end, orders(db, ws, buyer)[0].total) == ("trialing", trial_end, 0)
    _check(db, ws, buyer, trial_end - SECOND)  # trial: the space, no coaching quota yet

    assert run(db, trial_end - SECOND, sid) == []
    fires_and_charges(
        db, ws, buyer, sid, trial_end, datetime(2026, 4, 9, 10, 0, tzinfo=UTC), 3900, "first_period"
    )
    assert run(db, trial_end, sid) == [] and run(db, trial_end, sid, owner="restarted") == []
    assert len(orders(db, ws, buyer)) == 2
    _check(db, ws, buyer, trial_end)  # paid now: the coaching quota too


def test_a_trial_set_to_cancel_ends_at_its_end_without_a_charge(db, shop) -> None:
    ws, buyer = shop
    _, sid = subscribe(db, ws, buyer, "membership-monthly", T0)
    trial_end = T0 + timedelta(days=7)
    act(db, ws, sid, "cancel", T0 + timedelta(days=2), at_period_end=True)
    _check(db, ws, buyer, trial_end - SECOND)  # access until the trial's end, not before
    assert run(db, trial_end, sid) == [(due.PERIOD_END, sid, "done")]
    assert sub(db, ws, sid)[0] == "canceled"
    assert [o.total for o in orders(db, ws, buyer)] == [0]  # never charged
    assert access_end(db, ws, buyer, sid) == {trial_end}
    _check(db, ws, buyer, trial_end)


# -- payment retries --------------------------------------------------------------------------------------


def past_due(db, ws: str, buyer: str) -> tuple[str, datetime]:
    """A manual subscription renewed by its job, whose renewal the creator then records as unpaid."""
    _, sid = subscribe(db, ws, buyer, "inner-circle", T0)
    end = sub(db, ws, sid)[1].current_period_end
    assert run(db, end, sid) == [(due.PERIOD_END, sid, "again")]
    failed_at = end + timedelta(hours=2)
    act(db, ws, sid, "payment_failed", failed_at)
    return sid, failed_at


def test_retries_fire_on_their_dates_then_the_subscription_is_canceled(db, shop) -> None:
    ws, buyer = shop
    sid, failed_at = past_due(db, ws, buyer)
    status, state = sub(db, ws, sid)
    assert (status, state.next_retry_at) == ("past_due", failed_at + timedelta(days=1))
    assert job(db, due.PAYMENT_RETRY, sid) == ("queued", failed_at + timedelta(days=1))
    _check(db, ws, buyer, failed_at)  # the unpaid renewal is booked back; access goes on during the retries

    seen = []
    for days, nxt in ((1, 3), (3, 5)):  # the state machine's schedule: +1, +3, +5 days from the failure
        at = failed_at + timedelta(days=days)
        assert run(db, at - SECOND, sid) == []
        assert run(db, at, sid) == [(due.PAYMENT_RETRY, sid, "again")]
        assert run(db, at, sid, owner="restarted") == []
        status, state = sub(db, ws, sid)
        seen.append((status, state.failed_attempts, state.next_retry_at))
        assert state.next_retry_at == failed_at + timedelta(days=nxt)
        _check(db, ws, buyer, at)
    assert [s[:2] for s in seen] == [("past_due", 2), ("past_due", 3)]

    last = failed_at + timedelta(days=5)
    assert run(db, last, sid) == [(due.PAYMENT_RETRY, sid, "done")]
    status, state = sub(db, ws, sid)
    assert (status, state.canceled_at, state.failed_attempts) == ("canceled", last, 4)
    assert access_end(db, ws, buyer, sid) == {last}
    # Nothing more, ever: the period end scheduled while it was active finds it canceled and does nothing.
    assert run(db, last + timedelta(days=40), sid, owner="restarted") == [(due.PERIOD_END, sid, "done")]
    assert len(orders(db, ws, buyer)) == 2  # the retries charge nothing new: the unpaid renewal stays unpaid
    assert orders(db, ws, buyer)[-1].status == "unpaid"
    _check(db, ws, buyer, last)


def test_a_payment_recorded_before_the_retry_makes_it_a_no_op(db, shop) -> None:
    ws, buyer = shop
    sid, failed_at = past_due(db, ws, buyer)
    act(db, ws, sid, "payment_succeeded", failed_at + timedelta(hours=20))  # the bank transfer arrived
    assert run(db, failed_at + timedelta(days=1), sid) == [(due.PAYMENT_RETRY, sid, "done")]
    status, state = sub(db, ws, sid)
    assert (status, state.failed_attempts) == ("active", 0)
    assert orders(db, ws, buyer)[-1].status == "paid"  # booked again by the recovery
    assert job(db, due.PERIOD_END, sid) == ("queued", state.current_period_end)  # renewals go on
    _check(db, ws, buyer, failed_at + timedelta(days=1))


# -- cancel at period end ---------------------------------------------------------------------------------


def test_cancel_at_period_end_ends_access_at_the_end_not_before(db, shop) -> None:
    ws, buyer = shop
    _, sid = subscribe(db, ws, buyer, "inner-circle", T0)
    end = sub(db, ws, sid)[1].current_period_end
    act(db, ws, sid, "cancel", T0 + timedelta(days=10), at_period_end=True)
    _check(db, ws, buyer, end - SECOND)  # (delivers the grants)
    assert access_end(db, ws, buyer, sid) == {None}  # paid through the period: access stays
    assert run(db, end - SECOND, sid) == []

    assert run(db, end, sid) == [(due.PERIOD_END, sid, "done")]
    assert sub(db, ws, sid)[0] == "canceled"
    assert access_end(db, ws, buyer, sid) == {end}
    assert len(orders(db, ws, buyer)) == 1  # not renewed, not charged
    assert run(db, end + timedelta(days=31), sid, owner="restarted") == []
    _check(db, ws, buyer, end)


def test_a_withdrawn_cancellation_renews_as_usual(db, shop) -> None:
    ws, buyer = shop
    _, sid = subscribe(db, ws, buyer, "inner-circle", T0)
    end = sub(db, ws, sid)[1].current_period_end
    act(db, ws, sid, "cancel", T0 + timedelta(days=10), at_period_end=True)
    act(db, ws, sid, "resume", T0 + timedelta(days=12))
    assert run(db, end, sid) == [(due.PERIOD_END, sid, "again")]
    assert (sub(db, ws, sid)[0], len(orders(db, ws, buyer))) == ("active", 2)


# -- Stripe subscriptions are Stripe's --------------------------------------------------------------------


def test_stripe_subscriptions_get_no_due_work_and_are_never_charged_twice(db, shop) -> None:
    ws, buyer = shop
    _, sid = subscribe(db, ws, buyer, "inner-circle", T0, provider="stripe", ref="sub_stripe_1")
    end = sub(db, ws, sid)[1].current_period_end
    assert job(db, due.PERIOD_END, sid) is None  # nothing scheduled: Stripe renews it
    with db.write() as session:
        assert checkout_service.sweep_due(session=session) >= 0
    assert job(db, due.PERIOD_END, sid) is None  # nor by the sweep

    with db.write() as session:  # a stray job (say, from a provider change) is a no-op all the same
        due.at(session, due.PERIOD_END, sid, ws, end)
    assert run(db, end, sid) == [(due.PERIOD_END, sid, "done")]
    assert len(orders(db, ws, buyer)) == 1

    act(db, ws, sid, "renew", end, actor="stripe")  # Stripe's paid cycle invoice, as its webhook applies it
    assert run(db, end + timedelta(days=40), sid) == []
    assert [o.total for o in orders(db, ws, buyer)] == [9900, 9900]  # one charge per period


# -- drop holds -------------------------------------------------------------------------------------------


@pytest.fixture
def drop(db, workspace):
    """The demo drop with ``inventory`` units, signed off, and a checkout function per buyer."""

    def make(inventory: int = 100):
        with db.write() as session:
            text = CATALOG.replace("inventory: 100", f"inventory: {inventory}").replace(
                "per_buyer_limit: 2", f"per_buyer_limit: {min(2, inventory)}"
            )
            offers_service.load_catalog(session=session, workspace_id=workspace.id, text=text)
            offers_service.sign_off(
                session=session, workspace_id=workspace.id, key="drop-limited-print", actor="c"
            )

        def checkout(user: str, at: datetime) -> tuple[str, str]:
            with db.write() as session:
                buyer = checkout_service.buyer_for(session=session, workspace_id=workspace.id, user_id=user)
                order = checkout_service.begin(session=session, workspace_id=workspace.id, buyer_id=buyer,
                                               offer_key="drop-limited-print", currency="USD", now=at)  # fmt: skip
            return buyer, order.id

        return checkout

    return make


def stock(db, ws: str) -> tuple[int, int]:
    with db.read() as session:
        row = checkout_repository.stock(session, ws, "drop-limited-print")
        return row.sold, row.held


def hold_of(db, ws: str, order_id: str) -> str:
    with db.read() as session:
        (hold,) = checkout_repository.holds(session, ws, order_id)
        return hold.status


def claimed(db, ws: str, buyer: str) -> int:
    with db.read() as session:
        return checkout_repository.claimed(session, ws, "drop", "drop-limited-print", buyer)


def pay(db, ws: str, order_id: str, at: datetime) -> None:
    with db.write() as session:
        checkout_service.mark_paid(session=session, workspace_id=ws, order_id=order_id, actor="t", paid_at=at)


def test_an_expired_hold_goes_back_to_stock_by_itself_and_a_late_payment_takes_it_again(
    db, workspace, drop
) -> None:
    ws = workspace.id
    checkout = drop()
    buyer, order = checkout("ada", DROP_T0)
    expiry = DROP_T0 + timedelta(minutes=checkout_service.HOLD_MINUTES)
    assert job(db, due.HOLD_EXPIRY, order) == ("queued", expiry)
    assert (stock(db, ws), claimed(db, ws, buyer)) == ((0, 1), 1)

    assert run(db, expiry - SECOND, order) == []
    assert stock(db, ws) == (0, 1)
    assert run(db, expiry, order) == [(due.HOLD_EXPIRY, order, "done")]
    assert (stock(db, ws), claimed(db, ws, buyer), hold_of(db, ws, order)) == ((0, 0), 0, "expired")
    assert (
        run(db, expiry, order) == [] and run(db, expiry + timedelta(hours=1), order, owner="restarted") == []
    )
    assert stock(db, ws) == (0, 0)  # released once: never below zero
    with db.read() as session:
        assert checkout_repository.order(session, ws, order).status == "pending"  # still payable

    pay(db, ws, order, expiry + timedelta(minutes=5))  # the late payment path: the unit is taken again
    assert (stock(db, ws), claimed(db, ws, buyer), hold_of(db, ws, order)) == ((1, 0), 1, "converted")
    with db.read() as session:
        paid = checkout_repository.order(session, ws, order)
        assert paid.status == "paid"
        assert (
            ledger_service.refundable(session=session, workspace_id=ws, order_id=order).amount == paid.total
        )
        assert ledger_service.unbalanced_orders(session=session, workspace_id=ws) == []


def test_a_late_payment_after_the_drop_sold_out_is_refused_as_today(db, workspace, drop) -> None:
    ws = workspace.id
    checkout = drop(inventory=1)
    _, late = checkout("ada", DROP_T0)
    expiry = DROP_T0 + timedelta(minutes=checkout_service.HOLD_MINUTES)
    assert run(db, expiry, late) == [(due.HOLD_EXPIRY, late, "done")]
    _, bought = checkout("bea", expiry + timedelta(minutes=1))  # the released unit is sold to someone else
    pay(db, ws, bought, expiry + timedelta(minutes=2))
    with pytest.raises(SoldOut) as refused:
        pay(db, ws, late, expiry + timedelta(minutes=3))
    assert refused.value.code == "sold_out_after_expiry"
    assert stock(db, ws) == (1, 0)


def test_a_hold_paid_or_canceled_before_its_expiry_is_left_alone(db, workspace, drop) -> None:
    ws = workspace.id
    checkout = drop()
    _, paid = checkout("ada", DROP_T0)
    _, canceled = checkout("bea", DROP_T0)
    pay(db, ws, paid, DROP_T0 + timedelta(minutes=3))
    with db.write() as session:
        checkout_service.cancel_pending(
            session=session, workspace_id=ws, order_id=canceled, reason="abandoned"
        )
    expiry = DROP_T0 + timedelta(minutes=checkout_service.HOLD_MINUTES)
    assert sorted(run(db, expiry, paid, canceled)) == sorted(
        [(due.HOLD_EXPIRY, paid, "done"), (due.HOLD_EXPIRY, canceled, "done")]
    )
    assert (hold_of(db, ws, paid), hold_of(db, ws, canceled), stock(db, ws)) == (
        "converted",
        "released",
        (1, 0),
    )


# -- the sweep --------------------------------------------------------------------------------------------


def test_the_sweep_schedules_due_work_whose_job_is_missing_once(db, shop, drop) -> None:
    ws, buyer = shop
    _, active = subscribe(db, ws, buyer, "inner-circle", T0 + timedelta(days=1))
    _bea, late_sid = subscribe_again(db, ws, "bea", "inner-circle", T0)
    _, stripe_sid = subscribe_again(db, ws, "cy", "inner-circle", T0 + timedelta(days=1))
    with db.write() as session:  # cy's is a Stripe subscription after all
        row = subscriptions_service.row_of(session, ws, stripe_sid)
        row.provider_subscription_id = "sub_stripe_2"
    end = sub(db, ws, late_sid)[1].current_period_end
    assert run(db, end, late_sid) == [(due.PERIOD_END, late_sid, "again")]
    act(db, ws, late_sid, "payment_failed", end + timedelta(hours=1))
    _, order = drop()("dee", DROP_T0)
    mine = [active, late_sid, stripe_sid, order]
    with db.write() as session:  # as data from before due work existed: no jobs at all
        session.execute(delete(Job).where(Job.key.in_([due.key(ws, k) for k in mine])))

    runner.ensure_recurring(db, now=T0, only=(due.SWEEP,))
    ran = runner.run_due(db, owner="w1", now=T0, only=(due.SWEEP,))
    assert [(r.kind, r.status) for r in ran] == [(due.SWEEP, "again")]
    assert job(db, due.SWEEP, runner.RECURRING_KEY) == ("queued", T0 + timedelta(seconds=due.SWEEP_EVERY_S))
    expected = {
        (due.PERIOD_END, active): ("queued", end + timedelta(days=1)),
        (due.PAYMENT_RETRY, late_sid): ("queued", end + timedelta(hours=1, days=1)),
        (due.HOLD_EXPIRY, order): ("queued", DROP_T0 + timedelta(minutes=checkout_service.HOLD_MINUTES)),
    }
    found = {(k, key): job(db, k, key) for k in KINDS for key in mine if job(db, k, key) is not None}
    assert found == expected  # nothing for the Stripe subscription, nor a period end for the past-due one

    with db.write() as session:  # idempotent: a second sweep changes nothing
        checkout_service.sweep_due(session=session)
    assert {
        (k, key): job(db, k, key) for k in KINDS for key in mine if job(db, k, key) is not None
    } == expected
    nxt = end + timedelta(days=1)
    assert run(db, nxt, active) == [(due.PERIOD_END, active, "again")]  # and the work then fires once
    assert run(db, nxt, active, owner="restarted") == []


# -- random sequences: due work among every other operation ------------------------------------------------


@pytest.mark.parametrize("seed", range(8))
def test_random_sequences_with_the_clock_running_keep_money_and_access_exact(db, shop, seed: int) -> None:
    """The issue-8 property test's operations, interleaved with the clock moving forward and due work
    running: after every step the ledger balances, each order's charge is booked, access is what is paid."""
    ws, buyer = shop
    rng = random.Random(seed)
    now = datetime(2026, 1, 5, 9, 0, tzinfo=UTC)
    steps = ["buy", "subscribe", "subscribe", "pay", "pay", "refund_part", "refund_full", "cancel", "renew", "fail",
             "fail", "recover", "change_plan", "tick", "tick", "tick", "tick"]  # fmt: skip
    done: list[str] = []
    for _ in range(60):
        step = rng.choice(steps)
        if step == "tick":
            now += timedelta(hours=rng.choice([1, 20, 24 * 3, 24 * 12, 24 * 35]))
            while runner.run_due(db, owner=rng.choice(["w1", "w2"]), now=now, only=KINDS, limit=20):
                pass
            done.append(step)
        else:
            now += timedelta(minutes=rng.randint(1, 600))
            try:
                now = _step(db, ws, buyer, rng, step, now)
                done.append(step)
            except (CheckoutError, SubscriptionError):
                pass  # a refused step is rolled back and changes nothing
        _check(db, ws, buyer, now)
    assert len(done) > 60 // 3 and done.count("tick") >= 5  # the sequence mostly ran, due work among it
