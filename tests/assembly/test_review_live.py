"""Trying to break review over real HTTP, against `offerloop serve` on loopback (SQLite, or PostgreSQL with
OFFERLOOP_TEST_DATABASE_URL), renders done by `offerloop worker --once`: reject → atom change → regenerate →
download must refuse; edit → regenerate keeps the edit and waits for review; 12 reviewers approving at once; one link opened from
8 connections at once is one download event."""

from __future__ import annotations

import json
import threading
from collections import Counter
from pathlib import Path

import httpx
import pytest
from tests.assembly.test_artifacts_api import ATOMS, POLICY, QUIZ
from tests.conftest import LiveServer, basic, bearer

pytestmark = pytest.mark.server
REVIEWERS = 12


@pytest.fixture
def server(tmp_path: Path, engine, database_url: str, monkeypatch):
    monkeypatch.setenv("OFFERLOOP_WORKER_THREADS", "0")  # renders only when the test runs the worker
    url = database_url if engine.dialect.name == "postgresql" else f"sqlite:///{tmp_path / 'live.db'}"
    srv = LiveServer(url, log_path=tmp_path / "server.log")
    srv.start()
    yield srv
    srv.stop()


def _render(server: LiveServer) -> None:
    assert server.cli("worker", "--once").stdout.startswith(("1 artifact", "2 artifact"))


def test_review_decisions_hold_over_http(server: LiveServer) -> None:
    ws = json.loads(server.cli("workspace", "create", "Live review", "--json").stdout)
    with httpx.Client(base_url=server.url, headers=bearer(ws["secret_key"]), timeout=60) as http:
        r = http.post(
            "/v1/content/sync", json={"atoms": [{"text": t, "path": f"{k}.md"} for k, t in ATOMS.items()]}
        )
        assert r.status_code == 200, r.text
        assert http.put("/v1/quizzes", json={"text": QUIZ}).status_code == 200
        assert (
            http.put("/v1/policies", json={"text": POLICY.replace("{REVIEW}", "always")}).status_code == 200
        )
        for user in ("ana", "ben"):
            ident = {"userId": user, "messageId": f"{user}-1", "traits": {"name": user.title()}}
            assert (
                httpx.post(
                    server.url + "/v1/identify", headers=basic(ws["write_key"]), json=ident
                ).status_code
                == 200
            )
        ana = http.post("/v1/artifacts", json={"user_id": "ana", "policy": "starter-workbook"}).json()["id"]
        ben = http.post("/v1/artifacts", json={"user_id": "ben", "policy": "starter-workbook"}).json()["id"]
        _render(server)

        # garbage: not JSON, wrong types, unknown artifact, another workspace's artifact
        assert http.post(f"/v1/artifacts/{ana}/review", content=b"{not json").status_code == 422
        assert (
            http.post(f"/v1/artifacts/{ana}/review", json={"action": "approve", "reviewer": 7}).status_code
            == 422
        )
        assert (
            http.post(
                "/v1/artifacts/art_nope/review", json={"action": "approve", "reviewer": "x"}
            ).status_code
            == 404
        )
        other = json.loads(server.cli("workspace", "create", "Other", "--json").stdout)
        stolen = httpx.post(f"{server.url}/v1/artifacts/{ana}/review", headers=bearer(other["secret_key"]),
                            json={"action": "approve", "reviewer": "x"})  # fmt: skip
        assert stolen.status_code == 404 and stolen.json()["error"]["code"] == "artifact_not_found"
        assert (
            httpx.get(f"{server.url}/v1/reviews/{ana}", headers=bearer(other["secret_key"])).status_code
            == 404
        )

        # reject Ana's, edit Ben's
        assert (
            http.post(f"/v1/artifacts/{ana}/review", json={"action": "reject", "reviewer": "rita"}).json()[
                "status"
            ]
            == "rejected"
        )
        edit = {"action": "edit", "reviewer": "rita", "edits": {"pricing/0": "Rita says: price after value."}}
        assert http.post(f"/v1/artifacts/{ben}/review", json=edit).json()["status"] == "queued"
        _render(server)
        # the creator turns review off and fixes an atom both used, then regenerates everything affected
        assert http.put("/v1/policies", json={"text": POLICY.replace("{REVIEW}", "never")}).status_code == 200
        fixed = ATOMS["price-anchor"].replace("Buyers compare", "People compare")
        assert http.put("/v1/content/atoms", json={"text": fixed}).status_code == 200
        regenerated = http.post("/v1/artifacts/regenerate").json()["regenerated"]
        assert sorted((d["id"], d["version"]) for d in regenerated) == sorted([(ana, 2), (ben, 2)])
        _render(server)

        refused = http.get(f"/v1/artifacts/{ana}/download")
        assert (
            refused.status_code == 409 and refused.json()["error"]["details"]["status"] == "awaiting_review"
        )
        ben_now = http.get(f"/v1/artifacts/{ben}").json()
        assert (ben_now["status"], ben_now["downloadable_version"]) == ("awaiting_review", 1)
        detail = http.get(f"/v1/reviews/{ben}").json()
        assert [(e["block"], e["kept"]) for e in detail["edits"]["in_effect"]] == [("pricing/0", True)]
        assert (
            "Rita says: price after value." in detail["html"]
            and "Rita says: price after value."
            in httpx.get(server.url + httpx.URL(detail["preview_url"]).raw_path.decode()).text
        )
        assert {q["artifact_id"] for q in http.get("/v1/reviews").json()["items"]} == {ana, ben}

        # 12 reviewers approve Ana's v2 at the same moment: one wins, the others are told it is no longer waiting
        barrier = threading.Barrier(REVIEWERS)
        outcomes: list[str] = []

        def approve(i: int) -> None:
            with httpx.Client(base_url=server.url, headers=bearer(ws["secret_key"]), timeout=60) as own:
                barrier.wait()
                r = own.post(
                    f"/v1/artifacts/{ana}/review",
                    json={"action": "approve", "reviewer": f"r{i}", "version": 2},
                )
            outcomes.append(
                r.json()["status"] if r.status_code == 200 else f"{r.status_code} {r.json()['error']['code']}"
            )

        threads = [threading.Thread(target=approve, args=(i,)) for i in range(REVIEWERS)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert Counter(outcomes) == Counter({"ready": 1, "409 invalid_review": REVIEWERS - 1})
        link = http.get(f"/v1/artifacts/{ana}/download", params={"format": "markdown"}).json()
        assert link["version"] == 2

        # the buyer's viewer opens the link from 8 connections at once (whole file and ranges): one open, once
        fetched: list[int] = []
        barrier = threading.Barrier(8)

        def fetch(i: int) -> None:
            with httpx.Client(base_url=server.url, timeout=60) as own:
                barrier.wait()
                r = own.get(link["url"], headers={"Range": f"bytes={i * 10}-"} if i % 2 else {})
            fetched.append(r.status_code)

        threads = [threading.Thread(target=fetch, args=(i,)) for i in range(8)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        assert sorted(fetched) == [200] * 4 + [206] * 4
        buyer_id = http.get("/v1/buyers/lookup", params={"user_id": "ana"}).json()["id"]
        events = http.get(f"/v1/buyers/{buyer_id}/events").json()["items"]
        opens = [e["properties"] for e in events if e["name"] == "Artifact Downloaded"]
        assert opens == [{"artifact_id": ana, "version": 2, "format": "markdown", "policy_id": "starter-workbook",
                          "first_open": True, "open": "first"}]  # fmt: skip
        assert "People compare" in httpx.get(server.url + link["url"]).text
