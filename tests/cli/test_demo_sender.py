"""The demo's sender: the stream rendered first, stamped and encoded as each batch goes out."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import httpx
import orjson
import pytest
from tests.conftest import LiveServer, bearer

from offerloop.cli.demo import _send, _wait_processed
from offerloop.sim.audience import Audience, stamp_sent


def test_stamping_rendered_batches_gives_the_stream_batches_gives() -> None:
    clock = datetime(2026, 12, 5, 1, 2, 3, 456000, tzinfo=UTC)
    streamed = [
        orjson.dumps(b) for b in Audience(buyers=50, events=1234, seed=5).batches(100, sent_at=lambda: clock)
    ]
    rendered = list(Audience(buyers=50, events=1234, seed=5).unsent_batches(100))
    assert [len(c) for c in rendered] == [100] * 12 + [34]
    assert [orjson.dumps(stamp_sent(c, clock)) for c in rendered] == streamed


@pytest.fixture
def demo_server(tmp_path: Path) -> Iterator[LiveServer]:
    """The demo's own backend (a SQLite file), so its 3,000 events stay out of the suite's database."""
    server = LiveServer(f"sqlite:///{tmp_path / 'demo.db'}", log_path=tmp_path / "server.log")
    server.start()
    yield server
    server.stop()


@pytest.mark.server
def test_demo_sender_delivers_every_event_over_two_connections(demo_server: LiveServer) -> None:
    live_server = demo_server
    ws = json.loads(live_server.cli("workspace", "create", "Demo sender", "--json").stdout)
    audience = Audience(buyers=100, events=3000, seed=9)
    stats = audience.stats()
    totals = _send(live_server.url, ws["write_key"], list(audience.unsent_batches(100)), stats.events)
    assert totals["accepted"] + totals["duplicates"] + totals["quarantined"] == 3000
    assert totals["duplicates"] == stats.duplicates
    assert totals["quarantined"] == stats.malformed
    # The server acknowledges on append; its consumer threads process the log after: wait for lag 0.
    waited = _wait_processed(live_server.url)
    assert waited is not None and waited >= 0
    overview = httpx.get(f"{live_server.url}/v1/overview", headers=bearer(ws["secret_key"])).json()
    assert overview["events"] == totals["accepted"]
    # Every identified buyer of the audience was resolved by the identity stage, once.
    assert overview["identified"] == stats.identified
