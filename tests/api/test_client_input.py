"""What a careless or hostile client sends is refused with a reason (4xx), never a 500 — by mechanism:
one guard for NUL characters, 64-bit integers and JSON depth on every route; config endpoints take
content, never a path; YAML that YAML forbids is a config error."""

from __future__ import annotations

import asyncio
from pathlib import Path

import orjson
import pytest

from offerloop.api.guards import MAX_JSON_DEPTH, CatchAll, check_body
from offerloop.declarative import show

ACTION = {"key": "call-1", "kind": "coaching", "title": "1:1 call", "priority": 2,
          "outcome": {"event": "Call Booked", "window_days": 3}}  # fmt: skip
TEMPLATES = """
personas:
  - name: collector
    signals: [{feature: drop_orders, gte: 1}]
  - name: browser
    signals: [{feature: orders, lte: 0}]
"""


def _error(r) -> tuple[int, str]:
    return r.status_code, r.json()["error"]["code"]


# -- item 10: config endpoints take content, never a server path -------------------------------------


def test_persona_templates_never_read_a_server_file(client, secret_headers, tmp_path: Path) -> None:
    readable = tmp_path / "personas.yaml"
    readable.write_text(TEMPLATES, encoding="utf-8")
    secret = tmp_path / "secret.json"
    secret.write_text('{"sk_live_TOPSECRET": 1}', encoding="utf-8")
    for path in (readable, secret, tmp_path / "missing.yml"):
        r = client.put("/v1/personas/templates", headers=secret_headers, json=str(path))
        assert "TOPSECRET" not in r.text and "collector" not in r.text
        # The same answer whether the file exists, holds valid templates or anything else: no oracle.
        # The text is read as YAML: one string, not a mapping.
        message = f"must be a mapping, got {show(str(path))}"
        assert (r.status_code, r.json()["error"]) == (
            422,
            {
                "code": "invalid_persona_templates",
                "message": f"<personas>:1: {message}",
                "details": [{"path": "<personas>", "line": 1, "location": None, "message": message}],
            },
        )
    assert client.get("/v1/personas/templates", headers=secret_headers).json() == {
        "version": 0,
        "templates": None,
    }
    # The same text sent as content is stored.
    r = client.put("/v1/personas/templates", headers=secret_headers, json=TEMPLATES)
    assert r.status_code == 200, r.text


@pytest.mark.parametrize("body", [None, True, 42, 1.5, [], ["personas.yaml"], [{}]])
def test_non_object_persona_templates_are_refused(client, secret_headers, body) -> None:
    r = client.put("/v1/personas/templates", headers=secret_headers, content=orjson.dumps(body))
    assert _error(r) == (422, "invalid_persona_templates")


# -- item 12: YAML control characters, offers query, signed links, integers, NUL, depth ----------------


@pytest.mark.parametrize(
    ("route", "text", "code"),
    [("/v1/quizzes", "title: a\x14b\n", "invalid_content"),
     ("/v1/offers/catalog", "title: a\x14b\n", "invalid_catalog"),
     ("/v1/content/atoms", "---\nid: a\x14b\n---\nBody\n", "invalid_content")],
)  # fmt: skip
def test_yaml_control_characters_are_a_config_error(client, secret_headers, route, text, code) -> None:
    r = client.put(route, headers=secret_headers, json={"text": text})
    assert _error(r) == (422, code)
    assert "unacceptable character #x0014" in r.text


DEEP_FLOW = "a: " + "[" * 3000 + "]" * 3000 + "\n"
DEEP_BLOCK = "a:\n" + "".join("  " * i + "- \n" for i in range(1, 1200)) + "  " * 1200 + "- x\n"


