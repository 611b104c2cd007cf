"""Background jobs as they run for real: `offerloop serve` renders and fulfils by itself (a purchase over HTTP
becomes an entitlement and a rendered deliverable with nobody calling a worker), and an `offerloop worker`
killed with SIGKILL in the middle of a render leaves a job that a new worker finishes, exactly once."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import create_engine, select, update
from tests.assembly.test_artifacts_api import ATOMS, QUIZ
from tests.assembly.test_artifacts_api import POLICY as ARTIFACT_POLICY
from tests.assembly.test_voice import Harness, atom_of, completion, hangs
from tests.checkout.log import new_workspaces_forget_their_work
from tests.conftest import LiveServer, basic, bearer, msg

from offerloop.core.clock import utcnow
from offerloop.models import ArtifactFile, ArtifactVersion
from offerloop.models.jobs import Job

pytestmark = pytest.mark.server
POLICY = ARTIFACT_POLICY.replace("{REVIEW}", "never")

CATALOG = """
offers:
  - key: starter-kit
    kind: product
    title: "Starter kit"
    description: "A personalised workbook and the pricing notes."
    prices: {USD: 1500}
    components:
      - {component: deliverable, ref: starter-workbook}
      - {component: download, ref: pricing-notes-pdf}
"""


def wait_for(condition: Callable[[], Any], what: str, timeout_s: float = 60.0) -> Any:
    """Poll ``condition`` until it returns something truthy, or fail naming ``what`` after the deadline."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.05)
    raise AssertionError(f"timed out after {timeout_s} s waiting for {what}")


def _server(tmp_path: Path, engine, database_url: str, monkeypatch, threads: int) -> Iterator[LiveServer]:
    monkeypatch.setenv("OFFERLOOP_WORKER_THREADS", str(threads))
    monkeypatch.setenv("OFFERLOOP_WORKER_POLL_S", "0.2")
    url = database_url if engine.dialect.name == "postgresql" else f"sqlite:///{tmp_path / 'live.db'}"
    srv = LiveServer(url, log_path=tmp_path / "server.log")
    with new_workspaces_forget_their_work(engine):
        srv.start()
        yield srv
        srv.stop()


@pytest.fixture
def serving(tmp_path: Path, engine, database_url: str, monkeypatch) -> Iterator[LiveServer]:
    yield from _server(tmp_path, engine, database_url, monkeypatch, threads=2)


@pytest.fixture
def idle(tmp_path: Path, engine, database_url: str, monkeypatch) -> Iterator[LiveServer]:
    """A server that runs no jobs itself: only `offerloop worker` processes do."""
    yield from _server(tmp_path, engine, database_url, monkeypatch, threads=0)


def _content(http: httpx.Client) -> None:
    r = http.post(
        "/v1/content/sync", json={"atoms": [{"text": t, "path": f"{k}.md"} for k, t in ATOMS.items()]}
    )
    assert r.status_code == 200, r.text
    assert http.put("/v1/quizzes", json={"text": QUIZ}).status_code == 200
    assert http.put("/v1/policies", json={"text": POLICY}).status_code == 200


def _identify(server: LiveServer, write_key: str, user: str) -> None:
    ident = msg(userId=user, messageId=f"{user}-id", traits={"name": "Ana Lima"})
    assert httpx.post(server.url + "/v1/identify", headers=basic(write_key), json=ident).status_code == 200


def test_the_server_renders_and_fulfils_by_itself(serving: LiveServer) -> None:
    ws = json.loads(serving.cli("workspace", "create", "Live jobs", "--json").stdout)
    with httpx.Client(base_url=serving.url, headers=bearer(ws["secret_key"]), timeout=60) as http:
        _content(http)
        assert http.put("/v1/offers/catalog", json={"text": CATALOG}).status_code == 200
        _identify(serving, ws["write_key"], "ana")
        order = http.post("/v1/checkout", json={"user_id": "ana", "offer": "starter-kit"})
        assert order.status_code == 201, order.text
        oid = order.json()["id"]
        assert http.post(f"/v1/orders/{oid}/paid", json={"reference": "INV-7"}).status_code == 200

        def delivered() -> dict[str, Any] | None:
            tasks = {t["component"]: t for t in http.get(f"/v1/orders/{oid}").json()["fulfilment"]}
            return tasks if all(t["status"] == "done" for t in tasks.values()) else None

        tasks = wait_for(delivered, "both components fulfilled")
        check = {"user_id": "ana", "component": "download", "ref": "pricing-notes-pdf"}
        assert http.get("/v1/entitlements/check", params=check).json()["allowed"] is True
        artifact_id = tasks["deliverable"]["result"]["artifact_id"]

        def rendered() -> dict[str, Any] | None:
            body = http.get(f"/v1/artifacts/{artifact_id}").json()
            return body if body["status"] == "ready" else None

        artifact = wait_for(rendered, "the deliverable rendered")
        assert artifact["version"] == 1
        link = http.get(f"/v1/artifacts/{artifact_id}/download", params={"format": "markdown"})
        assert link.status_code == 200, link.text
        url = link.json()["url"]
        assert "Anchor your price" in httpx.get(url if url.startswith("http") else serving.url + url).text


