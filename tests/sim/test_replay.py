"""Replaying the simulated history through a live API: ``sentAt`` is the real send time (issue 9, item 12).

Ingest corrects each event's time for the client's clock (``receivedAt - (sentAt - timestamp)``). A replay
that kept the simulated send times would land every event on the day it arrives; with ``sent_at=<clock>``
each message's ``sentAt`` is the real send time on its device's (skewed) clock, so the correction puts
the event back at its simulated time and still removes the skew.
"""

from __future__ import annotations

import itertools
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from sqlalchemy import select

from offerloop.db.uow import Database
from offerloop.models.event import Event
from offerloop.sim.audience import Audience
from offerloop.workspaces.schemas import WorkspaceCreated

from .test_audience import clean, parse_ts

KWARGS: dict[str, Any] = {"buyers": 60, "events": 3000, "seed": 5}
SEND = datetime(2026, 12, 4, 15, 0, tzinfo=UTC)


def stepping(start: datetime, step: timedelta) -> Callable[[], datetime]:
    """A send clock that moves ``step`` at every reading (deterministic)."""
    counter = itertools.count()
    return lambda: start + step * next(counter)


def test_the_replay_clock_is_read_once_per_batch_and_keeps_each_devices_skew() -> None:
    audience = Audience(**KWARGS)
    batches = list(audience.batches(100, sent_at=stepping(SEND, timedelta(seconds=1))))
    skews: dict[str, set[timedelta]] = {}
    for i, batch in enumerate(batches):
        sent = SEND + timedelta(seconds=i)
        for msg in batch:
            skew = parse_ts(msg["sentAt"]) - sent
            if "anonymousId" in msg and msg["messageId"] not in audience.malformed_message_ids:
                skews.setdefault(msg["anonymousId"], set()).add(skew)
            else:  # server-side messages (and the malformed ones) come from a correct clock
                assert skew == timedelta(0), msg
    assert all(len(s) == 1 for s in skews.values())  # one device, one clock error, at every send
    assert sum(s != {timedelta(0)} for s in skews.values()) >= 1  # some devices' clocks are off
    # Everything but sentAt is the simulated stream, unchanged.
    plain = [m for b in audience.batches(100) for m in b]
    replayed = [m for b in batches for m in b]
    assert [{**m, "sentAt": None} for m in replayed] == [{**m, "sentAt": None} for m in plain]


def test_a_fixed_clock_gives_a_byte_identical_replay() -> None:
    fixed = Audience(**KWARGS)
    first = [m for b in fixed.batches(77, sent_at=lambda: SEND) for m in b]
    assert list(Audience(**KWARGS).messages(sent_at=lambda: SEND)) == first
    assert [m for b in fixed.batches(77, sent_at=lambda: SEND.replace(tzinfo=None)) for m in b] == first


def test_skew_correction_puts_a_replay_back_at_its_simulated_times() -> None:
    """Corrected with the send time as receivedAt, the replay is in true-time order (the stream's own
    order), inside the simulated window: the device skew is gone and nothing lands on the send day."""
    audience = Audience(**KWARGS)
    msgs = list(audience.messages(sent_at=lambda: SEND))
    corrected = [SEND - (parse_ts(m["sentAt"]) - parse_ts(m["timestamp"])) for _, m in clean(audience, msgs)]
    assert corrected == sorted(corrected)
    assert datetime(2026, 8, 1, tzinfo=UTC) <= corrected[0]
    assert corrected[-1] < datetime(2026, 10, 30, 2, tzinfo=UTC)  # 90 days, a session may run on ~1 h
    raw = [parse_ts(m["timestamp"]) for _, m in clean(audience, msgs)]
    assert raw != sorted(raw)  # the devices' own clocks are off: the correction did something


def test_a_replay_over_http_is_stored_at_its_simulated_times(
    client: Any, write_headers: dict[str, str], db: Database, workspace: WorkspaceCreated
) -> None:
    """The demo's path: batches posted now, sentAt read from the real clock when each batch is sent."""
    audience = Audience(buyers=20, events=600, seed=5)
    sent = 0
    for batch in audience.batches(100, sent_at=lambda: datetime.now(UTC)):
        response = client.post("/v1/batch", json={"batch": batch}, headers=write_headers)
        assert response.status_code == 200, response.text
        sent += response.json()["accepted"]
    with db.read() as session:
        stamps = session.scalars(select(Event.timestamp).where(Event.workspace_id == workspace.id)).all()
    assert len(stamps) == sent > 500
    first, last = min(stamps), max(stamps)
    first = first if first.tzinfo else first.replace(tzinfo=UTC)
    last = last if last.tzinfo else last.replace(tzinfo=UTC)
    assert datetime(2026, 8, 1, tzinfo=UTC) <= first and last < datetime(2026, 10, 30, 2, tzinfo=UTC)
