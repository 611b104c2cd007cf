"""Pausing a subscription Stripe bills: state and access follow Stripe, and a creator's pause stands.

A pause or resume made in Stripe's dashboard reaches us only as ``customer.subscription.updated`` with
``pause_collection`` set or cleared (Stripe's ``status`` stays ``active``): it pauses (access ends) or resumes
(access comes back) here, and asks Stripe nothing. A pause the creator made (their keys, console, or Stripe's
dashboard) is not the buyer's to lift from the buyer portal; the creator lifts it. Stripe keeps its period
through ``pause_collection``, so a resume does not push our period end past Stripe's.

Driven over HTTP against the loopback Stripe stand-in (``FakeStripeServer``), with signed webhooks."""

from __future__ import annotations

from datetime import UTC, datetime

from tests.checkout.test_checkout_flow import deliver
from tests.checkout.test_stripe_provider import event
from tests.checkout.test_stripe_refunds import balanced
from tests.checkout.test_stripe_subscription_actions import (
    SUB,
    T0,
    act,
    at,
    changes,
    echo,
    events_named,
    key,
    mailer,
    state,
    stripe_client,
    stripe_plan,
)
from tests.portal.helpers import csrf_of, sign_in

from offerloop.checkout import service as checkout_service
from offerloop.db.uow import Database

__all__ = ["mailer", "stripe_client"]


def plan(client, headers, write_headers, fake, db: Database) -> tuple[dict, dict]:
    """The inner circle bought through Stripe, its components granted (fulfilment run)."""
    order, sub = stripe_plan(client, headers, write_headers, fake)
    checkout_service.run_fulfilment(db=db)
    return order, sub


def access_ends(client, headers, sub: dict) -> set[datetime | None]:
    """When each grant the subscription gave ends (None: it does not)."""
    r = client.get(f"/v1/buyers/{sub['buyer_id']}/entitlements", headers=headers,
                   params={"source": sub["id"], "limit": 100})  # fmt: skip
    assert r.status_code == 200, r.text
    grants = r.json()["items"]
    assert grants
    return {
        None if g["access_ends_at"] is None else datetime.fromisoformat(g["access_ends_at"]) for g in grants
    }


def when(seconds: int) -> datetime:
    return datetime.fromtimestamp(T0 + seconds, UTC)


def dashboard(fake, paused: bool, event_id: str, seconds: int) -> dict:
    """Stripe's customer.subscription.updated after its dashboard paused (void) or resumed collection."""
    fake.state.subscriptions[SUB]["pause_collection"] = (
        {"behavior": "void", "resumes_at": None} if paused else None
    )
    payload = echo(fake, "customer.subscription.updated", event_id, T0 + seconds)
    payload["data"]["previous_attributes"] = {
        "pause_collection": None if paused else {"behavior": "void", "resumes_at": None}
    }
    return payload


def test_a_pause_and_resume_made_in_stripes_dashboard_are_applied_here(
    stripe_client, db, secret_headers, write_headers, fake_stripe
):
    client = stripe_client
    _order, sub = plan(client, secret_headers, write_headers, fake_stripe, db)
    period = state(client, secret_headers, sub)["state"]
    assert access_ends(client, secret_headers, sub) == {None}
    paused = dashboard(fake_stripe, True, "evt_dash_pause", 86_400)
    assert deliver(client, paused).json()["outcome"] == "paused"
    assert deliver(client, paused).json()["outcome"] == "duplicate"
    held = state(client, secret_headers, sub)
    assert (held["status"], held["state"]["paused_by"]) == ("paused", "creator")
    assert access_ends(client, secret_headers, sub) == {when(86_400)}
    resumed = dashboard(fake_stripe, False, "evt_dash_resume", 3 * 86_400)
    # the pause's event redelivered after the resume's is stale: it pauses nothing again
    assert deliver(client, resumed).json()["outcome"] == "resumed"
    assert deliver(client, {**paused, "id": "evt_dash_pause_late"}).json()["outcome"] == "ignored_stale"
    after = state(client, secret_headers, sub)
    assert (after["status"], after["state"]["paused_by"]) == ("active", None)
    assert access_ends(client, secret_headers, sub) == {None}
    # Stripe kept its period through pause_collection: ours is still Stripe's
    assert after["state"]["current_period_end"] == period["current_period_end"]
    assert fake_stripe.state.subscriptions[SUB]["current_period_end"] == int(
        datetime.fromisoformat(period["current_period_end"]).timestamp()
    )
    assert changes(fake_stripe) == []  # a report is not a command: Stripe is asked nothing
    assert events_named(client, secret_headers, sub, "Subscription Paused") == 1
    assert events_named(client, secret_headers, sub, "Subscription Resumed") == 1
    balanced(client, secret_headers)


def test_a_pause_and_resume_made_here_keep_stripes_period(
    stripe_client, db, secret_headers, write_headers, fake_stripe
):
    client = stripe_client
    _order, sub = plan(client, secret_headers, write_headers, fake_stripe, db)
    end = state(client, secret_headers, sub)["state"]["current_period_end"]
    assert act(client, secret_headers, sub, "pause", at=at(86_400)).status_code == 200
    r = act(client, secret_headers, sub, "resume", at=at(5 * 86_400))
    assert (r.status_code, r.json()["status"]) == (200, "active"), r.text
    assert r.json()["state"]["current_period_end"] == end  # not pushed 4 days past Stripe's
    assert access_ends(client, secret_headers, sub) == {None}


