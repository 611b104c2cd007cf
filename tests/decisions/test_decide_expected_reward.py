"""Issue 9 item 11 over HTTP: decide items carry a calibrated expected_reward next to the ranking score."""

from __future__ import annotations

from datetime import timedelta

import pytest
from tests.decisions.test_decide import CATALOG, decide

from offerloop.core.clock import utcnow
from offerloop.decisions import service as decisions_service
from offerloop.decisions.schemas import DecideRequest
from offerloop.models import Decision


@pytest.fixture
def catalog(client, secret_headers):
    r = client.put("/v1/actions", headers=secret_headers, json=CATALOG)
    assert r.status_code == 200, r.text


def test_expected_reward_is_null_cold_then_a_probability_after_learning(
    client, db, workspace, secret_headers, catalog
):
    client.app.state.settings.holdout_share = 0.0
    cold = decide(client, secret_headers, anonymous_id="cold", candidates=["quiz", "lesson-free"])
    assert [i["expected_reward"] for i in cold["items"]] == [None, None]

    with db.write() as session:  # 200 decisions, one in ten rewarded (1.0), the rest closed at 0
        for n in range(200):
            out = decisions_service.decide(
                session=session, workspace_id=workspace.id, buyer_id=None, consent_personalization=None,
                request=DecideRequest(anonymous_id=f"b{n}", placement="home", candidates=["quiz", "lesson-free"]),
                holdout_share=0.0, now=utcnow() - timedelta(days=3),
            )  # fmt: skip
            session.flush()
            row = session.get(Decision, out.decision_id)
            assert row is not None
            row.reward, row.reward_at, row.reward_source = (1.0 if n % 10 == 0 else 0.0), utcnow(), "test"
        session.flush()  # sessions do not autoflush
        learned = decisions_service.learn(session=session, workspace_id=workspace.id, placement="home")
    assert learned["learned"] == 200

    body = decide(client, secret_headers, anonymous_id="warm", candidates=["quiz", "lesson-free"])
    assert body["model_version"] == learned["version"] and body["policy"] == "model"
    expected = [i["expected_reward"] for i in body["items"]]
    assert all(e is not None and 0.0 <= e <= 1.0 for e in expected)
    assert sum(expected) / 2 == pytest.approx(0.1, abs=0.05)
    why = client.get(f"/v1/decisions/{body['decision_id']}", headers=secret_headers).json()
    assert [i["expected_reward"] for i in why["items"]] == expected

    client.app.state.settings.holdout_share = 1.0  # the rules order has no reward estimate
    held = decide(client, secret_headers, anonymous_id="held", candidates=["quiz", "lesson-free"])
    assert held["holdout"] and [i["expected_reward"] for i in held["items"]] == [None, None]


def test_openapi_documents_score_and_expected_reward(client):
    item = client.get("/openapi.json").json()["components"]["schemas"]["DecidedItem"]["properties"]
    assert "Not a probability" in item["score"]["description"]
    assert "Calibrated" in item["expected_reward"]["description"]
