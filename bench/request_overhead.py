"""What a request costs before and around its endpoint's own work: route matching, the body guard, and the
server's CPU per request for a few endpoints over HTTP (one keep-alive connection, one server process).

    python bench/request_overhead.py
    PYTHONPATH=/path/to/other/src python bench/request_overhead.py     # another version, same figures

In-process figures are the CPU time of a tight loop in one thread (time.thread_time); the HTTP figure is the
server process's user + system CPU divided by the requests, which other load on the machine inflates less.
"""

from __future__ import annotations

import argparse
import http.client
import tempfile
import time
from pathlib import Path

import orjson
from _common import create_workspace, load_average, machine, start_server, tree_cpu_seconds
from starlette.routing import Match

from offerloop.api.app import create_app
from offerloop.api.guards import check_body
from offerloop.config import Settings
from offerloop.sim.audience import Audience

HOT = [
    ("POST", "/v1/batch"),
    ("POST", "/v1/decide"),
    ("GET", "/v1/offers"),
    ("GET", "/v1/entitlements/check"),
    ("GET", "/v1/buyers/lookup"),
    ("GET", "/console/buyers"),
]


def matching_us(app: object, method: str, path: str, rounds: int) -> float:
    """Microseconds to find the route as the app's router does: its entries in order, the first full match."""
    routes = app.router.routes  # type: ignore[attr-defined]
    started = time.thread_time()
    for _ in range(rounds):
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
                break
    return (time.thread_time() - started) / rounds * 1e6


def guard_us(body: bytes, rounds: int) -> float:
    started = time.thread_time()
    for _ in range(rounds):
        check_body(body)
    return (time.thread_time() - started) / rounds * 1e6


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--requests", type=int, default=2000)
    args = parser.parse_args()
    print(f"machine: {machine()}; load average at the start: {load_average()}")
    folder = Path(tempfile.mkdtemp(prefix="overhead-"))
    url = f"sqlite:///{folder / 'o.db'}"
    app = create_app(Settings(database_url=url))
    for method, path in HOT:
        print(f"route matching {method} {path}: {matching_us(app, method, path, 2000):.1f} us")
    decide_body = orjson.dumps(
        {"user_id": "u123", "placement": "home", "k": 5, "candidates": [f"offer-{i:03d}" for i in range(50)]}
    )
    batch_body = orjson.dumps({"batch": next(iter(Audience(buyers=500, events=2_000, seed=11).batches(100)))})
    print(f"body guard, decide's body ({len(decide_body):,} bytes): {guard_us(decide_body, 2000):.1f} us")
    print(
        f"body guard, a batch of 100 events ({len(batch_body):,} bytes): {guard_us(batch_body, 100):.1f} us"
    )

    ws = create_workspace(url, "overhead")
    server = start_server(url)
    try:
        assert server.proc is not None
        conn = http.client.HTTPConnection("127.0.0.1", server.port)
        headers = {"Authorization": f"Bearer {ws['secret_key']}", "Content-Type": "application/json"}
        identify = {
            "type": "identify",
            "userId": "u1",
            "messageId": "m1",
            "traits": {"email": "u1@example.com"},
        }
        conn.request("POST", "/v1/batch", body=orjson.dumps({"batch": [identify]}), headers=headers)
        assert conn.getresponse().read() and True
        cases = [
            ("GET", "/healthz", None),
            ("GET", "/v1/entitlements/check?user_id=u1&component=module", None),
            ("GET", "/v1/buyers/lookup?user_id=u1", None),
            ("POST", "/v1/actions/none", b"{}"),  # no such route: matched against everything
        ]
        for method, path, body in cases:
            for _ in range(100):
                conn.request(method, path, body=body, headers=headers)
                conn.getresponse().read()
            before = tree_cpu_seconds(server.proc.pid)
            for _ in range(args.requests):
                conn.request(method, path, body=body, headers=headers)
                response = conn.getresponse()
                response.read()
            spent = tree_cpu_seconds(server.proc.pid) - before
            print(
                f"server CPU per request, {method} {path} ({response.status}): {spent / args.requests * 1000:.3f} ms"
            )
    finally:
        server.stop()
    print(f"load average at the end: {load_average()}")


if __name__ == "__main__":
    main()