def _answer_and_request(server: LiveServer, ws: dict[str, str], http: httpx.Client) -> str:
    _identify(server, ws["write_key"], "ana")
    answers = {"user_id": "ana", "answers": {"stage": "idea", "confidence": 1, "goal": "sell a template"}}
    r = httpx.post(server.url + "/v1/quizzes/intake/answers", headers=basic(ws["write_key"]), json=answers)
    assert r.status_code == 200, r.text
    r = http.post("/v1/artifacts", json={"user_id": "ana", "policy": "starter-workbook"})
    assert r.status_code == 202, r.text
    return str(r.json()["id"])


def _worker_env(server: LiveServer, rewriter_url: str) -> dict[str, str]:
    return {**server.env(), "OFFERLOOP_REWRITER_URL": rewriter_url, "OFFERLOOP_REWRITER_MODEL": "voice-test",
            "OFFERLOOP_REWRITER_TIMEOUT_S": "120", "OFFERLOOP_REWRITER_ARTIFACT_DEADLINE_S": "120"}  # fmt: skip


def test_a_worker_killed_mid_render_leaves_a_job_another_worker_finishes_once(idle: LiveServer) -> None:
    harness = Harness()
    stuck = harness.serve(hangs)  # the first worker's rewriter never answers: it is mid-render when killed

    def reword(h: Any, body: dict[str, Any]) -> None:
        h.reply(200, completion(atom_of(body).replace("Show the full value", "Show all the value")))

    answering = harness.serve(reword)
    engine = create_engine(idle.database_url)
    try:
        ws = json.loads(idle.cli("workspace", "create", "Killed worker", "--json").stdout)
        with httpx.Client(base_url=idle.url, headers=bearer(ws["secret_key"]), timeout=60) as http:
            _content(http)
            art = _answer_and_request(idle, ws, http)
            first = subprocess.Popen(
                [sys.executable, "-m", "offerloop.cli.main", "worker", "--threads", "1"],
                env=_worker_env(idle, stuck.base_url), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            )  # fmt: skip
            try:
                wait_for(lambda: stuck.requests, "the first worker to call the rewriter")
                assert http.get(f"/v1/artifacts/{art}").json()["status"] == "rendering"
            finally:
                first.kill()  # SIGKILL: no clean-up, the job keeps its lease and the version stays "rendering"
                first.wait(timeout=30)
            with engine.connect() as conn:
                [job] = conn.execute(
                    select(Job).where(Job.kind == "assembly.render", Job.key == f"{art}:1")
                ).all()
            assert job.state == "queued" and job.lease_owner is not None
            # A new worker waits out the lease; here the clock is moved past it instead of sleeping 30 s.
            with engine.begin() as conn:
                conn.execute(
                    update(Job).where(Job.id == job.id).values(lease_until=utcnow() - timedelta(seconds=1))
                )
            second = subprocess.run(
                [sys.executable, "-m", "offerloop.cli.main", "worker", "--once"], env=_worker_env(idle, answering.base_url),
                capture_output=True, text=True, check=True, timeout=120,
            )  # fmt: skip
            assert second.stdout.startswith("1 artifact versions rendered"), second.stdout
            again = subprocess.run(
                [sys.executable, "-m", "offerloop.cli.main", "worker", "--once"], env=_worker_env(idle, answering.base_url),
                capture_output=True, text=True, check=True, timeout=120,
            )  # fmt: skip
            assert again.stdout.startswith("0 artifact versions rendered"), again.stdout
            body = http.get(f"/v1/artifacts/{art}").json()
            assert (body["status"], body["version"]) == ("ready", 1)
            assert body["provenance"]["rewriter"]["endpoint"] == answering.base_url
        with engine.connect() as conn:
            [job] = conn.execute(select(Job).where(Job.id == job.id)).all()
            assert (job.state, job.lease_owner, job.attempts) == ("done", None, 0)
            files = (
                conn.execute(select(ArtifactFile.format).where(ArtifactFile.artifact_id == art))
                .scalars()
                .all()
            )
            assert sorted(files) == ["email", "html", "markdown", "pdf"]  # one set, written once
            [status] = conn.execute(
                select(ArtifactVersion.status).where(ArtifactVersion.artifact_id == art)
            ).all()
            assert status == ("ready",)
        assert len(answering.requests) == 1  # the one rewritable block, rewritten once
    finally:
        engine.dispose()
        harness.close()
