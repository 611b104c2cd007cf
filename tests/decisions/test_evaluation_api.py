"""GET /v1/evaluation against a running `offerloop serve`: the CLI's out-of-sample report over HTTP, scoped to
the caller's workspace, and careless or hostile parameters answered 401/422, never 500."""

from __future__ import annotations

import itertools
import json

import httpx
import pytest
from tests.conftest import LiveServer, basic, bearer
from tests.decisions.test_evaluate_out_of_sample import _noise_log

from offerloop.cli.common import database
from offerloop.config import Settings
from offerloop.decisions import service as decisions_service
from offerloop.workspaces import service as workspace_service

pytestmark = pytest.mark.server


def test_evaluation_over_http(live_server: LiveServer, monkeypatch) -> None:
    counter = itertools.count()
    monkeypatch.setattr(decisions_service, "new_id", lambda prefix: f"{prefix}_{next(counter):026d}")
    with database(Settings(database_url=live_server.database_url)) as db, db.write() as session:
        ws = workspace_service.create_workspace(session=session, name="Evaluated")
        other = workspace_service.create_workspace(session=session, name="Someone else")
        _noise_log(session, ws.id)
    cli = json.loads(live_server.cli("evaluate", "-w", ws.id, "--placement", "home", "--json").stdout)

    with httpx.Client(base_url=live_server.url, headers=bearer(ws.secret_key), timeout=60) as http:
        r = http.get("/v1/evaluation", params={"placement": "home"})
        assert r.status_code == 200, r.text
        body = r.json()
        assert body["method"] == "out-of-sample: progressive validation over 600 decisions"
        assert body["policies"]["model"]["scored"] == 300
        assert body["policies"]["model"]["snapshots"] == {"home v1": 300}
        for name in ("rules_only", "random", "popularity", "model"):
            for key in ("scored", "matched", "matched_rewarded", "enough_data"):
                assert body["policies"][name][key] == cli["policies"][name][key]
            assert body["policies"][name]["snips"]["value"] == pytest.approx(
                cli["policies"][name]["snips"]["value"]
            )
        assert body["online"]["overall"]["verdict"] == cli["online"]["overall"]["verdict"]
        # every placement (the log has only "home"), a naive time taken as UTC, a narrower level
        assert http.get("/v1/evaluation").json()["decisions"] == 600
        late = http.get("/v1/evaluation", params={"since": "2999-01-01T00:00:00", "level": 0.9}).json()
        assert (late["decisions"], late["policies"], late["online"]) == (0, {}, None)
        early = http.get("/v1/evaluation", params={"since": "0001-01-01T00:00:00+05:00"})
        assert early.status_code == 200 and early.json()["decisions"] == 600
        for params in (
            {"level": 2}, {"level": 0.2}, {"level": "nan"}, {"level": "abc"}, {"since": "yesterday"},
            {"placement": ""}, {"placement": "x" * 65}, {"since": "2026-13-45T00:00:00"},
        ):  # fmt: skip
            bad = http.get("/v1/evaluation", params=params)
            assert bad.status_code == 422, (params, bad.text)
            assert bad.json()["error"]["code"]

    # another workspace's key sees its own (empty) log, and the public write key is not enough
    assert (
        httpx.get(f"{live_server.url}/v1/evaluation", headers=bearer(other.secret_key)).json()["decisions"]
        == 0
    )
    assert httpx.get(f"{live_server.url}/v1/evaluation", headers=basic(ws.write_key)).status_code == 403
    assert httpx.get(f"{live_server.url}/v1/evaluation").status_code == 401