@pytest.mark.parametrize("text", [DEEP_FLOW, DEEP_BLOCK], ids=["flow", "block"])
@pytest.mark.parametrize(
    ("method", "route", "wrap", "code"),
    [("put", "/v1/quizzes", lambda t: {"text": t}, "invalid_content"),
     ("put", "/v1/offers/catalog", lambda t: {"text": t}, "invalid_catalog"),
     ("put", "/v1/policies", lambda t: {"text": t}, "invalid_policy"),
     ("put", "/v1/content/atoms", lambda t: {"text": f"---\n{t}---\nBody\n"}, "invalid_content"),
     ("post", "/v1/content/sync", lambda t: {"atoms": [{"text": f"---\n{t}---\nBody\n", "path": "a.md"}]},
      "invalid_content"),
     ("put", "/v1/features/spec", lambda t: t, "invalid_feature_spec"),
     ("put", "/v1/personas/templates", lambda t: t, "invalid_persona_templates"),
     ("put", "/v1/signals", lambda t: t, "invalid_signal_config")],
)  # fmt: skip
def test_yaml_nested_deeper_than_the_limit_is_a_config_error(
    client, secret_headers, method, route, wrap, code, text
) -> None:
    """YAML is bounded like JSON: nesting past the limit is a config error naming it, not a RecursionError 500."""
    r = client.request(method, route, headers=secret_headers, json=wrap(text))
    assert _error(r) == (422, code)
    assert f"nested deeper than {MAX_JSON_DEPTH} levels" in r.text


@pytest.mark.parametrize(
    "params", [{}, {"user_id": "u1", "k": -5}, {"user_id": "u1", "k": 51}, {"user_id": ""}]
)
def test_offers_query_that_is_not_a_decide_request_is_422(client, secret_headers, params) -> None:
    r = client.get("/v1/offers", headers=secret_headers, params=params)
    assert _error(r) == (422, "validation_failed")


def test_signed_link_with_non_ascii_signature_is_refused(client) -> None:
    r = client.get("/v1/files/art_1/1/pdf", params={"expires": 4102444800, "sig": "é" * 64})
    assert _error(r) == (403, "invalid_link")


@pytest.mark.parametrize(
    ("method", "route", "body"),
    [
        ("put", "/v1/actions", [{**ACTION, "priority": 2**63}]),
        ("put", "/v1/actions", [{**ACTION, "priority": -(2**63) - 1}]),
        ("put", "/v1/actions", [{**ACTION, "frequency_cap": {"max": 2**64, "days": 1}}]),
        ("post", "/v1/entitlements", {"buyer_id": "b", "component": "coaching_quota", "ref": "r", "quota": 2**70}),
        ("post", "/v1/quarantine/qev_x/replay", {"payload": {"type": "track", "n": 10**30}}),
    ],
)  # fmt: skip
def test_integers_outside_64_bits_are_refused_on_every_route(
    client, secret_headers, method, route, body
) -> None:
    r = getattr(client, method)(route, headers=secret_headers, content=_big(body))
    assert _error(r) == (422, "invalid_input")
    assert r.json()["error"]["details"] == {"reason": "integer_out_of_range", "in": "body"}


def _big(body: object) -> bytes:
    # orjson refuses to write integers over 64 bits; the stdlib writes them as a client would.
    import json

    return json.dumps(body).encode()


