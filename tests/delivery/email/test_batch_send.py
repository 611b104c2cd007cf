# ruff: noqa: F811  (the fixture imported from test_journey_mail is requested by name)
"""The batch send path against a real SMTP server on loopback: one claim takes a batch of runs and of sends,
a batch's e-mails go over one kept-open connection and are recorded together, and batching keeps every
guarantee — caps, hard-bounce suppression, transient retries — message by message."""

from __future__ import annotations

import email
from datetime import timedelta
from email import policy

from sqlalchemy import event
from tests.delivery.email.test_journey_mail import mail, outbox, signup  # noqa: F401 (mail: a fixture)

from offerloop.core.clock import utcnow
from offerloop.delivery import tasks
from offerloop.delivery.journeys import engine
from offerloop.jobs import runner
from offerloop.pipeline import log as pipeline_log
from offerloop.pipeline import runner as pipeline_runner

TIPS = """
name: tips
trigger: {event: Signed Up}
steps:
  - send: {channel: email, subject: "Tips", text: "Three tips"}
"""


def one_pass(db, settings, kind: str) -> list[tuple[str, str]]:
    """One claim (limit 1) of ``kind``: whatever it ran came with that one claim."""
    ran = runner.run_due(db, owner="t", now=utcnow(), only=(kind,), deps={"settings": settings})
    return [(r.key, r.status) for r in ran]


def events_of(client, secret_headers, user: str) -> list[str]:
    buyer = client.get("/v1/buyers/lookup", headers=secret_headers, params={"user_id": user}).json()
    items = client.get(f"/v1/buyers/{buyer['id']}/events", headers=secret_headers).json()["items"]
    return sorted(e["name"] for e in items if (e["name"] or "").startswith("Message"))


def test_a_batch_goes_over_one_connection_and_is_recorded_in_one_pass(
    client, db, write_headers, secret_headers, mail
) -> None:
    users = [f"u{i:02d}" for i in range(20)]
    for user in users:
        signup(client, write_headers, user)
    runs = one_pass(db, mail["settings"], engine.RUN)
    assert len(runs) == 20 and {s for _, s in runs} == {"done"}  # twenty runs, one claim, one transaction
    statements: list[str] = []
    bind = db.bind

    def count(conn, cursor, statement, *args) -> None:
        statements.append(statement)

    pipeline_log.set_inline(db, False)  # the consumers apply the twenty events after the count
    event.listen(bind, "before_cursor_execute", count)
    try:
        sends = one_pass(db, mail["settings"], engine.SEND)
    finally:
        event.remove(bind, "before_cursor_execute", count)
        pipeline_log.set_inline(db)
    pipeline_runner.drain(db)
    assert len(sends) == 20 and {s for _, s in sends} == {"done"}
    received = mail["server"].recorder.messages
    assert sorted(m.rcpt_tos[0] for m in received) == [f"{u}@example.com" for u in users]
    assert len({m.peer for m in received}) == 1  # one kept-open connection for the whole batch
    rows = outbox(client, secret_headers, limit=100)
    assert sorted((r["status"], r["attempts"]) for r in rows) == [("sent", 1)] * 20
    by_address = {m.rcpt_tos[0]: email.message_from_bytes(m.data, policy=policy.default)["Message-ID"]
                  for m in received}  # fmt: skip
    assert by_address == {r["recipient"]: r["message_id"] for r in rows}
    assert events_of(client, secret_headers, "u07") == ["Message Sent"]
    # The whole pass (claim, gate, SMTP, record, one ingestion of the twenty events, finishing the jobs)
    # costs a few statements per message: the buyer read and the suppression check, the rest once per
    # batch. One message at a time cost about 17 (runs included) plus an ingestion each.
    assert len(statements) <= 2 * 20 + 40, len(statements)  # 70 on SQLite, 71 on PostgreSQL
    tasks.close_mailers()


