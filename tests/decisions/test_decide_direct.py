"""POST /v1/decide's direct path (no FastAPI dependency solving): it answers only the requests FastAPI's own
handler would answer with a 200, and every other request gets exactly the standard path's answer."""

from __future__ import annotations

from typing import Any

import anyio
import orjson
import pytest
from starlette.requests import Request
from tests.decisions.test_decide import CATALOG

from offerloop.decisions.endpoints import _decide_directly
from offerloop.workspaces.auth import PRINCIPAL_SCOPE_KEY
from offerloop.workspaces.schemas import Principal

# FastAPI reads these as JSON too; the direct path takes only the exact media type, so these go the standard way.
STANDARD_JSON = "application/json; charset=utf-8"


@pytest.fixture
def catalog(client, secret_headers):
    r = client.put("/v1/actions", headers=secret_headers, json=CATALOG)
    assert r.status_code == 200, r.text
    client.app.state.settings.holdout_share = 1.0  # rules order: the same answer on both paths


def _post(client: Any, headers: dict[str, str], body: bytes, kind: str | None) -> tuple[int, Any]:
    extra = {"Content-Type": kind} if kind is not None else {}
    r = client.post("/v1/decide", headers={**headers, **extra}, content=body)
    return r.status_code, r.json()


def _comparable(answer: Any) -> Any:
    return {k: v for k, v in answer.items() if k != "decision_id"} if "decision_id" in answer else answer


BODIES = [
    b'{"user_id": "u1", "placement": "home", "k": 3}',
    b'{"anonymous_id": "a1", "placement": "home", "k": "2", "candidates": ["quiz", "mod-1"]}',
    b'{"user_id": "u1", "placement": "home", "context": {"n": 1, "x": 1.5, "s": "t", "b": true}}',
    b'{"user_id": "u1", "placement": "home", "k": 2.0, "user_id": "u2"}',  # a repeated key: the last one
    b'{"placement": "home"}',  # no identity
    b'{"user_id": "u1", "placement": ""}',
    b'{"user_id": "u1", "placement": "home", "k": 0}',
    b'{"user_id": "u1", "placement": "home", "k": 2.5}',
    b'{"user_id": "u1", "placement": "home", "surprise": 1}',
    b'{"user_id": "u1", "placement": "home", "candidates": ["nope"]}',
    b'{"user_id": "u1", "placement": "home", "context": {"x": [1]}}',
    b'["user_id"]',
    b'"home"',
    b"null",
    b'{"user_id": "u1", "placement": "home"',  # not JSON
    b"",
]


@pytest.mark.parametrize("body", BODIES)
def test_the_direct_path_answers_as_the_standard_one(client, secret_headers, catalog, body):
    direct = _post(client, secret_headers, body, "application/json")
    standard = _post(client, secret_headers, body, STANDARD_JSON)
    assert (direct[0], _comparable(direct[1])) == (standard[0], _comparable(standard[1]))


def test_keys_and_media_types_go_the_standard_way(client, secret_headers, write_headers, catalog):
    body = b'{"user_id": "u1", "placement": "home"}'
    assert _post(client, write_headers, body, "application/json")[0] == 403
    assert _post(client, {}, body, "application/json")[0] == 401
    assert _post(client, secret_headers, body, "text/plain")[0] == 422
    assert _post(client, secret_headers, body, None)[0] == 422  # FastAPI does not read a body without a type
    assert _post(client, secret_headers, body, "application/vnd.x+json")[0] == 200


async def _direct(client: Any, principal: Any, body: bytes, kind: bytes = b"application/json") -> Any:
    scope = {"type": "http", "method": "POST", "path": "/v1/decide", "headers": [(b"content-type", kind)],
             "query_string": b"", "app": client.app, PRINCIPAL_SCOPE_KEY: principal}  # fmt: skip

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": body, "more_body": False}

    return await _decide_directly(Request(scope, receive))


def test_the_direct_path_takes_only_valid_requests_of_a_secret_key(client, workspace, catalog):
    secret = Principal(workspace_id=workspace.id, key_id="k", kind="secret")
    write = Principal(workspace_id=workspace.id, key_id="k", kind="write")
    valid = orjson.dumps({"user_id": "u1", "placement": "home", "k": 2})
    answer = anyio.run(_direct, client, secret, valid)
    assert answer is not None and answer.status_code == 200
    assert [i["id"] for i in orjson.loads(answer.body)["items"]] == ["mod-1", "call-1"]
    assert anyio.run(_direct, client, write, valid) is None
    assert anyio.run(_direct, client, None, valid) is None
    assert anyio.run(_direct, client, secret, valid, b"application/json; charset=utf-8") is None
    assert anyio.run(_direct, client, secret, b'{"placement": "home"}') is None
    assert anyio.run(_direct, client, secret, b"{") is None
