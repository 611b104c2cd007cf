"""Races over HTTP against a real server: one batch sent twice at once, the same batch again later, and reads
right after an identify merges two anonymous buyers whose events are still being applied."""

from __future__ import annotations

import threading
from pathlib import Path
from typing import Any

import httpx
import pytest
from tests.adversarial.harness import Server, stored
from tests.conftest import basic, bearer


def _post(
    base: str, key: str, batch: list[dict[str, Any]], out: list[dict[str, Any]], go: threading.Barrier
) -> None:
    with httpx.Client(base_url=base, headers=basic(key), timeout=60) as client:
        go.wait()
        r = client.post("/v1/batch", json={"batch": batch})
        assert r.status_code == 200, r.text
        out.append(r.json())


def test_the_same_batch_sent_twice_at_once_and_again_later_is_stored_once(tmp_path: Path, target) -> None:
    url, db, ws = target
    batch = [
        {"type": "track", "userId": f"u{i % 7}", "event": "Clicked", "messageId": f"twice-{i}"}
        for i in range(400)
    ]
    server = Server(url, tmp_path / "server.log")
    server.start()
    try:
        for round_ in range(3):
            answers: list[dict[str, Any]] = []
            go = threading.Barrier(4)
            threads = [
                threading.Thread(target=_post, args=(server.url, ws.write_key, batch, answers, go))
                for _ in range(4)
            ]
            for t in threads:
                t.start()
            for t in threads:
                t.join()
            assert len(answers) == 4
            accepted = sum(a["accepted"] for a in answers)
            assert (accepted, sum(a["duplicates"] for a in answers)) == (
                400 if round_ == 0 else 0,
                1600 - accepted,
            )
        counts = stored(db, ws.id)
        assert (len(counts), set(counts.values())) == (400, {1})
    finally:
        server.stop()


@pytest.mark.parametrize("workers", ["0", "2"])
def test_reads_right_after_a_merge_of_two_anonymous_buyers_count_every_event(
    tmp_path: Path, target, workers: str
) -> None:
    url, _db, ws = target
    server = Server(url, tmp_path / "server.log", OFFERLOOP_PIPELINE_WORKERS=workers)
    server.start()
    try:
        with httpx.Client(base_url=server.url, timeout=60) as client:
            for g in range(6):
                n = 0
                for device, count in (("a", 7), ("b", 4)):
                    for i in range(count):
                        event = {
                            "anonymousId": f"{device}{g}",
                            "event": "Lesson Started",
                            "messageId": f"l-{g}-{device}-{i}",
                            "timestamp": f"2026-11-{28 - i:02d}T10:00:00Z",  # newest first
                        }
                        assert (
                            client.post("/v1/track", json=event, headers=basic(ws.write_key)).status_code
                            == 200
                        )
                        n += 1
                merges = [
                    {
                        "type": "identify",
                        "anonymousId": f"{d}{g}",
                        "userId": f"u{g}",
                        "messageId": f"id-{g}-{d}",
                    }
                    for d in ("b", "a")
                ]
                assert (
                    client.post("/v1/batch", json={"batch": merges}, headers=basic(ws.write_key)).json()[
                        "accepted"
                    ]
                    == 2
                )
                secret = bearer(ws.secret_key)
                decided = client.post(
                    "/v1/decide", json={"user_id": f"u{g}", "placement": "home"}, headers=secret
                )
                assert decided.status_code == 200, decided.text
                buyer = client.get("/v1/buyers/lookup", params={"user_id": f"u{g}"}, headers=secret).json()
                assert sorted(i["value"] for i in buyer["identities"] if i["kind"] == "anonymous_id") == [
                    f"a{g}",
                    f"b{g}",
                ]
                state = client.get(f"/v1/buyers/{buyer['id']}/state", headers=secret).json()
                assert state["features"]["lessons_started"] == n
                events = client.get(
                    f"/v1/buyers/{buyer['id']}/events", params={"limit": 100}, headers=secret
                ).json()
                assert len(events["items"]) == n + 2
    finally:
        server.stop()
