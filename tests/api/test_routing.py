"""Every route answers for its own paths: none is hidden behind a route matched before it.

The app lists its hottest routers first (a request is matched against the routes in order); that is only
safe while no earlier route takes a request meant for a later one. Each route's path, with every
parameter filled in, must resolve — in the app's matching order — to that route and no other.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Iterator
from pathlib import Path

import pytest
from fastapi import FastAPI
from fastapi.routing import APIRoute
from fastapi.testclient import TestClient
from starlette.routing import BaseRoute, Match

from offerloop.api.app import create_app
from offerloop.config import Settings


def _in_order(routes: Iterable[BaseRoute]) -> Iterator[BaseRoute]:
    """The routes as the app tries them: an included router's routes in its place (FastAPI keeps an
    included router as one entry holding the original router; older versions copy its routes in)."""
    for route in routes:
        inner = getattr(route, "original_router", None)
        if inner is not None:
            yield from _in_order(inner.routes)
        else:
            yield route


def _sample(path: str) -> str:
    return re.sub(r"\{[^}]+\}", "x1", path)


@pytest.fixture(scope="module")
def app(tmp_path_factory: pytest.TempPathFactory) -> FastAPI:
    db = Path(tmp_path_factory.mktemp("routing")) / "r.db"
    return create_app(Settings(database_url=f"sqlite:///{db}"))


def _first_match(routes: list[APIRoute], method: str, path: str) -> APIRoute | None:
    scope = {
        "type": "http",
        "method": method,
        "path": path,
        "root_path": "",
        "headers": [],
        "query_string": b"",
    }
    for route in routes:
        if route.matches(scope)[0] == Match.FULL:
            return route
    return None


def test_every_route_is_reached_by_its_own_path(app: FastAPI) -> None:
    routes = [r for r in _in_order(app.router.routes) if isinstance(r, APIRoute)]
    assert len(routes) > 200  # the whole API, console, portal and storefront are there
    hidden = [
        (method, route.path, found.path if found else None)
        for route in routes
        for method in sorted(route.methods or ())
        if (found := _first_match(routes, method, _sample(route.path))) is not route
    ]
    assert hidden == []


def test_the_hot_api_paths_are_matched_first(app: FastAPI) -> None:
    routes = [r for r in _in_order(app.router.routes) if isinstance(r, APIRoute)]
    position = {(m, r.path): i for i, r in enumerate(routes) for m in r.methods or ()}
    for key in [
        ("POST", "/v1/batch"),
        ("POST", "/v1/decide"),
        ("GET", "/v1/offers"),
        ("GET", "/v1/entitlements/check"),
    ]:
        assert position[key] < 40, key


def test_an_unknown_path_walks_the_routes_once(app: FastAPI, monkeypatch: pytest.MonkeyPatch) -> None:
    """A 404 costs one pass over the routes (Starlette's slash redirect made it two)."""
    tried: list[int] = []
    for route in _in_order(app.router.routes):
        original = route.matches

        def counting(scope: dict, _original=original, _route=route) -> tuple[Match, dict]:  # type: ignore[type-arg]
            tried.append(id(_route))
            return _original(scope)

        monkeypatch.setattr(route, "matches", counting)
    answer = TestClient(app).get("/v1/no-such-thing")  # (no lifespan: the module's app is shared)
    assert answer.status_code == 404
    assert answer.json()["error"]["code"] == "not_found"
    assert len(tried) == len(set(tried)) > 100


def test_a_trailing_slash_is_redirected_on_this_site_only(app: FastAPI) -> None:
    client = TestClient(app)
    page = client.get("/v1/offers/?user_id=u1&limit=2", follow_redirects=False)
    assert (page.status_code, page.headers["location"]) == (307, "/v1/offers?user_id=u1&limit=2")
    assert client.head("/healthz/", follow_redirects=False).headers["location"] == "/healthz"
    elsewhere = client.get("http://testserver//evil.example/", follow_redirects=False)
    assert (elsewhere.status_code, elsewhere.headers["location"]) == (307, "/evil.example")
    assert client.get("/healthz/", follow_redirects=True).json() == {"status": "ok"}
    posted = client.post("/v1/decide/")  # (no body: one would be refused for its missing key first)
    assert (posted.status_code, posted.json()["error"]["code"]) == (404, "not_found")
