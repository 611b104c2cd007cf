"""POST /v1/subscriptions/{id}/actions takes ``at`` (when it happens) and checks it only against the current
period's end: a pause dated years before the subscription even started is accepted, and the resume after it
adds those years to the paid period (a month paid, seven years of access); a resume dated decades ahead does
the same. A typo in a year gives a buyer years of access nobody paid for. Open (src/offerloop/subscriptions)."""

from __future__ import annotations

from datetime import datetime

import pytest
from tests.checkout.test_checkout_flow import buy, pay, setup

from offerloop.checkout import service as checkout_service
from offerloop.db.uow import Database

# (pause at, resume at): a pause before the subscription began; a resume decades ahead
DATES = [("2020-01-01T00:00:00Z", None), (None, "2099-01-01T00:00:00Z")]


@pytest.mark.xfail(strict=True, reason="subscriptions: pause/resume `at` is not bounded by the subscription's "
                   "start or by now; the resume extends the paid period by the years between")  # fmt: skip
@pytest.mark.parametrize(("pause_at", "resume_at"), DATES, ids=["pause_before_start", "resume_far_ahead"])
def test_found_a_pause_and_resume_never_extend_a_monthly_period_by_years(
    client, db: Database, secret_headers, write_headers, pause_at: str | None, resume_at: str | None
) -> None:
    setup(client, secret_headers, write_headers)
    order = buy(client, secret_headers, "membership-monthly")
    pay(client, secret_headers, order["id"])
    checkout_service.run_fulfilment(db=db)
    (sub,) = client.get("/v1/subscriptions", headers=secret_headers).json()["items"]
    url = f"/v1/subscriptions/{sub['id']}/actions"
    trial_end = sub["state"]["current_period_end"]
    renewed = client.post(url, headers=secret_headers, json={"action": "renew", "at": trial_end})
    assert renewed.status_code == 200 and renewed.json()["status"] == "active", renewed.text
    answers = []
    for action, at in (("pause", pause_at), ("resume", resume_at)):
        r = client.post(url, headers=secret_headers, json={"action": action, **({"at": at} if at else {})})
        answers.append(r.status_code)
        if r.status_code != 200:
            assert r.status_code in (409, 422), r.text  # refused: fine
            return
    end = datetime.fromisoformat(client.get(f"/v1/subscriptions/{sub['id']}", headers=secret_headers).json()[
        "state"]["current_period_end"])  # fmt: skip
    assert end.year <= datetime.fromisoformat(trial_end).year + 1, (answers, end)
