"""The errors every route shares (bad key, body too large, invalid input), documented once for all routes.

Routes document their own domain errors with ``error_responses(...)``; what the middleware and the key
checks answer for any route is added here to each operation of the OpenAPI document, merged with the
route's own codes of the same status, so no route has to repeat them.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Callable, Iterator, Sequence
from typing import Any

from fastapi import APIRouter, FastAPI
from fastapi.dependencies.models import Dependant
from fastapi.openapi.utils import get_openapi
from fastapi.routing import APIRoute

from offerloop.core.errors import ErrorBody
from offerloop.core.pages import InvalidCursor
from offerloop.workspaces.auth import authenticate_key_or_query, authenticate_request_async, require_secret

ERROR_REF = {"$ref": "#/components/schemas/ErrorBody"}
# What a route may answer whatever it does: the key checks (401/403), the body bound (413) and the
# checks on client input (422: request validation, values no column can store, refused by the database).
BAD_KEY = {401: ["invalid_key"]}
SECRET_ONLY = {403: ["secret_key_required"]}
BODY = {413: ["body_too_large"], 400: ["invalid_content_length"]}
INPUT = {422: ["validation_failed", "invalid_input"]}
UNEXPECTED = {500: ["internal_error"]}  # a bug: logged, and the connection stays usable
SECURITY_SCHEMES = {
    "secretKey": {"type": "http", "scheme": "bearer", "description": "A workspace key as a Bearer token"},
    "basicKey": {"type": "http", "scheme": "basic", "description": "A workspace key as the Basic username"},
}
_CODES = re.compile(r"`([^`]+)`")


def _calls(dependant: Dependant) -> Iterator[Callable[..., Any]]:
    for dependency in dependant.dependencies:
        if dependency.call is not None:
            yield dependency.call
        yield from _calls(dependency)


def _auth(route: APIRoute, tracking_paths: frozenset[str]) -> dict[int, list[str]]:
    calls = set(_calls(route.dependant))
    if require_secret in calls:
        return {**BAD_KEY, **SECRET_ONLY}
    if (
        authenticate_request_async in calls
        or authenticate_key_or_query in calls
        or route.path in tracking_paths
    ):
        return dict(BAD_KEY)
    return {}


def _merge(responses: dict[str, Any], status: int, codes: list[str]) -> None:
    existing = responses.get(str(status))
    if existing is None:
        responses[str(status)] = {
            "description": "code: " + ", ".join(f"`{c}`" for c in codes),
            "content": {"application/json": {"schema": ERROR_REF}},
        }
        return
    known = _CODES.findall(existing.get("description", ""))
    added = [c for c in codes if c not in known]
    schema = existing.get("content", {}).get("application/json", {}).get("schema", {})
    if not existing.get("content"):  # documented by a description only: the body is an ErrorBody
        existing["description"] += "; code: " + ", ".join(f"`{c}`" for c in codes)
        existing["content"] = {"application/json": {"schema": ERROR_REF}}
    elif schema.get("$ref", "").endswith("/HTTPValidationError"):  # FastAPI's own 422: never answered
        existing["description"] = "code: " + ", ".join(f"`{c}`" for c in codes)
        existing["content"] = {"application/json": {"schema": ERROR_REF}}
    elif not known:  # a route's own answer (e.g. a replay still refused), or one of the shared errors
        existing["description"] += "; or an error, code: " + ", ".join(f"`{c}`" for c in codes)
        if schema and schema != ERROR_REF:
            existing["content"]["application/json"]["schema"] = {"anyOf": [schema, ERROR_REF]}
    elif added:
        existing["description"] += ", " + ", ".join(f"`{c}`" for c in added)


def install(app: FastAPI, *, routers: Sequence[APIRouter], tracking_paths: frozenset[str]) -> None:
    """Make ``app.openapi()`` document the shared error responses and the key schemes on every operation
    (``routers``: those included in the app, whose routes' dependencies say which key they need)."""
    routes = {
        (route.path_format, method.lower()): route
        for router in routers
        for route in router.routes
        if isinstance(route, APIRoute)
        for method in route.methods or ()
    }
    auth_of = {key: _auth(route, tracking_paths) for key, route in routes.items()}
    # A client generated from the document names its functions after the operation ids: the route's own
    # name where it is unique (`get_buyer`), FastAPI's long path-based id where it is not.
    named = Counter(route.name for route in routes.values() if route.operation_id is None)
    short_ids = {
        key: route.name
        for key, route in routes.items()
        if route.operation_id is None and named[route.name] == 1
    }

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is not None:
            return app.openapi_schema
        doc = get_openapi(
            title=app.title, version=app.version, description=app.description, routes=app.routes
        )
        schemas = doc.setdefault("components", {}).setdefault("schemas", {})
        error_schema = ErrorBody.model_json_schema(ref_template="#/components/schemas/{model}")
        schemas.update(error_schema.pop("$defs", {}))
        schemas["ErrorBody"] = error_schema
        # FastAPI's validation error shapes are never answered: every 422 is an ErrorBody.
        schemas.pop("HTTPValidationError", None)
        schemas.pop("ValidationError", None)
        doc["components"]["securitySchemes"] = SECURITY_SCHEMES
        for path, operations in doc["paths"].items():
            for method, operation in operations.items():
                auth = auth_of.get((path, method), {})
                operation["operationId"] = short_ids.get((path, method), operation["operationId"])
                responses = operation.setdefault("responses", {})
                for status, response in responses.items():
                    # an error is JSON even where the route answers HTML (a route's own media type is
                    # what FastAPI puts its error models under)
                    if (
                        status[0] in "45"
                        and ERROR_REF in response.get("content", {}).get("text/html", {}).values()
                    ):
                        response["content"] = {"application/json": {"schema": ERROR_REF}}
                shared: dict[int, list[str]] = {**auth, **UNEXPECTED}
                if "requestBody" in operation and path not in tracking_paths:  # tracking bounds its own
                    shared.update(BODY)
                if operation.get("parameters") or "requestBody" in operation:
                    shared.update(INPUT)
                if any(p["name"] == "cursor" for p in operation.get("parameters", [])):
                    shared[422] = [*INPUT[422], InvalidCursor.code]
                for status, codes in sorted(shared.items()):
                    _merge(responses, status, codes)
                operation["responses"] = dict(sorted(responses.items()))
                if auth:
                    operation["security"] = [{"secretKey": []}, {"basicKey": []}]
        app.openapi_schema = doc
        return doc

    app.openapi = openapi  # type: ignore[method-assign]
