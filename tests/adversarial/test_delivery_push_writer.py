"""A web push in flight holds no database transaction: the push service is the buyer's choice (any visitor with
the public write key subscribes an endpoint), so while it takes its time, SQLite's one writer must stay free for
everyone else — here an identify sent while a push service holds its answer is acknowledged before it answers."""

from __future__ import annotations

from pathlib import Path

import httpx
from tests.adversarial.harness import Server, wait_for
from tests.adversarial.hostile_peer import HostilePeer
from tests.conftest import basic, bearer
from tests.delivery.push.pushservice import Browser

PING = """
name: ping
category: transactional
trigger: {event: Ping}
steps:
  - send: {channel: push, subject: "Ping", text: "pong"}
"""


def test_delivery_a_push_in_flight_holds_no_database_writer(tmp_path: Path, target) -> None:
    url, _, ws = target
    peer = HostilePeer("hold")
    server = Server(url, tmp_path / "server.log", OFFERLOOP_WEBHOOK_ALLOW_PRIVATE="true",
                    OFFERLOOP_WEBHOOK_TIMEOUT_S="60")  # fmt: skip
    server.start()
    try:
        with (
            httpx.Client(base_url=server.url, headers=bearer(ws.secret_key), timeout=30) as creator,
            httpx.Client(base_url=server.url, headers=basic(ws.write_key), timeout=30) as browser,
        ):
            r = creator.put("/v1/journeys/ping", json={"yaml": PING})
            assert r.status_code == 200, r.text
            r = browser.post("/v1/identify", json={"userId": "u_p", "messageId": "i0"})
            assert r.status_code == 200, r.text
            subscription = {"endpoint": peer.url, "expirationTime": None, "keys": Browser(3).keys()}
            minted = creator.post("/v1/inbox/tokens", json={"user_id": "u_p", "ttl_s": 600})
            assert minted.status_code == 201, minted.text
            r = browser.post(
                "/v1/push/subscriptions", json={"token": minted.json()["token"], "subscription": subscription}
            )
            assert r.status_code == 201, r.text
            r = creator.post("/v1/track", json={"userId": "u_p", "event": "Ping", "messageId": "p1"})
            assert r.status_code == 200, r.text
            wait_for(lambda: peer.requests == 1)  # the push is in flight, held by the push service
            for i in range(3):
                r = browser.post("/v1/identify", json={"userId": f"v{i}", "messageId": f"v{i}"})
                assert r.status_code == 200, r.text
            assert not peer.release.is_set() and peer.sent == 0  # acknowledged while the push was still held
            peer.release.set()

            def sent() -> bool:
                items = creator.get("/v1/messages").json()["items"]
                return [(m["channel"], m["status"]) for m in items] == [("push", "sent")]

            wait_for(sent)
    finally:
        peer.close()  # releases a push still held: the server can then stop
        server.stop()
