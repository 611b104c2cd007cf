"""A hostile HTTP peer on loopback, on raw sockets (no HTTP library to be polite for it): it reads the request,
then answers the way a receiver that wants to hold or flood its caller would.

- ``trickle``: a status line and then one header byte every ``every_s`` seconds, forever (until closed);
- ``trickle_body``: ``200`` with its headers at once, then one body byte every ``every_s`` seconds;
- ``flood``: ``200`` with a ``Content-Length`` of ``flood_bytes`` and that many bytes, as fast as they are read;
- ``redirect``: ``302`` to ``location``;
- ``hold``: nothing until ``release`` is set, then ``201`` (a push service taking its time).

``sent`` counts the bytes it managed to write; ``requests`` the requests it read.
"""

from __future__ import annotations

import socket
import threading

CHUNK = b"x" * 65536


class HostilePeer:
    def __init__(
        self, mode: str, *, every_s: float = 0.05, flood_bytes: int = 50 * 1024 * 1024, location: str = ""
    ) -> None:
        self.mode, self.every_s, self.flood_bytes, self.location = mode, every_s, flood_bytes, location
        self.sent = 0
        self.requests = 0
        self.closed = threading.Event()
        self.release = threading.Event()
        self.lock = threading.Lock()
        self.sock = socket.create_server(("127.0.0.1", 0))
        self.sock.settimeout(0.1)
        self.port = self.sock.getsockname()[1]
        self.url = f"http://127.0.0.1:{self.port}/hook"
        self.thread = threading.Thread(target=self._serve, daemon=True)
        self.thread.start()

    def _serve(self) -> None:
        while not self.closed.is_set():
            try:
                conn, _ = self.sock.accept()
            except TimeoutError:
                continue
            except OSError:
                return
            threading.Thread(target=self._answer, args=(conn,), daemon=True).start()

    def _read_request(self, conn: socket.socket) -> None:
        conn.settimeout(5)
        data = b""
        while b"\r\n\r\n" not in data:
            chunk = conn.recv(65536)
            if not chunk:
                return
            data += chunk
        head, _, body = data.partition(b"\r\n\r\n")
        length = 0
        for line in head.split(b"\r\n")[1:]:
            name, _, value = line.partition(b":")
            if name.strip().lower() == b"content-length":
                length = int(value.strip())
        while len(body) < length:
            chunk = conn.recv(65536)
            if not chunk:
                break
            body += chunk
        with self.lock:
            self.requests += 1

    def _write(self, conn: socket.socket, data: bytes) -> None:
        conn.sendall(data)
        with self.lock:
            self.sent += len(data)

    def _answer(self, conn: socket.socket) -> None:
        try:
            self._read_request(conn)
            if self.mode == "trickle":
                self._write(conn, b"HTTP/1.1 200 OK\r\nX-Slow: ")
                while not self.closed.wait(self.every_s):
                    self._write(conn, b"a")
            elif self.mode == "trickle_body":
                self._write(conn, b"HTTP/1.1 200 OK\r\nContent-Length: 100000\r\n\r\n")
                while not self.closed.wait(self.every_s):
                    self._write(conn, b"a")
            elif self.mode == "flood":
                self._write(conn, b"HTTP/1.1 200 OK\r\nContent-Length: %d\r\n\r\n" % self.flood_bytes)
                left = self.flood_bytes
                while left > 0 and not self.closed.is_set():
                    part = CHUNK[: min(left, len(CHUNK))]
                    self._write(conn, part)
                    left -= len(part)
            elif self.mode == "hold":
                while not (self.release.wait(0.05) or self.closed.is_set()):
                    pass
                self._write(conn, b"HTTP/1.1 201 Created\r\nContent-Length: 0\r\n\r\n")
            elif self.mode == "redirect":
                self._write(
                    conn,
                    b"HTTP/1.1 302 Found\r\nLocation: %s\r\nContent-Length: 0\r\n\r\n"
                    % self.location.encode(),
                )
        except OSError:
            pass  # the caller hung up: what a bounded caller does
        finally:
            conn.close()

    def close(self) -> None:
        self.release.set()
        self.closed.set()
        self.sock.close()
        self.thread.join(5)