def test_a_buyer_cannot_resume_a_pause_the_creator_made(
    stripe_client, db, workspace, secret_headers, write_headers, fake_stripe, mailer
):
    client = stripe_client
    _order, sub = plan(client, secret_headers, write_headers, fake_stripe, db)
    assert act(client, secret_headers, sub, "pause", at=at(86_400)).status_code == 200
    sign_in(client, workspace.id, mailer, "ada@example.com")
    url = f"/p/{workspace.id}/subscription/{sub['id']}"
    page = client.get(f"/p/{workspace.id}/subscription").text
    assert "Resume</button>" not in page and "Paused by" in page
    csrf = csrf_of(page)
    refused = client.post(url, data={"csrf_token": csrf, "action": "resume"})
    assert refused.status_code == 409 and "only the creator can resume it" in refused.text
    assert state(client, secret_headers, sub)["status"] == "paused"
    assert access_ends(client, secret_headers, sub) == {when(86_400)}
    assert [f for _, f, _ in changes(fake_stripe)] == [
        {"pause_collection[behavior]": "void", "metadata[offerloop_pause]": f"creator:{key(sub, 0, 'pause')}"}
    ]
    # the creator resumes it
    r = act(client, secret_headers, sub, "resume", at=at(2 * 86_400))
    assert (r.status_code, r.json()["status"]) == (200, "active"), r.text
    assert access_ends(client, secret_headers, sub) == {None}
    # the buyer's own pause is theirs to lift
    csrf = csrf_of(client.get(f"/p/{workspace.id}/subscription").text)
    assert client.post(url, data={"csrf_token": csrf, "action": "pause"}).status_code == 200
    assert state(client, secret_headers, sub)["state"]["paused_by"] == "buyer"
    page = client.get(f"/p/{workspace.id}/subscription").text
    assert "Resume</button>" in page
    resumed = client.post(url, data={"csrf_token": csrf_of(page), "action": "resume"})
    assert resumed.status_code == 200, resumed.text
    assert state(client, secret_headers, sub)["status"] == "active"
    balanced(client, secret_headers)


def test_a_pause_made_in_stripes_dashboard_is_the_creators_and_stands_against_the_buyer(
    stripe_client, db, workspace, secret_headers, write_headers, fake_stripe, mailer
):
    client = stripe_client
    _order, sub = plan(client, secret_headers, write_headers, fake_stripe, db)
    assert (
        deliver(client, dashboard(fake_stripe, True, "evt_dash_pause", 86_400)).json()["outcome"] == "paused"
    )
    sign_in(client, workspace.id, mailer, "ada@example.com")
    csrf = csrf_of(client.get(f"/p/{workspace.id}/subscription").text)
    refused = client.post(f"/p/{workspace.id}/subscription/{sub['id']}", data={"csrf_token": csrf,
                                                                               "action": "resume"})  # fmt: skip
    assert refused.status_code == 409, refused.text
    assert state(client, secret_headers, sub)["status"] == "paused"
    assert changes(fake_stripe) == []


def test_a_dashboard_pause_across_a_period_end_resumes_into_stripes_period_and_renews_with_it(
    stripe_client, db, secret_headers, write_headers, fake_stripe
):
    """Paused Dec 1 .. Jan 5 in Stripe's dashboard: Stripe voided the Dec 30 invoice and its period runs Dec 30 ..
    Jan 30. Resumed here, our period is Stripe's (not Dec 1's 11 days left pushed to Feb 4, nor Nov 30 .. Dec 30
    still), so Stripe's Jan 30 invoice renews exactly the next period, once."""
    client = stripe_client
    order, sub = plan(client, secret_headers, write_headers, fake_stripe, db)
    assert (
        deliver(client, dashboard(fake_stripe, True, "evt_dash_pause", 86_400)).json()["outcome"] == "paused"
    )
    dec30, jan30 = datetime(2026, 12, 30, 0, 53, 20, tzinfo=UTC), datetime(2027, 1, 30, 0, 53, 20, tzinfo=UTC)
    stripe_sub = fake_stripe.state.subscriptions[SUB]
    assert stripe_sub["current_period_end"] == int(dec30.timestamp())
    stripe_sub.update(current_period_start=int(dec30.timestamp()), current_period_end=int(jan30.timestamp()))
    jan5 = int(datetime(2027, 1, 5, tzinfo=UTC).timestamp()) - T0
    assert (
        deliver(client, dashboard(fake_stripe, False, "evt_dash_resume", jan5)).json()["outcome"] == "resumed"
    )
    period = state(client, secret_headers, sub)["state"]
    assert (datetime.fromisoformat(period["current_period_start"]), datetime.fromisoformat(
        period["current_period_end"])) == (dec30, jan30)  # fmt: skip
    paid = event("invoice.paid", {"id": "in_jan30", "object": "invoice", "subscription": SUB,
                                  "billing_reason": "subscription_cycle", "amount_paid": 9900, "currency": "usd",
                                  "status": "paid", "payment_intent": "pi_jan30",
                                  "subscription_details": {"metadata": {"order_id": order["id"]}}},
                 event_id="evt_jan30")  # fmt: skip
    paid["created"] = int(jan30.timestamp()) + 60
    assert deliver(client, paid).json()["outcome"] == "subscription_renewed"
    period = state(client, secret_headers, sub)["state"]
    assert datetime.fromisoformat(period["current_period_start"]) == jan30
    renewals = [o["total"] for o in client.get("/v1/orders", headers=secret_headers).json()["items"]
                if o["id"] != order["id"]]  # fmt: skip
    assert renewals == [9900]
    balanced(client, secret_headers)
