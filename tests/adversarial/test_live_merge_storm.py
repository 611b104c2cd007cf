"""Many buyers merging at once on a live server with consumer threads and a worker process: anonymous devices
identifying as one user (the same identify twice), aliases by previousId, timestamps out of order, orders that
enter journeys and persona changes that refresh the analytics state — all in several partitions at once. No step
may fail because another transaction committed (the log names each failure "consumer failed on an event"), and
every buyer ends with the features, persona and events a serial run gives."""

from __future__ import annotations

import random
import re
from pathlib import Path
from typing import Any

import httpx
from tests.adversarial.harness import Server, lag, send_concurrently, wait_for, worker
from tests.conftest import bearer

GROUPS = 40

TEMPLATES = {
    "threshold": 0.5,
    "personas": [
        {
            "name": "learner",
            "prior": 0.5,
            "signals": [{"feature": "lessons_started", "gte": 3, "weight": 3.0}],
        },
        {"name": "shopper", "prior": 0.5, "signals": [{"feature": "orders", "gte": 1, "weight": 3.0}]},
    ],
}

RECEIPT = """
name: receipt
category: marketing
reentry: always
trigger: {event: Order Completed}
steps:
  - send: {channel: inapp, subject: "Thanks", text: "thanks"}
"""


def _load(seed: int) -> tuple[list[list[dict[str, Any]]], dict[str, tuple[int, int, int]]]:
    """Batches, and per user (lessons started, orders, events) once every device and alias is theirs."""
    rng = random.Random(seed)
    messages: list[dict[str, Any]] = []
    want: dict[str, tuple[int, int, int]] = {}
    for g in range(GROUPS):
        lessons = orders = count = 0
        devices = [
            {"anonymousId": f"a{g}"},
            {"anonymousId": f"b{g}"},
            {"anonymousId": f"c{g}"},
            {"userId": f"u{g}"},
        ]
        for i in range(rng.randrange(6, 14)):
            name = rng.choice(["Lesson Started", "Lesson Started", "Order Completed", "Viewed"])
            props = (
                {"order_id": f"o-{g}-{i}", "total_minor": 500, "currency": "USD"} if name[0] == "O" else {}
            )
            messages.append({"type": "track", **rng.choice(devices), "event": name, "properties": props,
                             "messageId": f"t-{g}-{i}",
                             "timestamp": f"2026-11-{rng.randrange(1, 28):02d}T{rng.randrange(24):02d}:00:00Z"})  # fmt: skip
            lessons, orders, count = lessons + (name[0] == "L"), orders + (name[0] == "O"), count + 1
        for device in ("a", "b", "a"):  # the same identify twice, under two message ids
            messages.append({"type": "identify", "anonymousId": f"{device}{g}", "userId": f"u{g}",
                             "messageId": f"id-{device}-{g}-{count}", "timestamp": "2026-11-15T12:00:00Z"})  # fmt: skip
            count += 1
        messages.append({"type": "alias", "previousId": f"c{g}", "userId": f"u{g}", "messageId": f"al-{g}",
                         "timestamp": "2026-11-16T12:00:00Z"})  # fmt: skip
        want[f"u{g}"] = (lessons, orders, count + 1)
    rng.shuffle(messages)
    return [messages[i : i + 25] for i in range(0, len(messages), 25)], want


def test_a_storm_of_merges_fails_no_step_and_counts_every_event(tmp_path: Path, target) -> None:
    url, _db, ws = target
    batches, want = _load(7)
    log = tmp_path / "server.log"
    server = Server(url, log, OFFERLOOP_PIPELINE_WORKERS="2", OFFERLOOP_LOG_LEVEL="WARNING")
    server.start()
    extra = worker(url, tmp_path / "worker.log") if url.startswith("postgresql") else None
    try:
        secret = bearer(ws.secret_key)
        with httpx.Client(base_url=server.url, timeout=60, headers=secret) as client:
            assert client.put("/v1/personas/templates", json=TEMPLATES).status_code == 200
            assert client.put("/v1/journeys/receipt", json={"yaml": RECEIPT}).status_code == 200
            acked, threads = send_concurrently(server.url, ws.write_key, batches, connections=4)
            for t in threads:
                t.join()
            assert len(acked) == len(batches)
            wait_for(lambda: lag(server.url, ws.secret_key) == 0)
            got = {}
            for user in want:
                buyer = client.get("/v1/buyers/lookup", params={"user_id": user}).json()
                state = client.get(f"/v1/buyers/{buyer['id']}/state").json()
                events = client.get(f"/v1/buyers/{buyer['id']}/events", params={"limit": 100}).json()
                got[user] = (
                    state["features"]["lessons_started"],
                    state["features"]["orders"],
                    len(events["items"]),
                )
            assert got == want
            runs, cursor = 0, None
            while True:
                page = client.get(
                    "/v1/journey-runs",
                    params={"journey": "receipt", "limit": 100, **({"cursor": cursor} if cursor else {})},
                )
                assert page.status_code == 200, page.text
                runs += len(page.json()["items"])
                if (cursor := page.json()["next_cursor"]) is None:
                    break
            assert runs == sum(
                o for _, o, _ in want.values()
            )  # one receipt per order, whichever device it came from
            personas = client.get("/v1/personas").json()["items"]
            assert sum(p["buyers"] for p in personas) == GROUPS, personas
    finally:
        if extra is not None:
            extra.terminate()
            extra.wait(30)
        server.stop()
    logs = log.read_text() + ((tmp_path / "worker.log").read_text() if extra is not None else "")
    failures = [line for line in logs.splitlines() if re.search("consumer failed|event parked", line)]
    assert failures == []
