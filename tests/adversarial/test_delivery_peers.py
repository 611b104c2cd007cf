"""Webhook receivers and push services that try to hold or flood the worker that calls them: a peer that
trickles its answer one byte at a time, one that answers 50 MB, one that redirects to a file or to another
local port. Each attempt must end within the configured timeout as a whole (not per byte), read a bounded
excerpt, follow nothing, and leave the worker thread free for the next job."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any, TypeVar

import pytest
from fastapi.testclient import TestClient
from tests.adversarial.hostile_peer import HostilePeer
from tests.conftest import basic, bearer
from tests.delivery.push.pushservice import Browser

from offerloop.config import Settings
from offerloop.db.uow import Database
from offerloop.delivery.push import service as push_service
from offerloop.delivery.push.service import PushConfig
from offerloop.delivery.webhooks import service
from offerloop.delivery.webhooks.sender import WebhookConfig
from offerloop.identity import service as identity_service
from offerloop.jobs import runner
from offerloop.workspaces.schemas import WorkspaceCreated

T0 = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)
TIMEOUT_S = 0.5
WEBHOOKS = WebhookConfig(allow_private=True, timeout_s=TIMEOUT_S)
PUSH = PushConfig(subject="mailto:creator@example.com", allow_private=True, timeout_s=TIMEOUT_S)
R = TypeVar("R")


@pytest.fixture
def settings(database_url: str) -> Settings:
    # The peers are on loopback over http: the SSRF guard is lifted, as in tests/delivery.
    return Settings(
        environment="test", database_url=database_url, log_json=True, log_level="WARNING",
        webhook_allow_private=True, webhook_timeout_s=TIMEOUT_S,
    )  # fmt: skip


@pytest.fixture
def peers() -> Iterator[list[HostilePeer]]:
    made: list[HostilePeer] = []
    yield made
    for p in made:
        p.close()


def peer(peers: list[HostilePeer], mode: str, **kw: Any) -> HostilePeer:
    p = HostilePeer(mode, **kw)
    peers.append(p)
    return p


def finishes(call: Callable[[], R], deadline_s: float = 30.0) -> R:
    """``call()``'s result; fails if it is still running after ``deadline_s`` (the worker thread is held)."""
    out: list[R] = []
    thread = threading.Thread(target=lambda: out.append(call()), daemon=True)
    thread.start()
    thread.join(deadline_s)
    assert not thread.is_alive(), "the call is still held by the peer"
    return out[0]


def webhook_attempt(db: Database, client: TestClient, ws: WorkspaceCreated, url: str, key: str) -> Any:
    r = client.post(
        "/v1/webhooks/endpoints", json={"url": url}, headers={"Authorization": f"Bearer {ws.secret_key}"}
    )
    assert r.status_code == 201, r.text
    with db.write() as session:
        [queued] = service.deliver(
            session,
            workspace_id=ws.id,
            event_type="order.paid",
            payload={"o": key},
            idempotency_key=key,
            now=T0,
        )
    ran = finishes(
        lambda: runner.run_due(
            db, owner="t", now=T0, only=(service.SEND,), limit=5, deps={"webhooks": WEBHOOKS}
        )
    )
    assert len(ran) == 1
    with db.read() as session:
        return service.get_delivery(session=session, workspace_id=ws.id, delivery_id=queued.id)


def test_delivery_webhook_peer_trickling_its_answer_times_out_as_a_whole(
    db: Database, client: TestClient, workspace: WorkspaceCreated, peers: list[HostilePeer]
) -> None:
    slow = peer(peers, "trickle")
    after = webhook_attempt(db, client, workspace, slow.url, "slow")
    assert (after.status, after.attempts, after.last_status_code) == ("pending", 1, None)
    assert after.last_error == f"timed out after {TIMEOUT_S:g}s"
    assert after.next_attempt_at is not None


def test_delivery_webhook_peer_answering_200_then_trickling_its_body_has_answered(
    db: Database, client: TestClient, workspace: WorkspaceCreated, peers: list[HostilePeer]
) -> None:
    slow = peer(peers, "trickle_body")
    after = webhook_attempt(db, client, workspace, slow.url, "slow-body")
    assert (after.status, after.attempts, after.last_status_code) == ("delivered", 1, 200)


def test_delivery_webhook_peer_flooding_50mb_is_read_only_to_the_excerpt(
    db: Database, client: TestClient, workspace: WorkspaceCreated, peers: list[HostilePeer]
) -> None:
    flood = peer(peers, "flood")
    after = webhook_attempt(db, client, workspace, flood.url, "flood")
    assert (after.status, after.last_status_code) == ("delivered", 200)
    assert after.log[0].response_excerpt == "x" * 500
    flood.closed.wait(0)
    assert flood.sent < flood.flood_bytes  # the caller hung up long before the end


