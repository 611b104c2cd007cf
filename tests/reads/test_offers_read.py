"""GET /v1/offers decides in a read transaction, like /v1/decide, and logs its decision in a short write."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

from sqlalchemy import func, select
from tests.conftest import msg

from offerloop.decisions import service as decisions_service
from offerloop.models import Decision

CATALOG = (Path(__file__).resolve().parents[2] / "examples" / "demo" / "offers.yaml").read_text()
DEADLINE_S = 30


def _setup(client, secret_headers, write_headers) -> None:
    r = client.put("/v1/offers/catalog", headers=secret_headers, json={"text": CATALOG})
    assert r.status_code == 200, r.text
    r = client.post("/v1/identify", headers=write_headers, json=msg(userId="ada", messageId="ada-id"))
    assert r.status_code == 200, r.text


def test_offers_decide_while_another_thread_holds_the_writer_lock(
    client, db, secret_headers, write_headers, monkeypatch
):
    _setup(client, secret_headers, write_headers)
    decided = threading.Event()
    real_decide = decisions_service.decide

    def observed(**kwargs: Any) -> Any:
        out = real_decide(**kwargs)
        decided.set()
        return out

    monkeypatch.setattr(decisions_service, "decide", observed)
    holding, release = threading.Event(), threading.Event()

    def writer() -> None:
        with db.write():  # on SQLite: the writer lock every write transaction of this database takes
            holding.set()
            release.wait(DEADLINE_S)

    holder = threading.Thread(target=writer)
    holder.start()
    assert holding.wait(DEADLINE_S)
    answers: list[Any] = []
    request = threading.Thread(
        target=lambda: answers.append(
            client.get("/v1/offers", headers=secret_headers, params={"user_id": "ada", "k": 3})
        )
    )
    request.start()
    try:
        # The old endpoint decided inside db.write(): it could not decide until the writer let go.
        decided_while_held = decided.wait(DEADLINE_S)
        still_held = holder.is_alive()
    finally:
        release.set()
        holder.join(DEADLINE_S)
        request.join(DEADLINE_S)
    assert decided_while_held and still_held
    assert len(answers) == 1 and answers[0].status_code == 200, answers[0].text
    body = answers[0].json()
    assert body["decision_id"].startswith("dec_") and len(body["offers"]) == 3
    with db.read() as session:
        placement, chosen, items = session.execute(
            select(Decision.placement, Decision.chosen_key, Decision.items).where(
                Decision.id == body["decision_id"]
            )
        ).one()
    assert placement == "offers"
    assert chosen == f"offer:{body['offers'][0]['key']}"
    assert [i["id"] for i in items] == [f"offer:{o['key']}" for o in body["offers"]]


def test_an_offers_request_logs_exactly_one_decision(client, db, workspace, secret_headers, write_headers):
    _setup(client, secret_headers, write_headers)
    with db.read() as session:
        before = session.scalar(select(func.count()).where(Decision.workspace_id == workspace.id))
    r = client.get("/v1/offers", headers=secret_headers, params={"user_id": "ada", "k": 2})
    assert r.status_code == 200, r.text
    with db.read() as session:
        after = session.scalar(select(func.count()).where(Decision.workspace_id == workspace.id))
        propensity = session.scalar(select(Decision.propensity).where(Decision.id == r.json()["decision_id"]))
    assert after == before + 1
    assert propensity == r.json()["offers"][0]["propensity"]


def test_no_buyable_offer_logs_nothing(client, db, workspace, secret_headers, write_headers):
    _setup(client, secret_headers, write_headers)
    r = client.get("/v1/offers", headers=secret_headers, params={"user_id": "ada", "currency": "JPY"})
    assert r.status_code == 200, r.text
    assert r.json()["decision_id"] is None and r.json()["offers"] == []
    with db.read() as session:
        assert session.scalar(select(func.count()).where(Decision.workspace_id == workspace.id)) == 0
