"""Property test over random sequences of checkouts, payments, refunds, cancellations, fulfilment runs,
subscription renewals, failed and recovered payments and plan changes (seeded: the same sequences on every
run). After every step: the ledger balances, what each order charged is what the ledger holds for it, and
the buyer may use exactly what is paid for (issue 8, acceptance)."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from offerloop.checkout import repository as checkout_repository
from offerloop.checkout import service as checkout_service
from offerloop.checkout.exceptions import CheckoutError
from offerloop.entitlements import service as entitlements_service
from offerloop.ledger import service as ledger_service
from offerloop.offers import service as offers_service
from offerloop.subscriptions import service as subscriptions_service
from offerloop.subscriptions.exceptions import SubscriptionError

CATALOG = (Path(__file__).resolve().parents[2] / "examples" / "demo" / "offers.yaml").read_text()
STEPS = 40
LIVE = ("trialing", "active", "past_due")


def _orders(session, ws, buyer):
    return checkout_repository.orders_of(session, ws, buyer)


def _subs(session, ws, buyer):
    return subscriptions_service.of_buyer(session=session, workspace_id=ws, buyer_id=buyer)


def _check(db, ws: str, buyer: str, now: datetime) -> None:
    checkout_service.run_fulfilment(db=db, now=now)
    with db.read() as session:
        assert ledger_service.unbalanced_orders(session=session, workspace_id=ws) == []
        for order in _orders(session, ws, buyer):
            booked = ledger_service.entries(session=session, workspace_id=ws, order_id=order.id)
            if order.status in ("pending", "canceled") or order.total == 0:
                assert booked == [], (order.id, order.status)
                continue
            held = ledger_service.refundable(session=session, workspace_id=ws, order_id=order.id).amount
            expected = 0 if order.status == "unpaid" else order.total - order.refunded
            assert held == expected, (order.id, order.status, held, expected)

        def may(component: str, ref: str) -> bool:
            return entitlements_service.check(
                session=session, workspace_id=ws, buyer_id=buyer, component=component, ref=ref, now=now
            ).allowed

        owns_product = any(
            o.status in ("paid", "partially_refunded") and o.lines[0]["offer_key"] == "pricing-playbook"
            for o in _orders(session, ws, buyer)
        )
        assert may("download", "pricing-playbook-pdf") == owns_product
        subs = {s.status for s in _subs(session, ws, buyer)}
        assert may("community_space", "creator-circle") == bool(subs & set(LIVE)), subs
        assert may("coaching_quota", "coaching-1to1") == bool(subs & {"active", "past_due"}), subs


def _step(db, ws: str, buyer: str, rng: random.Random, step: str, now: datetime) -> datetime:
    """One operation in its own unit of work (rolled back when refused); the clock after it."""
    with db.write() as session:
        orders = _orders(session, ws, buyer)
        pending = [o for o in orders if o.status == "pending"]
        paid = [o for o in orders if o.status in ("paid", "partially_refunded") and o.total > o.refunded]
        live = [s for s in _subs(session, ws, buyer) if s.status in LIVE]
        sub = live[-1] if live else None
        state = subscriptions_service.state_of(sub) if sub else None

        def act(action: str, at: datetime, **extra) -> None:
            assert sub is not None
            subscriptions_service.act(session=session, workspace_id=ws, subscription_id=sub.id,
                                                 action=action, at=at, **extra)  # fmt: skip

        if step == "buy":
            checkout_service.begin(session=session, workspace_id=ws, buyer_id=buyer, offer_key="pricing-playbook",
                                   currency="USD", tax_percent="8.25", now=now)  # fmt: skip
        elif step == "subscribe" and sub is None:
            plan = rng.choice(["membership-monthly", "membership-annual"])
            checkout_service.begin(session=session, workspace_id=ws, buyer_id=buyer, offer_key=plan, currency="USD",
                                   tax_percent="8.25", now=now)  # fmt: skip
        elif step == "pay" and pending:
            checkout_service.mark_paid(session=session, workspace_id=ws, order_id=rng.choice(pending).id, actor="t",
                                       paid_at=now, platform_fee_percent="5")  # fmt: skip
        elif step == "refund_part" and paid:
            order = rng.choice(paid)
            part = rng.randint(1, order.total - order.refunded)
            checkout_service.refund(
                session=session, workspace_id=ws, order_id=order.id, amount=part, actor="t", at=now
            )
        elif step == "refund_full" and paid:
            checkout_service.refund(
                session=session, workspace_id=ws, order_id=rng.choice(paid).id, actor="t", at=now
            )
        elif step == "cancel" and pending:
            checkout_service.cancel_pending(session=session, workspace_id=ws, order_id=rng.choice(pending).id,
                                            reason="abandoned")  # fmt: skip
        elif (
            step == "renew" and sub is not None and state is not None and sub.status in ("trialing", "active")
        ):
            assert state.current_period_end is not None
            now = max(now, state.current_period_end)
            act("renew", now)
        elif (
            step == "fail" and sub is not None and state is not None and sub.status in ("active", "past_due")
        ):
            if state.next_retry_at is not None:
                now = max(now, state.next_retry_at)
            act("payment_failed", now)
        elif step == "recover" and sub is not None and sub.status == "past_due":
            act("payment_succeeded", now)
        elif step == "change_plan" and sub is not None and sub.status in ("trialing", "active"):
            act(
                "change_plan",
                now,
                plan="membership-annual" if sub.offer_key == "membership-monthly" else "membership-monthly",
            )
    return now


@pytest.mark.parametrize("seed", range(12))
def test_random_commerce_sequences_keep_money_and_access_exact(db, workspace, seed: int) -> None:
    rng = random.Random(seed)
    ws = workspace.id
    with db.write() as session:
        offers_service.load_catalog(session=session, workspace_id=ws, text=CATALOG)
        buyer = checkout_service.buyer_for(session=session, workspace_id=ws, user_id="ada")
    now = datetime(2027, 1, 4, 9, 0, tzinfo=UTC)
    steps = ["buy", "subscribe", "pay", "pay", "refund_part", "refund_full", "cancel", "fulfil", "renew", "fail",
             "recover", "change_plan"]  # fmt: skip
    done: list[str] = []
    for _ in range(STEPS):
        step = rng.choice(steps)
        now += timedelta(minutes=rng.randint(1, 600))
        try:
            now = _step(db, ws, buyer, rng, step, now)
            done.append(step)
        except (CheckoutError, SubscriptionError):
            pass  # a refused step (a period that ended: renew first) is rolled back and changes nothing
        if step == "fulfil" or rng.random() < 0.5:
            _check(db, ws, buyer, now)
    _check(db, ws, buyer, now)
    assert len(done) > STEPS // 2  # the sequence mostly ran
