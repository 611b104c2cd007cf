"""Against a real `offerloop serve`: every route's body is bounded before it is read, an unauthenticated
body is refused before it is read, the server's memory stays flat under a 200 MB POST, and a refused
request leaves the keep-alive connection usable."""

from __future__ import annotations

import http.client
import json
import socket
from urllib.parse import urlsplit

import psutil
import pytest
from tests.conftest import LiveServer, bearer

from offerloop.api.guards import DEFAULT_BODY_LIMIT

pytestmark = pytest.mark.server

MiB = 1024 * 1024
CHUNK = b"{" + b" " * (MiB - 1)  # starts like JSON, so a server that buffered it would try to parse it


def _connection(server: LiveServer) -> http.client.HTTPConnection:
    parts = urlsplit(server.url)
    return http.client.HTTPConnection(parts.hostname, parts.port, timeout=60)


def _rss_mib(server: LiveServer) -> float:
    assert server.proc is not None
    return psutil.Process(server.proc.pid).memory_info().rss / MiB


def _post_huge(server: LiveServer, path: str, total: int, *, chunked: bool) -> tuple[int, dict]:
    """POST `total` bytes the way a client streams them; the answer, however early the server gave it."""
    conn = _connection(server)
    conn.putrequest("POST", path)
    conn.putheader("Content-Type", "application/json")
    if chunked:
        conn.putheader("Transfer-Encoding", "chunked")
    else:
        conn.putheader("Content-Length", str(total))
    conn.endheaders()
    try:
        for _ in range(total // MiB):
            conn.send(b"%x\r\n%s\r\n" % (len(CHUNK), CHUNK) if chunked else CHUNK)
        if chunked:
            conn.send(b"0\r\n\r\n")
    except (BrokenPipeError, ConnectionResetError):
        pass  # the server answered and closed before the whole body was sent: what we want to see
    response = conn.getresponse()
    body = json.loads(response.read())
    conn.close()
    return response.status, body


@pytest.mark.parametrize("chunked", [False, True])
def test_200_mb_unauthenticated_post_is_refused_and_memory_stays_flat(
    live_server: LiveServer, chunked
) -> None:
    before = _rss_mib(live_server)
    for path in ("/v1/webhooks/stripe", "/v1/actions", "/v1/checkout"):
        status, body = _post_huge(live_server, path, 200 * MiB, chunked=chunked)
        if path == "/v1/webhooks/stripe" or not chunked:
            assert (status, body["error"]["code"]) == (413, "body_too_large"), path
            assert body["error"]["details"] == {"limit": DEFAULT_BODY_LIMIT}
        else:  # no key: refused before a byte of the body is read
            assert (status, body["error"]["code"]) == (401, "invalid_key"), path
    assert _rss_mib(live_server) - before < 40
    assert live_server.peak_rss_mib() < before + 60


@pytest.mark.parametrize("route", ["PUT /v1/actions", "POST /v1/batch", "POST /v1/checkout"])
def test_unauthenticated_body_is_refused_before_it_is_read(live_server: LiveServer, route) -> None:
    # Headers announce 400 KB (under every limit) and no byte of it is ever sent: only a server that
    # answers without reading the body can reply.
    for headers in ({}, bearer("sk_not_a_key")):
        with socket.create_connection(
            (urlsplit(live_server.url).hostname, live_server.port), timeout=10
        ) as sock:
            extra = "".join(f"{k}: {v}\r\n" for k, v in headers.items())
            sock.sendall(f"{route} HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                         f"Content-Length: {400 * 1024}\r\n{extra}\r\n".encode())  # fmt: skip
            reply = _read_reply(sock)
        assert reply.startswith("HTTP/1.1 401"), reply
        assert json.loads(reply.split("\r\n\r\n", 1)[1])["error"]["code"] == "invalid_key"


def _read_reply(sock: socket.socket) -> str:
    """One whole HTTP response (head and a Content-Length body) from a raw socket."""
    data = b""
    while b"\r\n\r\n" not in data:
        data += sock.recv(65536)
    head, body = data.split(b"\r\n\r\n", 1)
    length = next(
        int(line.split(b":")[1]) for line in head.split(b"\r\n") if line.lower().startswith(b"content-length")
    )
    while len(body) < length:
        body += sock.recv(65536)
    return (head + b"\r\n\r\n" + body).decode()


def test_a_refused_request_leaves_the_keep_alive_connection_usable(live_server: LiveServer) -> None:
    ws = json.loads(live_server.cli("workspace", "create", "Keepalive", "--json").stdout)
    auth = bearer(ws["secret_key"])
    conn = _connection(live_server)
    refusals = [
        ("PUT", "/v1/actions", b'[{"key": "a", "priority": 9223372036854775808}]', 422),  # 64-bit guard
        ("PUT", "/v1/personas/templates", b"[]", 422),  # was a 500
        ("GET", "/v1/offers?k=-5", None, 422),  # was a 500
        ("PUT", "/v1/actions", b"[" + b" " * DEFAULT_BODY_LIMIT + b"]", 413),  # over the limit, fully sent
    ]
    conn.request("GET", "/healthz")
    assert conn.getresponse().read() == b'{"status":"ok"}'
    sock = conn.sock
    for method, path, body, status in refusals:
        conn.request(method, path, body=body, headers={**auth, "Content-Type": "application/json"})
        response = conn.getresponse()
        response.read()
        assert response.status == status, (path, status)
        conn.request("GET", "/v1/actions", headers=auth)
        after = conn.getresponse()
        assert (after.status, json.loads(after.read())) == (200, {"items": [], "next_cursor": None})
        assert conn.sock is sock, f"the connection was reset after {method} {path}"
    conn.close()