@pytest.mark.parametrize("location", ["file:///etc/passwd", "http://127.0.0.1:9/admin"])
def test_delivery_webhook_redirects_are_not_followed(
    db: Database, client: TestClient, workspace: WorkspaceCreated, peers: list[HostilePeer], location: str
) -> None:
    moved = peer(peers, "redirect", location=location)
    after = webhook_attempt(db, client, workspace, moved.url, "moved")
    assert (after.status, after.last_status_code, moved.requests) == ("pending", 302, 1)


def push_to(db: Database, client: TestClient, ws: WorkspaceCreated, endpoint: str) -> list[Any]:
    r = client.post(
        "/v1/identify", json={"userId": "u_p", "traits": {"name": "Jo"}}, headers=basic(ws.write_key)
    )
    assert r.status_code == 200, r.text
    subscription = {"endpoint": endpoint, "expirationTime": None, "keys": Browser(7).keys()}
    r = client.post(  # the creator's backend names the buyer (a browser would send a buyer token)
        "/v1/push/subscriptions",
        json={"userId": "u_p", "subscription": subscription},
        headers=bearer(ws.secret_key),
    )
    assert r.status_code == 201, r.text
    with db.read() as session:
        buyer = identity_service.find_buyer(session=session, workspace_id=ws.id, user_id="u_p")[0]

    def send() -> list[Any]:
        return push_service.send(
            db, workspace_id=ws.id, buyer_id=buyer, payload={"title": "x"}, ttl_s=60, config=PUSH
        )

    return finishes(send)


def test_delivery_push_service_trickling_its_answer_times_out_as_a_whole(
    db: Database, client: TestClient, workspace: WorkspaceCreated, peers: list[HostilePeer]
) -> None:
    slow = peer(peers, "trickle")
    [result] = push_to(db, client, workspace, slow.url)
    assert (result.status, result.status_code) == ("failed", None)
    assert result.error == f"timed out after {TIMEOUT_S:g}s"


def test_delivery_push_service_flooding_50mb_is_not_read_whole(
    db: Database, client: TestClient, workspace: WorkspaceCreated, peers: list[HostilePeer]
) -> None:
    flood = peer(peers, "flood")
    [result] = push_to(db, client, workspace, flood.url)
    assert (result.status, result.status_code) == ("sent", 200)
    assert flood.sent < flood.flood_bytes


def test_delivery_push_service_redirect_to_a_file_is_not_followed(
    db: Database, client: TestClient, workspace: WorkspaceCreated, peers: list[HostilePeer]
) -> None:
    moved = peer(peers, "redirect", location="file:///etc/passwd")
    [result] = push_to(db, client, workspace, moved.url)
    assert (result.status, result.status_code, moved.requests) == ("failed", 302, 1)


def test_delivery_a_push_goes_to_at_most_the_newest_subscriptions_of_a_buyer(
    db: Database, client: TestClient, workspace: WorkspaceCreated
) -> None:
    """Any visitor with the public write key can subscribe endpoints for an anonymous buyer (and a buyer holding a
    token, for themself): a thousand of them must not make each push to that buyer a thousand requests (each up to
    the timeout) of a worker thread."""
    from tests.delivery.push.pushservice import Running

    service_ = Running()
    try:
        r = client.post("/v1/identify", json={"anonymousId": "a_many"}, headers=basic(workspace.write_key))
        assert r.status_code == 200, r.text
        made = []
        for i in range(push_service.MAX_SUBSCRIPTIONS_PER_PUSH + 5):
            r = client.post("/v1/push/subscriptions", headers=basic(workspace.write_key),
                            json={"anonymousId": "a_many", "subscription": service_.subscription(f"s{i}", seed=i)})  # fmt: skip
            assert r.status_code == 201, r.text
            made.append(r.json()["id"])
        with db.read() as session:
            buyer = identity_service.find_buyer(
                session=session, workspace_id=workspace.id, anonymous_id="a_many"
            )[0]
        results = push_service.send(db, workspace_id=workspace.id, buyer_id=buyer, payload={"t": 1}, ttl_s=60,
                                    config=PUSH)  # fmt: skip
        newest = made[-push_service.MAX_SUBSCRIPTIONS_PER_PUSH :]
        assert sorted(r.subscription_id for r in results) == sorted(newest)
        assert len(service_.service.delivered) == push_service.MAX_SUBSCRIPTIONS_PER_PUSH
    finally:
        service_.close()
