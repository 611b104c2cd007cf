"""Against a real `offerloop serve` process on loopback."""

from __future__ import annotations

import json
import signal
import threading

import httpx
import pytest
from segment.analytics import Client
from tests.conftest import LiveServer, basic, bearer

pytestmark = pytest.mark.server


def _workspace(server: LiveServer) -> dict[str, str]:
    out = server.cli("workspace", "create", "Live Creator", "--json")
    return json.loads(out.stdout)


def test_official_segment_client_lands_on_the_right_buyer(live_server: LiveServer) -> None:
    ws = _workspace(live_server)
    errors: list[object] = []
    client = Client(ws["write_key"], host=live_server.url, sync_mode=True, gzip=True,
                    on_error=lambda e, batch: errors.append(e), max_retries=0)  # fmt: skip
    client.page(
        anonymous_id="sdk-anon", name="Landing", properties={"url": "https://creator.example/?utm_source=tt"}
    )
    client.track(anonymous_id="sdk-anon", event="Quiz Completed", properties={"score": 77})
    client.identify(
        user_id="sdk-user", anonymous_id="sdk-anon", traits={"email": "SDK@example.com", "plan": "pro"}
    )
    client.track(user_id="sdk-user", event="Order Completed", properties={"revenue": 49})
    client.alias(previous_id="sdk-anon-2", user_id="sdk-user")
    client.flush()
    assert errors == []

    secret = bearer(ws["secret_key"])
    buyer = httpx.get(
        f"{live_server.url}/v1/buyers/lookup", params={"user_id": "sdk-user"}, headers=secret
    ).json()
    assert buyer["traits"] == {"email": "SDK@example.com", "plan": "pro"}
    assert sorted((i["kind"], i["value"]) for i in buyer["identities"]) == [
        ("anonymous_id", "sdk-anon"), ("anonymous_id", "sdk-anon-2"), ("email", "sdk@example.com"), ("user_id", "sdk-user"),
    ]  # fmt: skip
    events = httpx.get(f"{live_server.url}/v1/buyers/{buyer['id']}/events", headers=secret).json()["items"]
    assert sorted((e["type"], e["name"]) for e in events) == [
        ("alias", None), ("identify", None), ("page", "Landing"), ("track", "Order Completed"), ("track", "Quiz Completed"),
    ]  # fmt: skip
    assert all(e["context"]["library"]["name"] == "analytics-python" for e in events)
    by_email = httpx.get(
        f"{live_server.url}/v1/buyers/lookup", params={"email": "sdk@example.com"}, headers=secret
    ).json()
    assert by_email["id"] == buyer["id"]


def test_acknowledged_events_survive_sigkill(live_server: LiveServer) -> None:
    ws = _workspace(live_server)
    acknowledged: list[str] = []
    lock = threading.Lock()
    stop = threading.Event()
    enough = threading.Event()

    def load(worker: int) -> None:
        with httpx.Client(base_url=live_server.url, headers=basic(ws["write_key"]), timeout=10) as http:
            for n in range(10_000):
                if stop.is_set():
                    return
                batch = [{"type": "track", "userId": f"k{worker}-{n % 50}", "event": "Load", "messageId": f"w{worker}-{n}-{i}"}
                         for i in range(50)]  # fmt: skip
                try:
                    r = http.post("/v1/batch", json={"batch": batch})
                except httpx.TransportError:
                    return  # the server died mid-request: this batch was never acknowledged
                if r.status_code == 200:
                    with lock:
                        acknowledged.extend(m["messageId"] for m in batch)
                        if len(acknowledged) >= 3000:
                            enough.set()
        enough.set()  # ran out of work: do not leave the test waiting

    threads = [threading.Thread(target=load, args=(w,)) for w in range(2)]
    for t in threads:
        t.start()
    # Kill once the load is well under way (an event count, not a timer, decides when).
    enough.wait()
    live_server.kill(signal.SIGKILL)
    stop.set()
    for t in threads:
        t.join()
    assert len(acknowledged) >= 3000

    live_server.start()
    with httpx.Client(base_url=live_server.url, headers=basic(ws["secret_key"]), timeout=60) as http:
        lines = http.get("/v1/export").text.splitlines()
    stored = {json.loads(line)["message_id"] for line in lines if '"kind":"event"' in line}
    missing = set(acknowledged) - stored
    assert missing == set()
