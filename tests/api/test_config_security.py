"""Configuration and transport security: unforgeable download links without a configured secret, no
public listening with a placeholder secret, security headers on pages and files, the quiz form's action
from OFFERLOOP_PUBLIC_URL (not the Host header), and key revocation seen by every worker within 1 s."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import httpx
import pytest
from sqlalchemy import Engine
from tests.assembly.test_artifacts_api import buyer, setup_workspace
from tests.conftest import LiveServer, basic, bearer

from offerloop.assembly import links
from offerloop.assembly import service as assembly_service
from offerloop.cli.process import free_port
from offerloop.config import Settings


def ready_artifact(client, db, secret_headers, write_headers) -> str:
    setup_workspace(client, secret_headers)
    buyer(client, write_headers, "ana", "Ana Lima", "idea", 1, "sell my first template")
    r = client.post(
        "/v1/artifacts", headers=secret_headers, json={"user_id": "ana", "policy": "starter-workbook"}
    )
    assert r.status_code == 202, r.text
    assert [status for *_, status in assembly_service.run_pending(db=db)] == ["ready"]
    return str(r.json()["id"])


def test_the_default_secret_cannot_forge_download_links(client, db, secret_headers, write_headers):
    artifact_id = ready_artifact(client, db, secret_headers, write_headers)
    expires = int(time.time()) + 600
    for placeholder in ("dev-secret", "secret", "change-me", ""):
        sig = links.sign(placeholder, artifact_id, 1, "html", expires)
        forged = client.get(f"/v1/files/{artifact_id}/1/html?expires={expires}&sig={sig}")
        assert forged.status_code == 403 and forged.json()["error"]["code"] == "invalid_link"
    real = client.get(f"/v1/artifacts/{artifact_id}/download?format=html", headers=secret_headers).json()
    assert client.get(real["url"]).status_code == 200
    # A configured secret is used as is: links signed with it open, others do not.
    client.app.state.settings.secret = "a-real-secret-of-32-characters-ok"
    sig = links.sign("a-real-secret-of-32-characters-ok", artifact_id, 1, "html", expires)
    assert client.get(f"/v1/files/{artifact_id}/1/html?expires={expires}&sig={sig}").status_code == 200
    assert client.get(real["url"]).status_code == 403


def test_a_non_ascii_signature_is_a_bad_link_not_a_500(client, db, secret_headers, write_headers):
    artifact_id = ready_artifact(client, db, secret_headers, write_headers)
    r = client.get(
        f"/v1/files/{artifact_id}/1/html", params={"expires": int(time.time()) + 60, "sig": "é" * 64}
    )
    assert r.status_code == 403


def _serve(tmp_path: Path, host: str, **env: str) -> subprocess.CompletedProcess[str]:
    base = {k: v for k, v in os.environ.items() if not k.startswith("OFFERLOOP_")}
    return subprocess.run(
        [sys.executable, "-m", "offerloop.cli.main", "serve", "--host", host, "--port", str(free_port())],
        env={**base, "OFFERLOOP_DATABASE_URL": f"sqlite:///{tmp_path / 's.db'}", **env},
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.parametrize("secret", [None, "dev-secret", "change-me", "short"])
def test_serve_refuses_a_placeholder_secret_on_a_public_address(tmp_path, secret):
    env = {"OFFERLOOP_SECRET": secret} if secret is not None else {}
    done = _serve(tmp_path, "0.0.0.0", **env)
    assert done.returncode == 2
    assert "OFFERLOOP_SECRET is a placeholder" in done.stderr
    assert not (tmp_path / "s.db").exists()  # refused before touching anything


def test_placeholder_checks():
    from offerloop.config import is_loopback, is_placeholder_secret

    assert [is_loopback(h) for h in ("127.0.0.1", "localhost", "::1", "[::1]", "127.8.0.1")] == [True] * 5
    assert [is_loopback(h) for h in ("0.0.0.0", "::", "192.168.1.4", "example.com")] == [False] * 4
    assert is_placeholder_secret("dev-secret") and is_placeholder_secret(" secret ")
    assert not is_placeholder_secret("x" * 32)
    with pytest.raises(ValueError, match="OFFERLOOP_SECRET"):
        Settings(environment="production", secret="short")
    with pytest.raises(ValueError, match="OFFERLOOP_PUBLIC_URL"):
        Settings(public_url="javascript:alert(1)")
    assert Settings(public_url="https://offers.example.com/").public_url == "https://offers.example.com"


def test_the_public_url_of_an_ipv6_address_has_one_pair_of_brackets():
    from offerloop.config import bind_host, local_url

    assert [local_url(h, 8000) for h in ("127.0.0.1", "::1", "[::1]", " [::] ", "localhost")] == [
        "http://127.0.0.1:8000", "http://[::1]:8000", "http://[::1]:8000", "http://[::]:8000",
        "http://localhost:8000",
    ]  # fmt: skip
    assert [bind_host(h) for h in ("[::1]", "::1", "0.0.0.0")] == ["::1", "::1", "0.0.0.0"]
    for host in ("[::1]", "::1"):  # each is a valid public URL for the settings workers read
        assert Settings(public_url=local_url(host, 8000)).public_url == "http://[::1]:8000"


def test_pages_and_files_carry_security_headers(client, db, secret_headers, write_headers, workspace):
    artifact_id = ready_artifact(client, db, secret_headers, write_headers)
    page = client.get("/v1/quizzes/intake/page", params={"key": workspace.write_key})
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    link = client.get(f"/v1/artifacts/{artifact_id}/download?format=html", headers=secret_headers).json()
    file = client.get(link["url"])
    assert file.status_code == 200
    for r in (page, file):
        assert r.headers["x-content-type-options"] == "nosniff"
        assert r.headers["x-frame-options"] == "DENY"
        csp = r.headers["content-security-policy"]
        assert "default-src 'none'" in csp and "frame-ancestors 'none'" in csp and "script-src" not in csp
    assert "sandbox" in file.headers["content-security-policy"]
    # A personal file behind an expiring link: no shared cache keeps it past the link or an erasure.
    assert file.headers["cache-control"] == "private, no-store"
    assert "form-action 'self' http://127.0.0.1:8000" in page.headers["content-security-policy"]
    api = client.get("/v1/keys", headers=secret_headers)
    assert api.headers["x-content-type-options"] == "nosniff"


def test_the_quiz_form_posts_to_the_public_url_not_the_host_header(
    client, db, secret_headers, write_headers, workspace
):
    setup_workspace(client, secret_headers)
    client.app.state.settings.public_url = "https://offers.example.com"
    page = client.get(
        "/v1/quizzes/intake/page", params={"key": workspace.write_key}, headers={"Host": "evil.example"}
    )
    assert page.status_code == 200
    action = page.text.split('action="', 1)[1].split('"', 1)[0].replace("&amp;", "&")
    parts = urlsplit(action)
    assert (parts.scheme, parts.netloc, parts.path) == (
        "https",
        "offers.example.com",
        "/v1/quizzes/intake/answers",
    )
    assert parse_qs(parts.query) == {"key": [workspace.write_key]}
    assert "evil.example" not in page.text
    # A refused form submission re-renders the page with the same configured action.
    bad_form = client.post(
        "/v1/quizzes/intake/answers",
        params={"key": workspace.write_key},
        headers={"Host": "evil.example", "Content-Type": "application/x-www-form-urlencoded"},
        content="q.stage=nope&q.confidence=9",
    )
    assert bad_form.status_code == 422 and "evil.example" not in bad_form.text
    assert 'action="https://offers.example.com/v1/quizzes/intake/answers?key=' in bad_form.text


@pytest.fixture
def two_workers(tmp_path: Path, engine: Engine, database_url: str):
    url = database_url if engine.dialect.name == "postgresql" else f"sqlite:///{tmp_path / 'live.db'}"
    server = LiveServer(url, workers=2, log_path=tmp_path / "server.log")
    server.start(timeout_s=180)  # two processes importing everything on a busy machine
    yield server
    server.stop()


def test_a_revoked_key_stops_working_in_every_worker_within_a_second(two_workers):
    server = two_workers
    created = json.loads(server.cli("workspace", "create", "revocation", "--json").stdout)
    admin = bearer(created["secret_key"])
    key = httpx.post(server.url + "/v1/keys", headers=admin, json={"kind": "write", "name": "doomed"}).json()
    doomed = basic(key["key"])

    def status() -> int:
        # A fresh connection each time, so the kernel spreads the requests over both processes.
        with httpx.Client(base_url=server.url, timeout=5) as c:
            return c.post("/v1/track", headers=doomed, json={"userId": "r1", "event": "e"}).status_code

    assert [status() for _ in range(30)] == [200] * 30  # both workers now hold the key in their cache
    started = time.monotonic()
    revoked = httpx.delete(f"{server.url}/v1/keys/{key['id']}", headers=admin)
    assert revoked.status_code == 200
    last_accepted = None
    seen: list[int] = []
    while time.monotonic() < started + 1.5:
        code = status()
        seen.append(code)
        if code == 200:
            last_accepted = time.monotonic() - started
    assert set(seen) <= {200, 401}
    assert last_accepted is None or last_accepted < 1.0, (
        f"a revoked key was accepted {last_accepted:.2f} s later"
    )
    assert seen[-5:] == [401] * 5