def test_a_buyer_gets_one_message_per_batch_so_a_cap_counts_the_first(
    client, db, write_headers, secret_headers, mail
) -> None:
    r = client.put("/v1/delivery/settings", headers=secret_headers,
                   json={"send_window": {"start": "00:00", "end": "00:00"}, "caps": {"email": {"max": 1, "per": "1d"}},
                         "overall_cap": None})  # fmt: skip
    assert r.status_code == 200
    assert client.put("/v1/journeys/tips", headers=secret_headers, json={"yaml": TIPS}).status_code == 200
    signup(client, write_headers, "ann")
    assert [s for _, s in one_pass(db, mail["settings"], engine.RUN)] == ["done", "done"]
    # Both of Ann's messages are due together: the batch sends the first and leaves the second for the next
    # pass, which sees the first one sent and applies the cap of one a day.
    assert [s for _, s in one_pass(db, mail["settings"], engine.SEND)] == ["done", "again"]
    assert [s for _, s in one_pass(db, mail["settings"], engine.SEND)] == ["done"]
    rows = sorted(outbox(client, secret_headers), key=lambda r: r["id"])
    assert [(r["journey"], r["status"], r["detail"]) for r in rows] == [
        (rows[0]["journey"], "sent", "250 2.0.0 Message accepted (DATA)"),
        (rows[1]["journey"], "skipped", "frequency cap: 1 email per 86400s"),
    ]
    assert len(mail["server"].recorder.messages) == 1
    assert one_pass(db, mail["settings"], engine.SEND) == []


def test_a_bounce_and_a_transient_refusal_in_a_batch_leave_the_others_sent(
    client, db, write_headers, secret_headers, mail
) -> None:
    recorder = mail["server"].recorder
    recorder.rcpt_replies["bob@example.com"] = "550 5.1.1 no such user"
    recorder.rcpt_replies["cy@example.com"] = "452 4.2.2 mailbox full"
    for user in ("ann", "bob", "cy", "dee"):
        signup(client, write_headers, user)
    assert len(one_pass(db, mail["settings"], engine.RUN)) == 4
    sends = dict(one_pass(db, mail["settings"], engine.SEND))
    by_user = {r["recipient"].split("@")[0]: r for r in outbox(client, secret_headers)}
    assert {u: sends[str(r["id"])] for u, r in by_user.items()} == {
        "ann": "done", "bob": "done", "cy": "retrying", "dee": "done"
    }  # fmt: skip
    assert {u: (r["status"], r["attempts"], r["detail"]) for u, r in by_user.items()} == {
        "ann": ("sent", 1, "250 2.0.0 Message accepted (DATA)"),
        "bob": ("failed", 1, "550 550 5.1.1 no such user (RCPT TO)"),
        "cy": ("queued", 1, "452 452 4.2.2 mailbox full (RCPT TO)"),
        "dee": ("sent", 1, "250 2.0.0 Message accepted (DATA)"),
    }
    [suppressed] = client.get("/v1/delivery/suppressions", headers=secret_headers).json()["items"]
    assert (suppressed["address"], suppressed["scope"]) == ("bob@example.com", "all")
    assert events_of(client, secret_headers, "bob") == ["Message Bounced"]
    assert events_of(client, secret_headers, "cy") == []
    assert sorted(m.rcpt_tos[0] for m in recorder.messages) == ["ann@example.com", "dee@example.com"]
    # The transient one comes back after its backoff, with the same Message-ID, and goes.
    del recorder.rcpt_replies["cy@example.com"]
    later = runner.run_due(db, owner="t", now=utcnow() + timedelta(minutes=5), only=(engine.SEND,),
                           deps={"settings": mail["settings"]})  # fmt: skip
    assert [r.status for r in later] == ["done"]
    [row] = [r for r in outbox(client, secret_headers) if r["recipient"] == "cy@example.com"]
    assert (row["status"], row["attempts"]) == ("sent", 2)
    got = email.message_from_bytes(recorder.messages[-1].data, policy=policy.default)
    assert got["Message-ID"] == row["message_id"]
    assert events_of(client, secret_headers, "cy") == ["Message Sent"]
    tasks.close_mailers()
