"""/openapi.json is complete enough to generate a client: every JSON operation answers with a named schema,
every operation documents its errors (with their codes), and every list is paged one way."""

from __future__ import annotations

import re
from typing import Any

import pytest
from fastapi.testclient import TestClient

EXCLUDED_PREFIXES: tuple[str, ...] = ()
ERROR_BODY = "#/components/schemas/ErrorBody"
# Not ready is an answer, not an error: the readiness body says why (load balancers read the status).
OWN_ERROR_ANSWERS = {("GET", "/readyz", "503")}
METHODS = ("get", "put", "post", "delete", "patch", "head")


@pytest.fixture
def spec(client: TestClient) -> dict[str, Any]:
    return client.get("/openapi.json").json()


def _operations(spec: dict[str, Any]) -> list[tuple[str, str, dict[str, Any]]]:
    return [
        (method.upper(), path, operation)
        for path, item in spec["paths"].items()
        if not path.startswith(EXCLUDED_PREFIXES)
        for method, operation in item.items()
        if method in METHODS
    ]


def _named(schema: dict[str, Any]) -> bool:
    if "$ref" in schema:
        return True
    return schema.get("type") == "array" and "$ref" in schema.get("items", {})


def _refs(node: Any) -> list[str]:
    if isinstance(node, dict):
        return [node["$ref"]] if "$ref" in node else [r for v in node.values() for r in _refs(v)]
    if isinstance(node, list):
        return [r for v in node for r in _refs(v)]
    return []


def test_every_json_operation_answers_with_a_named_schema(spec: dict[str, Any]) -> None:
    anonymous, silent = [], []
    for method, path, operation in _operations(spec):
        success = {s: r for s, r in operation["responses"].items() if s.startswith("2")}
        contents = [c for r in success.values() for c in r.get("content", {}).items()]
        redirect = not success and any(s.startswith("3") for s in operation["responses"])
        if not contents and not redirect:
            silent.append(f"{method} {path}")  # a 2xx must say what it sends (JSON or a media type)
        for media, content in contents:
            if media == "application/json" and not _named(content.get("schema", {})):
                anonymous.append(f"{method} {path}")
    assert anonymous == []
    assert silent == []


def test_every_operation_documents_its_errors_with_their_codes(spec: dict[str, Any]) -> None:
    problems = []
    for method, path, operation in _operations(spec):
        errors = {s: r for s, r in operation["responses"].items() if s[0] in "45"}
        if not errors:
            problems.append(f"{method} {path}: no error response")
        for status, response in errors.items():
            content = response.get("content", {}).get("application/json")
            if content is None:
                if status != "416":  # a range outside the file: an empty answer, by RFC 9110
                    problems.append(f"{method} {path} {status}: no body")
                continue
            if (method, path, status) in OWN_ERROR_ANSWERS:
                continue
            if ERROR_BODY not in _refs(content["schema"]):
                problems.append(f"{method} {path} {status}: not an ErrorBody")
            if not re.search(r"`[a-z_]+`", response["description"]):
                problems.append(f"{method} {path} {status}: names no code")
        takes_input = operation.get("parameters") or "requestBody" in operation
        if takes_input and "validation_failed" not in errors.get("422", {}).get("description", ""):
            problems.append(f"{method} {path}: 422 validation_failed not documented")
        if operation.get("security") and "invalid_key" not in errors.get("401", {}).get("description", ""):
            problems.append(f"{method} {path}: 401 invalid_key not documented")
    assert problems == []


def test_the_shared_errors_are_documented_once_for_every_route(spec: dict[str, Any]) -> None:
    buyer = spec["paths"]["/v1/buyers/{buyer_id}"]["get"]["responses"]
    assert {s: r["description"] for s, r in buyer.items() if s[0] == "4"} == {
        "401": "code: `invalid_key`",
        "403": "code: `secret_key_required`",
        "404": "code: `buyer_not_found`",
        "422": "code: `validation_failed`, `invalid_input`",
    }
    track = spec["paths"]["/v1/track"]["post"]
    assert track["responses"]["401"]["description"] == "code: `invalid_key`"
    assert "403" not in track["responses"]  # a write key may send events
    assert "security" not in spec["paths"]["/healthz"]["get"]
    assert "401" not in spec["paths"]["/v1/files/{artifact_id}/{version}/{fmt}"]["get"]["responses"]
    assert {"HTTPValidationError", "ValidationError"}.isdisjoint(spec["components"]["schemas"])


def test_every_list_is_a_page_with_limit_and_cursor(spec: dict[str, Any]) -> None:
    schemas = spec["components"]["schemas"]
    bare, unpaged = [], []
    for method, path, operation in _operations(spec):
        schema = (
            operation["responses"].get("200", {}).get("content", {}).get("application/json", {}).get("schema")
        )
        if schema is None:
            continue
        if method == "GET" and schema.get("type") == "array":
            bare.append(path)
        ref = schema.get("$ref", "")
        if set(schemas.get(ref.rsplit("/", 1)[-1], {}).get("properties", {})) == {"items", "next_cursor"}:
            names = {p["name"] for p in operation.get("parameters", [])}
            if not {"limit", "cursor"} <= names:
                unpaged.append(path)
            limit = next(p for p in operation["parameters"] if p["name"] == "limit")["schema"]
            assert (limit["minimum"], limit["maximum"]) == (1, 500), path
    assert bare == []
    assert unpaged == []


def test_operation_ids_are_unique_and_refs_resolve(spec: dict[str, Any]) -> None:
    ids = [op["operationId"] for item in spec["paths"].values() for m, op in item.items() if m in METHODS]
    assert len(ids) == len(set(ids))
    assert spec["paths"]["/v1/buyers/{buyer_id}"]["get"]["operationId"] == "get_buyer"
    schemas = spec["components"]["schemas"]
    missing = {r for r in _refs(spec["paths"]) + _refs(schemas) if r.rsplit("/", 1)[-1] not in schemas}
    assert missing == set()


def test_downloads_and_streams_declare_their_media_type(spec: dict[str, Any]) -> None:
    def media(path: str, method: str = "get") -> set[str]:
        return set(spec["paths"][path][method]["responses"]["200"]["content"])

    assert media("/v1/export") == {"application/x-ndjson"}
    assert media("/v1/files/{artifact_id}/{version}/{fmt}") == {
        "application/pdf",
        "text/html; charset=utf-8",
        "text/markdown; charset=utf-8",
    }
    assert media("/v1/quizzes/{quiz_id}/page") == {"text/html"}
    assert media("/v1/quizzes/{quiz_id}/answers", "post") == {"application/json", "text/html"}
    assert next(iter(media("/metrics"))).startswith("text/plain")
