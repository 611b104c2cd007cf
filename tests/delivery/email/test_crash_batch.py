# ruff: noqa: F811  (the fixture imported from test_crash is requested by name)
"""The documented bound for a batch: a server killed (SIGKILL) while the SMTP server holds the last of three
messages — the batch it belongs to handed over, not recorded — sends that batch's messages once more after a
restart, each with its own Message-ID, the recorded ones never again, and nothing a third time."""

from __future__ import annotations

import asyncio
import email
import json
import threading
from collections import Counter
from email import policy
from typing import Any

import httpx
import pytest
from sqlalchemy import select
from tests.conftest import bearer
from tests.delivery.email.smtpd import Recorder
from tests.delivery.email.test_crash import DEADLINE_S, JOURNEY, crash_server, until  # noqa: F401 (a fixture)

from offerloop.core.clock import utcnow
from offerloop.db.engine import make_engine
from offerloop.models import Job, OutboxMessage

pytestmark = pytest.mark.server
BUYERS = ("ann", "bob", "cy")


class HoldThird(Recorder):
    """Takes every message (stored); does not answer the third one's DATA until released."""

    def __init__(self) -> None:
        super().__init__()
        self.took_third = threading.Event()
        self.release = threading.Event()

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        reply = await super().handle_DATA(server, session, envelope)
        if len(self.messages) == 3 and not self.took_third.is_set():
            self.took_third.set()
            while not self.release.is_set():  # the client is killed meanwhile
                await asyncio.sleep(0.05)
        return reply


@pytest.mark.parametrize("crash_server", [HoldThird], indirect=True)
def test_a_kill_mid_batch_resends_the_batch_handed_over_once(crash_server, tmp_path, engine) -> None:
    server, recorder = crash_server
    ws = json.loads(server.cli("workspace", "create", "Crash", "--json").stdout)
    store = make_engine(server.database_url)

    def outbox() -> dict[str, tuple[str, int, str]]:
        with store.connect() as conn:
            rows = conn.execute(select(OutboxMessage.recipient, OutboxMessage.status, OutboxMessage.attempts,
                                       OutboxMessage.message_id).where(OutboxMessage.workspace_id == ws["id"]))  # fmt: skip
            return {r[0]: (r[1], r[2], r[3]) for r in rows}

    with httpx.Client(base_url=server.url, timeout=30) as http:
        r = http.put("/v1/journeys/receipt", headers=bearer(ws["secret_key"]), json={"yaml": JOURNEY})
        assert r.status_code == 200
        now = utcnow().isoformat()
        batch = [{"type": "identify", "userId": u, "traits": {"email": f"{u}@example.com"}, "messageId": f"i-{u}",
                  "timestamp": now} for u in BUYERS]  # fmt: skip
        batch += [{"type": "track", "userId": u, "event": "Order Completed", "messageId": f"o-{u}", "timestamp": now}
                  for u in BUYERS]  # fmt: skip
        assert (
            http.post("/v1/batch", headers=bearer(ws["secret_key"]), json={"batch": batch}).status_code == 200
        )
    assert recorder.took_third.wait(DEADLINE_S)
    at_kill = outbox()
    # What the kill leaves: messages handed over and recorded (sent), and the batch handed over but not
    # recorded (sending) — the held third message among them. On SQLite one claim takes all three sends (one
    # batch); on PostgreSQL the server's job threads may split them between concurrent claims.
    pending = {s[2] for s in at_kill.values() if s[0] == "sending"}
    held = email.message_from_bytes(recorder.messages[2].data, policy=policy.default)["Message-ID"]
    assert held in pending
    assert {s[:2] for s in at_kill.values()} <= {("sending", 1), ("sent", 1)}
    if engine.dialect.name == "sqlite":
        assert len(pending) == 3
    server.kill()  # SIGKILL: the SMTP server has the three messages, the outbox does not know of `pending`
    server.proc.wait()
    recorder.release.set()

    (tmp_path / "clock").write_text("600")  # past the send jobs' lease (120 s)
    server.start()
    until("every message is recorded as sent", lambda: {s[0] for s in outbox().values()} == {"sent"})
    final = outbox()
    assert {a: s[1] for a, s in final.items()} == {a: 2 if s[2] in pending else 1 for a, s in at_kill.items()}
    received = Counter(
        email.message_from_bytes(m.data, policy=policy.default)["Message-ID"] for m in recorder.messages
    )
    # Each message of the unrecorded batch once more, with its own Message-ID; the recorded ones never again.
    assert received == {s[2]: 2 if s[2] in pending else 1 for s in at_kill.values()}
    with store.connect() as conn:
        jobs = conn.execute(
            select(Job.state).where(Job.kind == "delivery.send", Job.workspace_id == ws["id"])
        )
        assert [j for (j,) in jobs] == ["done"] * 3
    assert len(recorder.messages) == 3 + len(pending)
    store.dispose()
