"""Browser tests of the buyer portal: Debian's headless Chromium driven by Playwright against a real
`offerloop serve`, with a real SMTP server (aiosmtpd) on loopback receiving the sign-in e-mail. The browser,
the screenshots and the skip without Chromium are the console's (tests/console/e2e/conftest.py)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import Engine
from tests.checkout.log import new_workspaces_forget_their_work
from tests.conftest import LiveServer
from tests.console.e2e.conftest import browser, page, shots  # noqa: F401  (fixtures, and the skip)
from tests.delivery.email.smtpd import Controller, Recorder, Server, free_port


@pytest.fixture
def smtp_sink() -> Iterator[Server]:
    recorder, port = Recorder(), free_port()
    controller = Controller(recorder, hostname="127.0.0.1", port=port)
    controller.start()
    server = Server(recorder, port, controller)
    yield server
    server.stop()


@pytest.fixture
def live_server(
    tmp_path: Path, engine: Engine, database_url: str, monkeypatch: pytest.MonkeyPatch, smtp_sink: Server
) -> Iterator[LiveServer]:
    """The server mails through the SMTP sink; its links point at itself. No job threads: the test runs the
    due work (fulfilment, renders, sending) with `offerloop worker --once`, never a wait."""
    url = database_url if engine.dialect.name == "postgresql" else f"sqlite:///{tmp_path / 'live.db'}"
    server = LiveServer(url, log_path=tmp_path / "server.log")
    monkeypatch.setenv("OFFERLOOP_WORKER_THREADS", "0")
    monkeypatch.setenv("OFFERLOOP_SMTP_URL", f"smtp://127.0.0.1:{smtp_sink.port}")
    monkeypatch.setenv("OFFERLOOP_PUBLIC_URL", server.url)
    with new_workspaces_forget_their_work(engine):
        server.start()
        yield server
        server.stop()
