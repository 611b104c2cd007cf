"""The in-app inbox against a running `offerloop serve`: a trigger event becomes a message on the buyer's
Server-Sent Events stream without any request in between; tokens are per buyer and unforgeable."""

from __future__ import annotations

import json
import queue
import threading
from typing import Any

import httpx
from tests.conftest import basic, bearer, tampered

from offerloop.core.clock import utcnow

JOURNEY = """
name: hello
category: transactional
trigger: {event: Signed Up}
steps:
  - send: {channel: inapp, subject: "Hi {{ buyer.traits.name }}", text: "Welcome aboard", url: "https://creator.example/start"}
"""


def _frames(http: httpx.Client, token: str, out: queue.Queue[dict[str, Any]], ready: threading.Event) -> None:
    with http.stream("GET", "/v1/inbox/stream", params={"token": token}, timeout=30) as response:
        event = None
        for line in response.iter_lines():
            if line.startswith(": connected"):
                ready.set()
            elif line.startswith("event: "):
                event = line.removeprefix("event: ")
            elif line.startswith("data: ") and event == "message":
                out.put(json.loads(line.removeprefix("data: ")))
                return


def test_a_message_reaches_the_open_stream_and_tokens_are_per_buyer(live_server) -> None:
    ws = json.loads(live_server.cli("workspace", "create", "Inbox live", "--json").stdout)
    other = json.loads(live_server.cli("workspace", "create", "Other", "--json").stdout)
    with httpx.Client(base_url=live_server.url, timeout=30) as http:
        secret, write = bearer(ws["secret_key"]), basic(ws["write_key"])
        assert http.put("/v1/journeys/hello", headers=secret, json={"yaml": JOURNEY}).status_code == 200
        r = http.post(
            "/v1/identify",
            headers=write,
            json={
                "userId": "u1",
                "traits": {"name": "Ada"},
                "messageId": "i1",
                "timestamp": utcnow().isoformat(),
            },
        )
        assert r.status_code == 200
        token = None
        for _ in range(200):  # the identify is applied by the server's consumers, not by this request
            r = http.post("/v1/inbox/tokens", headers=secret, json={"user_id": "u1"})
            if r.status_code == 201:
                token = r.json()["token"]
                break
            assert r.status_code == 404
            threading.Event().wait(0.05)
        assert token is not None
        # Another workspace's secret key cannot mint a token for this buyer, and a tampered token is refused.
        assert (
            http.post(
                "/v1/inbox/tokens", headers=bearer(other["secret_key"]), json={"user_id": "u1"}
            ).status_code
            == 404
        )
        assert http.get("/v1/inbox", params={"token": tampered(token)}).status_code == 403
        assert http.get("/v1/inbox", params={"token": "x" * 5000}).status_code == 422

        frames: queue.Queue[dict[str, Any]] = queue.Queue()
        ready = threading.Event()
        reader = threading.Thread(target=_frames, args=(http, token, frames, ready), daemon=True)
        reader.start()
        assert ready.wait(30)
        r = http.post(  # the creator's backend (secret key): a transactional journey's trigger
            "/v1/track",
            headers=secret,
            json={"userId": "u1", "event": "Signed Up", "messageId": "s1", "timestamp": utcnow().isoformat()},
        )
        assert r.status_code == 200
        frame = frames.get(timeout=30)
        assert (frame["title"], frame["text"], frame["read_at"]) == ("Hi Ada", "Welcome aboard", None)
        assert frame["url"].startswith(f"{live_server.url}/v1/m/click/") or "/v1/m/click/" in frame["url"]
        reader.join(30)

        listed = http.get("/v1/inbox", params={"token": token}).json()["items"]
        assert [i["id"] for i in listed] == [frame["id"]]
        read = http.post(f"/v1/inbox/{frame['id']}/read", params={"token": token})
        assert read.status_code == 200 and read.json()["read_at"] is not None
        assert http.get("/v1/inbox", params={"token": token, "unread": "true"}).json()["items"] == []
        script = http.get("/v1/inapp.js")
        assert script.status_code == 200 and script.headers["content-type"].startswith("text/javascript")
        assert b"EventSource" in script.content


def test_an_open_stream_ends_when_its_token_expires(live_server) -> None:
    """A token's grant ends for an open stream too: event ``expired``, then the server closes it."""
    import time

    from offerloop.db.engine import make_engine
    from offerloop.db.uow import Database
    from offerloop.delivery import service
    from offerloop.workspaces import service as workspace_service

    ws = json.loads(live_server.cli("workspace", "create", "Inbox expiry", "--json").stdout)
    engine = make_engine(live_server.database_url)
    try:
        with Database(engine).read() as session:  # the server's signing secret, as it mints tokens
            secret = workspace_service.signing_secret(session=session, configured="dev-secret")
    finally:
        engine.dispose()
    # Long enough to be accepted on a loaded machine (a 2 s token expired before a busy server read it).
    token, expires = service.inbox_token(secret, ws["id"], "byr_anyone", ttl_s=6)
    seen: list[str] = []
    with httpx.Client(base_url=live_server.url, timeout=30) as http:
        with http.stream("GET", "/v1/inbox/stream", params={"token": token}) as response:
            assert response.status_code == 200
            seen.extend(line for line in response.iter_lines() if line.startswith("event: "))
        ended = time.time()
    assert seen == ["event: expired"]  # and the stream ended by itself (iter_lines returned)
    assert ended >= expires.timestamp()  # not before its time