def test_integer_query_values_outside_64_bits_are_refused(client, write_headers, secret_headers) -> None:
    client.post("/v1/track", headers=write_headers, json={"userId": "u-big", "event": "Seen"})
    buyer = client.get("/v1/buyers/lookup", headers=secret_headers, params={"user_id": "u-big"}).json()["id"]
    r = client.get(f"/v1/buyers/{buyer}/events", headers=secret_headers, params={"limit": 2**63})
    assert _error(r) == (422, "invalid_input")
    assert r.json()["error"]["details"] == {"reason": "integer_out_of_range", "in": "query"}
    r = client.get(f"/v1/buyers/{buyer}/events", headers=secret_headers, params={"limit": 2**63 - 1})
    assert _error(r) == (422, "validation_failed")
    r = client.get(f"/v1/buyers/{buyer}/events", headers=secret_headers, params={"limit": 500})
    assert (r.status_code, len(r.json()["items"])) == (200, 1)
    # A long numeric *string* is an identifier, not an integer: looked up, not refused.
    r = client.get("/v1/buyers/lookup", headers=secret_headers, params={"user_id": "9" * 30})
    assert _error(r) == (404, "buyer_not_found")
    r = client.get(f"/v1/files/art_1/{2**64}/pdf", params={"expires": 1, "sig": "x"})
    assert _error(r) == (422, "invalid_input")
    assert r.json()["error"]["details"] == {"reason": "integer_out_of_range", "in": "path"}
    r = client.get("/v1/files/art_1/1/pdf", params={"expires": -(2**63) - 1, "sig": "x"})
    assert r.json()["error"]["details"] == {"reason": "integer_out_of_range", "in": "query"}
    # Blanks str.strip() removes but int() does not accept (\x1f, found by schemathesis) are no 500 either
    r = client.get("/v1/files/art_1/1/pdf", params={"expires": "259", "sig": "\x1f4"})
    assert _error(r) == (403, "invalid_link")
    r = client.get("/v1/files/art_1/1/pdf", params={"expires": "\x1f" + "9" * 30, "sig": "x"})
    assert r.json()["error"]["details"] == {"reason": "integer_out_of_range", "in": "query"}
    # More digits than Python converts (4,300; int() raised, a 500 on every route): judged from the length.
    huge = {"limit": "9" * 4301, "x": "-" + "1" * 5000}
    assert client.get("/healthz", params=huge).status_code == 200  # parameters it does not declare
    r = client.get(f"/v1/buyers/{buyer}/events", headers=secret_headers, params=huge)
    assert r.json()["error"]["details"] == {"reason": "integer_out_of_range", "in": "query"}
    r = client.post(
        "/v1/track",
        headers=write_headers,
        content=b'{"userId": "u", "event": "E", "n": ' + b"7" * 5000 + b"}",
    )
    assert (r.status_code, r.json()["error"]["code"]) == (400, "invalid_json")  # and quarantined
    r = client.post(
        "/v1/experiments",
        headers={**secret_headers, "content-type": "application/json"},
        content=b'{"n": ' + b"7" * 5000 + b"}",
    )
    assert r.status_code == 400  # a body no JSON parser reads: a clean refusal


@pytest.mark.parametrize(
    ("route", "params", "body", "where"),
    [
        ("/v1/buyers/lookup", {"user_id": "a\x00b"}, None, "query"),
        ("/v1/buyers/b%00x", None, None, "path"),
        ("/v1/quarantine/qev%00", None, None, "path"),
        ("/v1/actions", None, [{**ACTION, "title": "a\x00b"}], "body"),
    ],
)
def test_nul_characters_are_refused_in_path_query_and_body(
    client, secret_headers, route, params, body, where
):
    if body is None:
        r = client.get(route, headers=secret_headers, params=params)
    else:
        r = client.put(route, headers=secret_headers, content=orjson.dumps(body))
    assert _error(r) == (422, "invalid_input")
    assert r.json()["error"]["details"] == {"reason": "nul_character", "in": where}


def test_json_deeper_than_the_limit_is_refused(client, secret_headers) -> None:
    def nested(depth: int) -> object:
        value: object = 1
        for _ in range(depth - 1):
            value = {"a": value}
        return value

    ok = [{**ACTION, "requires": {}, "outcome": {**ACTION["outcome"]}, "x": nested(MAX_JSON_DEPTH - 2)}]
    assert client.put("/v1/actions", headers=secret_headers, content=orjson.dumps(ok)).status_code == 422
    for depth in (MAX_JSON_DEPTH + 1, 254, 1000, 5000):
        body = b'{"a":' * depth + b"1" + b"}" * depth
        r = client.put("/v1/actions", headers=secret_headers, content=body)
        assert _error(r) == (422, "invalid_input"), depth
        assert r.json()["error"]["details"] == {"reason": "nesting_too_deep", "in": "body"}


def test_guard_leaves_valid_bodies_and_non_json_alone() -> None:
    check_body(b'{"a": [1, -9223372036854775808, 9223372036854775807, 1.5e300, "x"]}')
    check_body(b"not json at all")  # the route answers it with its own 422


def test_catch_all_answers_500_and_does_not_raise() -> None:
    async def broken(scope, receive, send) -> None:
        raise RuntimeError("boom")

    sent: list[dict] = []

    async def send(message) -> None:
        sent.append(message)

    async def receive() -> dict:
        return {"type": "http.request", "body": b"", "more_body": False}

    asyncio.run(CatchAll(broken)({"type": "http", "path": "/x", "method": "GET"}, receive, send))
    assert sent[0]["status"] == 500
    assert orjson.loads(sent[1]["body"])["error"]["code"] == "internal_error"


