"""A webhook receiver on loopback, written here and not shared with the code under test: it checks the
`Offerloop-Signature` header with its own HMAC over `t.body` and its own tolerance, and can be told to fail."""

from __future__ import annotations

import hashlib
import hmac
import json
import threading
from dataclasses import dataclass, field
from datetime import datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

TOLERANCE_S = 300  # Stripe's default: five minutes either way


@dataclass
class Received:
    event: dict[str, Any]
    headers: dict[str, str]
    timestamp: int
    signatures: list[str]


@dataclass
class Receiver:
    """Answers 200 to a valid, fresh signature; 400 otherwise. ``fail`` answers ``fail_status`` that many
    times first; ``status`` overrides every answer; ``hang`` blocks the answer until released."""

    secret: str = ""
    clock: datetime | None = None  # the receiver's idea of now (the job clock of the test)
    fail: int = 0
    fail_status: int = 500
    status: int | None = None
    hang: threading.Event | None = None
    received: list[Received] = field(default_factory=list)
    refused: list[str] = field(default_factory=list)
    requests: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def verify(self, header: str, body: bytes) -> tuple[int, list[str]] | str:
        items = [part.split("=", 1) for part in header.split(",") if "=" in part]
        stamps = [v for k, v in items if k == "t"]
        sigs = [v for k, v in items if k == "v1"]
        if len(stamps) != 1 or not stamps[0].isdigit() or not sigs:
            return "malformed signature header"
        t = int(stamps[0])
        expected = hmac.new(self.secret.encode(), f"{t}.".encode() + body, hashlib.sha256).hexdigest()
        if not any(hmac.compare_digest(expected, s) for s in sigs):
            return "no matching signature"
        assert self.clock is not None
        if abs(self.clock.timestamp() - t) > TOLERANCE_S:
            return "timestamp outside the tolerance"
        return t, sigs

    def handle(self, headers: dict[str, str], body: bytes) -> tuple[int, bytes]:
        with self.lock:
            self.requests += 1
            if self.hang is not None:
                hang = self.hang
            else:
                hang = None
        if hang is not None:
            hang.wait(30)
            return 200, b"late"
        with self.lock:
            checked = self.verify(headers.get("offerloop-signature", ""), body)
            if isinstance(checked, str):
                self.refused.append(checked)
                return 400, checked.encode()
            if self.status is not None:
                return self.status, b"status override"
            if self.fail > 0:
                self.fail -= 1
                return self.fail_status, b"x" * 5000  # a long answer: the log keeps a bounded excerpt
            self.received.append(Received(json.loads(body), headers, checked[0], checked[1]))
            return 200, b'{"ok":true}'


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_POST(self) -> None:
        length = int(self.headers.get("content-length", "0"))
        body = self.rfile.read(length)
        status, answer = self.server.receiver.handle({k.lower(): v for k, v in self.headers.items()}, body)
        self.send_response(status)
        if status in (301, 302, 307, 308):
            self.send_header("Location", "http://127.0.0.1:9/elsewhere")
        self.send_header("Content-Length", str(len(answer)))
        self.end_headers()
        self.wfile.write(answer)

    def log_message(self, format: str, *args: Any) -> None:  # quiet
        return


class _Server(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self, receiver: Receiver) -> None:
        super().__init__(("127.0.0.1", 0), _Handler)
        self.receiver = receiver


class Running:
    def __init__(self) -> None:
        self.receiver = Receiver()
        self.server = _Server(self.receiver)
        self.thread = threading.Thread(
            target=self.server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self.thread.start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/hooks"

    def close(self) -> None:
        if self.receiver.hang is not None:
            self.receiver.hang.set()
        self.server.shutdown()
        self.server.server_close()
        self.thread.join(5)
