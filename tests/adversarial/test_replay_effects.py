"""A parked event replayed through the pipeline admin API must have its effect: the buyer's features count it
(the consumer failed on it once, the partition went on past it, the bug was fixed, the creator replayed it)."""

from __future__ import annotations

import dataclasses
from collections.abc import Iterator, Sequence

import pytest
from sqlalchemy import select
from sqlalchemy.orm import Session
from tests.conftest import basic, bearer

from offerloop.models import BuyerFeatures
from offerloop.pipeline import log as pipeline_log
from offerloop.pipeline import registry, runner
from offerloop.pipeline.registry import LogEvent

CURED: set[str] = set()


@pytest.fixture
def failing_once(request: pytest.FixtureRequest) -> Iterator[str]:
    """The real consumer ``request.param``, failing on the event "poison" until it is cured; parked at once."""
    name = request.param
    real = registry._consumers[name]

    def flaky(session: Session, workspace_id: str, events: Sequence[LogEvent]) -> None:
        if any(e.message_id == "poison" for e in events) and "poison" not in CURED:
            raise ValueError("cannot digest poison")
        real.fn(session, workspace_id, events)

    registry._consumers[name] = dataclasses.replace(real, fn=flaky)  # its replay (if any) stays
    attempts = runner.config.max_attempts
    runner.config.max_attempts = 1
    CURED.clear()
    yield name
    runner.config.max_attempts = attempts
    registry._consumers[name] = real


@pytest.mark.parametrize(
    "failing_once",
    ["features", "identity"],
    indirect=True,
)
def test_a_replayed_parked_event_is_counted_in_the_buyers_features(
    client, db, workspace, failing_once
) -> None:
    pipeline_log.set_inline(db, False)
    batch = [
        {
            "type": "track",
            "userId": "r",
            "event": "Clicked",
            "messageId": m,
            "timestamp": f"2026-11-0{i}T10:00:00Z",
        }
        for i, m in enumerate(["first", "poison", "third"], start=1)
    ]
    assert (
        client.post("/v1/batch", json={"batch": batch}, headers=basic(workspace.write_key)).json()["accepted"]
        == 3
    )
    runner.drain(db, workspace_id=workspace.id)
    headers = bearer(workspace.secret_key)
    parked = client.get("/v1/pipeline/parked", headers=headers).json()["items"]
    assert [(p["consumer"], p["message_id"]) for p in parked] == [(failing_once, "poison")]
    CURED.add("poison")  # the consumer's bug is fixed
    replayed = client.post(f"/v1/pipeline/parked/{parked[0]['id']}/replay", headers=headers)
    assert (replayed.status_code, replayed.json()["status"]) == (200, "replayed")
    runner.drain(db, workspace_id=workspace.id)
    buyer = client.get("/v1/buyers/lookup", params={"user_id": "r"}, headers=headers).json()["id"]
    with db.read() as session:
        state = session.scalar(select(BuyerFeatures.state).where(BuyerFeatures.buyer_id == buyer))
    assert state is not None and state["n"] == 3


def test_the_parked_list_with_an_empty_status_lists_every_status(client, db, workspace) -> None:
    from offerloop.core.clock import utcnow
    from offerloop.models import ParkedEvent

    with db.write() as session:
        for seq, state in ((1, "parked"), (2, "replayed")):
            session.add(
                ParkedEvent(
                    consumer="features", workspace_id=workspace.id, seq=seq, message_id=f"p{seq}",
                    error="E", attempts=5, parked_at=utcnow(), status=state,
                )
            )  # fmt: skip
    headers = bearer(workspace.secret_key)
    r = client.get(
        "/v1/pipeline/parked", params={"status": ""}, headers=headers
    )  # documented: "Empty for all"
    assert r.status_code == 200, r.text
    assert [i["message_id"] for i in r.json()["items"]] == ["p2", "p1"]