def test_a_value_the_database_cannot_hold_is_a_422(client, secret_headers) -> None:
    # Within 64 bits but over PostgreSQL's 32-bit integer column: refused by the database, answered 422.
    body = [{**ACTION, "priority": 2**40}]
    r = client.put("/v1/actions", headers=secret_headers, json=body)
    if client.app.state.db.bind.dialect.name == "postgresql":
        assert _error(r) == (422, "invalid_input")
        assert r.json()["error"]["details"] == {"reason": "value_out_of_range"}
    else:
        assert r.status_code == 200 and r.json()[0]["priority"] == 2**40
    assert client.put("/v1/actions", headers=secret_headers, json=[ACTION]).status_code == 200


def test_nul_in_a_form_body_is_refused(client, workspace) -> None:
    r = client.post(f"/v1/quizzes/quiz_x/answers?key={workspace.write_key}", content=b"anonymous_id=a%00b",
                    headers={"Content-Type": "application/x-www-form-urlencoded"})  # fmt: skip
    assert _error(r) == (422, "invalid_input")
    assert r.json()["error"]["details"] == {"reason": "nul_character", "in": "body"}


def test_repeated_action_keys_in_one_request_are_a_422(client, secret_headers) -> None:
    r = client.put("/v1/actions", headers=secret_headers, json=[ACTION, {**ACTION, "title": "again"}])
    assert _error(r) == (422, "duplicate_action_keys")
    assert r.json()["error"]["details"] == {"keys": ["call-1"]}
    assert client.get("/v1/actions", headers=secret_headers).json() == {"items": [], "next_cursor": None}


def test_the_body_check_costs_no_python_call_per_value() -> None:
    """The guard reads bodies before any route authenticates them (a Stripe webhook's signature, a quiz
    form's key): checking 2 MB of JSON must stay at C speed, not one Python call per number or node
    (which took seconds of the event loop per anonymous request)."""
    import sys

    body = b"[" + b"1," * (1024 * 1024 - 2) + b"1]"
    calls = 0

    def count(frame, event, arg) -> None:
        nonlocal calls
        calls += event == "call"

    sys.setprofile(count)
    try:
        check_body(body)
    finally:
        sys.setprofile(None)
    assert calls < 200


@pytest.mark.parametrize(
    ("body", "reason"),
    [
        (
            b'{"a": 9223372036854775807, "b": -9223372036854775808, "c": 1e308, "d": "9999999999999999999999"}',
            None,
        ),
        (b'{"a": 9223372036854775808}', "integer_out_of_range"),
        (b'{"a": [-9223372036854775809]}', "integer_out_of_range"),
        (b'{"a": 12345678901234567890123.5}', None),
        (b'{"a": 1e309}', "number_out_of_range"),
        (b'{"a": -1.5E+400}', "number_out_of_range"),
        (b'{"a": NaN}', "number_out_of_range"),
        (b'{"a": "x\\u0000y"}', "nul_character"),
        (b'{"a\\u0000": 1}', "nul_character"),
        (b'{"a": "x\\\\u0000y"}', None),
        (b'{"a": "[[[[{{{{\\"]]]"}', None),
        (b"[" * MAX_JSON_DEPTH + b"]" * MAX_JSON_DEPTH, None),
        (b"[" * (MAX_JSON_DEPTH + 1) + b"]" * (MAX_JSON_DEPTH + 1), "nesting_too_deep"),
        (b'{"a":' * MAX_JSON_DEPTH + b"1" + b"}" * MAX_JSON_DEPTH, None),
        (b'{"a":' * (MAX_JSON_DEPTH + 1) + b"1" + b"}" * (MAX_JSON_DEPTH + 1), "nesting_too_deep"),
        (b"[" * 100_000 + b"]" * 100_000, "nesting_too_deep"),
        (b"[1, 2", None),
    ],
)
def test_body_check_reasons(body: bytes, reason: str | None) -> None:
    from offerloop.api.guards import _Invalid

    if reason is None:
        check_body(body)
        return
    with pytest.raises(_Invalid) as caught:
        check_body(body)
    assert caught.value.reason == reason
