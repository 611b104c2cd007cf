"""POST /v1/subscriptions/{id}/actions takes ``at`` (when it happens). It was checked only against the current
period's end: a pause dated years before the subscription even started was accepted, and the resume after it
added those years to the paid period (a month paid, seven years of access); a resume dated decades ahead did the
same. Now an ``at`` before the subscription's last recorded change, or after both now and the current period's
end, is refused (422, field ``at``) and nothing changes."""

from __future__ import annotations

from datetime import datetime, timedelta

import pytest
from tests.checkout.test_checkout_flow import buy, pay, setup

from offerloop.checkout import service as checkout_service
from offerloop.db.uow import Database

# (pause at, resume at): a pause before the subscription began; a resume decades ahead
DATES = [("2020-01-01T00:00:00Z", None), (None, "2099-01-01T00:00:00Z")]


def _active(client, db: Database, secret_headers, write_headers) -> tuple[dict, str]:
    """A monthly membership bought, paid and renewed at its trial's end: active. (subscription, actions URL)"""
    setup(client, secret_headers, write_headers)
    order = buy(client, secret_headers, "membership-monthly")
    pay(client, secret_headers, order["id"])
    checkout_service.run_fulfilment(db=db)
    (sub,) = client.get("/v1/subscriptions", headers=secret_headers).json()["items"]
    url = f"/v1/subscriptions/{sub['id']}/actions"
    renewed = client.post(
        url, headers=secret_headers, json={"action": "renew", "at": sub["state"]["current_period_end"]}
    )
    assert renewed.status_code == 200 and renewed.json()["status"] == "active", renewed.text
    return sub, url


@pytest.mark.parametrize(("pause_at", "resume_at"), DATES, ids=["pause_before_start", "resume_far_ahead"])
def test_found_a_pause_and_resume_never_extend_a_monthly_period_by_years(
    client, db: Database, secret_headers, write_headers, pause_at: str | None, resume_at: str | None
) -> None:
    sub, url = _active(client, db, secret_headers, write_headers)
    before = client.get(f"/v1/subscriptions/{sub['id']}", headers=secret_headers).json()
    for action, at in (("pause", pause_at), ("resume", resume_at)):
        r = client.post(url, headers=secret_headers, json={"action": action, **({"at": at} if at else {})})
        if at is None:
            assert r.status_code == 200, r.text
            continue
        assert r.status_code == 422, r.text
        assert r.json()["error"]["details"]["field"] == "at"
        break
    after = client.get(f"/v1/subscriptions/{sub['id']}", headers=secret_headers).json()
    assert after["state"]["current_period_end"] == before["state"]["current_period_end"]
    assert after["status"] == ("paused" if pause_at is None else "active")


def test_an_at_between_the_last_change_and_now_is_taken(
    client, db: Database, secret_headers, write_headers
) -> None:
    """A resume dated a minute after its pause: taken, that minute added to the period; one dated a second
    before the pause: refused."""
    _, url = _active(client, db, secret_headers, write_headers)
    paused = client.post(url, headers=secret_headers, json={"action": "pause"})
    assert paused.status_code == 200, paused.text
    paused_at = datetime.fromisoformat(paused.json()["state"]["paused_at"])
    early = client.post(
        url,
        headers=secret_headers,
        json={"action": "resume", "at": (paused_at - timedelta(seconds=1)).isoformat()},
    )
    assert early.status_code == 422 and early.json()["error"]["details"]["field"] == "at", early.text
    r = client.post(
        url,
        headers=secret_headers,
        json={"action": "resume", "at": (paused_at + timedelta(seconds=60)).isoformat()},
    )
    assert r.status_code == 200, r.text
    end = datetime.fromisoformat(r.json()["state"]["current_period_end"])
    assert end - datetime.fromisoformat(paused.json()["state"]["current_period_end"]) == timedelta(seconds=60)
