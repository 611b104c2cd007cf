"""Exactly once, and its documented exception: a server killed (SIGKILL) after the SMTP server took a message
but before the outbox recorded it sends that one message again after a restart — once more, with the same
Message-ID — and never a third time."""

from __future__ import annotations

import asyncio
import email
import json
import threading
import time
from collections.abc import Iterator
from email import policy
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from sqlalchemy.engine import Engine
from tests.conftest import LiveServer, bearer
from tests.delivery.email.smtpd import Recorder

from offerloop.core.clock import utcnow
from offerloop.db.engine import make_engine
from offerloop.models import Job, OutboxMessage

pytestmark = pytest.mark.server
DEADLINE_S = 60.0
JOURNEY = """
name: receipt
category: transactional
trigger: {event: Order Completed}
steps:
  - send: {channel: email, subject: "Receipt", text: "Thanks"}
"""


class HoldFirst(Recorder):
    """Takes the first message (stored) and then does not answer its DATA until released."""

    def __init__(self) -> None:
        super().__init__()
        self.took_first = threading.Event()
        self.release = threading.Event()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        reply = await super().handle_DATA(server, session, envelope)
        if not self.took_first.is_set():
            self.took_first.set()
            while not self.release.is_set():  # the client is killed meanwhile
                await asyncio.sleep(0.05)
        return reply


def until(what: str, check: Any) -> Any:
    deadline = time.monotonic() + DEADLINE_S
    while not (found := check()):
        assert time.monotonic() < deadline, f"not within {DEADLINE_S} s: {what}"
        time.sleep(0.05)
    return found


def start_live(recorder: Recorder, tmp_path: Path, engine: Engine, database_url: str, monkeypatch,
                smtp_server) -> LiveServer:  # fmt: skip
    """A started server on a test clock whose e-mail goes to an SMTP server on loopback with ``recorder``."""
    smtp = smtp_server(recorder)
    monkeypatch.setenv("OFFERLOOP_ENVIRONMENT", "test")
    monkeypatch.setenv("OFFERLOOP_TEST_CLOCK_FILE", str(tmp_path / "clock"))
    monkeypatch.setenv("OFFERLOOP_SMTP_URL", f"smtp://127.0.0.1:{smtp.port}")
    url = database_url if engine.dialect.name == "postgresql" else f"sqlite:///{tmp_path / 'live.db'}"
    srv = LiveServer(url, log_path=tmp_path / "server.log")
    srv.start()
    return srv


@pytest.fixture
def crash_server(
    request, tmp_path: Path, engine: Engine, database_url: str, monkeypatch, smtp_server
) -> Iterator[Any]:
    """The server and its SMTP server's recorder (``HoldFirst``, or the class given as indirect parameter)."""
    recorder = getattr(request, "param", HoldFirst)()
    srv = start_live(recorder, tmp_path, engine, database_url, monkeypatch, smtp_server)
    yield srv, recorder
    recorder.release.set()
    srv.stop()


def test_a_kill_between_hand_over_and_record_resends_that_message_once(crash_server, tmp_path) -> None:
    server, recorder = crash_server
    ws = json.loads(server.cli("workspace", "create", "Crash", "--json").stdout)
    store = make_engine(server.database_url)

    def outbox() -> list[tuple[str, int, str]]:
        with store.connect() as conn:
            rows = conn.execute(select(OutboxMessage.status, OutboxMessage.attempts, OutboxMessage.message_id)
                                .where(OutboxMessage.workspace_id == ws["id"]))  # fmt: skip
            return [tuple(r) for r in rows]

    with httpx.Client(base_url=server.url, timeout=30) as http:
        assert (
            http.put(
                "/v1/journeys/receipt", headers=bearer(ws["secret_key"]), json={"yaml": JOURNEY}
            ).status_code
            == 200
        )
        now = utcnow().isoformat()
        for message in (
            {"type": "identify", "userId": "ann", "traits": {"email": "ann@example.com"}, "messageId": "i1"},
            {"type": "track", "userId": "ann", "event": "Order Completed", "messageId": "o1"},
        ):
            assert http.post("/v1/batch", headers=bearer(ws["secret_key"]),
                             json={"batch": [{**message, "timestamp": now}]}).status_code == 200  # fmt: skip
    assert recorder.took_first.wait(DEADLINE_S)
    assert [o[:2] for o in outbox()] == [("sending", 1)]
    server.kill()  # SIGKILL: the SMTP server has the message, the outbox does not know
    server.proc.wait()
    recorder.release.set()

    # Restarted, with the job clock past the send job's lease (120 s): the message goes once more.
    (tmp_path / "clock").write_text("600")
    server.start()
    until("the message is recorded as sent", lambda: [o[:2] for o in outbox()] == [("sent", 2)])
    received = [
        email.message_from_bytes(m.data, policy=policy.default)["Message-ID"] for m in recorder.messages
    ]
    assert received == [outbox()[0][2]] * 2
    # Nothing is left to send it a third time: its job is finished.
    with store.connect() as conn:
        jobs = conn.execute(
            select(Job.state).where(Job.kind == "delivery.send", Job.workspace_id == ws["id"])
        )
        assert [j for (j,) in jobs] == ["done"]
    assert len(recorder.messages) == 2
    store.dispose()
