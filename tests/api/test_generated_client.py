"""A Python client generated from the running server's /openapi.json works: the document stays usable.

openapi-python-client builds the client offline into tmp_path; the calls go to a real `offerloop serve`
on loopback, through the generated functions and models only.
"""

from __future__ import annotations

import importlib
import json
import sys
from collections.abc import Iterator
from pathlib import Path
from types import ModuleType
from typing import Any

import httpx
import pytest
from openapi_python_client import generate
from openapi_python_client.config import Config, ConfigFile, MetaType
from tests.conftest import LiveServer

pytestmark = pytest.mark.server

PACKAGE = "offerloop_client"


@pytest.fixture
def generated(live_server: LiveServer, tmp_path: Path) -> Iterator[ModuleType]:
    document = tmp_path / "openapi.json"
    document.write_bytes(httpx.get(f"{live_server.url}/openapi.json", timeout=30).content)
    config = Config.from_sources(
        ConfigFile(
            package_name_override=PACKAGE,
            post_hooks=[],  # no formatter run over the generated code: nothing outside this process
            # The export's JSON lines: text; e-mails (captured, or a bounce posted), PDFs and the open pixel: bytes.
            content_type_overrides={
                "application/x-ndjson": "text/plain",
                "message/rfc822": "application/octet-stream",
                "application/pdf": "application/octet-stream",
                "image/gif": "application/octet-stream",
            },
        ),
        MetaType.NONE,
        document,
        "utf-8",
        overwrite=True,
        output_path=tmp_path / PACKAGE,
    )
    errors = generate(config=config)
    assert [(e.level, e.header, e.detail) for e in errors] == []
    sys.path.insert(0, str(tmp_path))
    try:
        yield importlib.import_module(PACKAGE)
    finally:
        sys.path.remove(str(tmp_path))
        for name in [m for m in sys.modules if m == PACKAGE or m.startswith(PACKAGE + ".")]:
            del sys.modules[name]


def _api(name: str) -> Any:
    return importlib.import_module(f"{PACKAGE}.api.{name}")


def _models() -> Any:
    return importlib.import_module(f"{PACKAGE}.models")


def test_the_generated_client_ingests_reads_decides_and_pages(
    generated: ModuleType, live_server: LiveServer
) -> None:
    ws = json.loads(live_server.cli("workspace", "create", "Client Creator", "--json").stdout)
    # the generated clients own an httpx client each: closed at the end (an open socket is a ResourceWarning)
    with (
        generated.AuthenticatedClient(base_url=live_server.url, token=ws["write_key"]) as writer,
        generated.AuthenticatedClient(base_url=live_server.url, token=ws["secret_key"]) as admin,
    ):
        _use(writer, admin)


def _use(writer: Any, admin: Any) -> None:
    models = _models()

    # ingest: one good event, then a batch with three refused ones (unknown type) and the good one again
    event = {
        "userId": "gen-1",
        "event": "Lesson Viewed",
        "messageId": "gen-m1",
        "timestamp": "2026-11-01T10:00:00Z",
    }
    sent = _api("tracking.track").sync(client=writer, body=models.TrackBody.from_dict(event))
    assert (type(sent).__name__, sent.accepted, sent.duplicates, sent.quarantined) == (
        "IngestResponse",
        1,
        0,
        0,
    )
    bad = [{"type": "bogus", "userId": "gen-1", "messageId": f"gen-bad-{i}"} for i in range(3)]
    batch = _api("tracking.batch").sync(
        client=writer, body=models.BatchBody.from_dict({"batch": [*bad, {**event, "type": "track"}]})
    )
    assert (batch.accepted, batch.duplicates, batch.quarantined) == (0, 1, 3)
    assert [(e.index, e.message_id, e.code) for e in batch.errors] == [
        (i, f"gen-bad-{i}", "unknown_type") for i in range(3)
    ]

    # read the buyer, its state and its events
    from_lookup = _api("buyers.lookup").sync(client=admin, user_id="gen-1")
    assert (from_lookup.user_id, from_lookup.event_count, from_lookup.deleted) == ("gen-1", 1, False)
    buyer = _api("buyers.get_buyer").sync(client=admin, buyer_id=from_lookup.id)
    assert buyer.id == from_lookup.id and [(i.kind, i.value) for i in buyer.identities] == [
        ("user_id", "gen-1")
    ]
    state = _api("buyers.buyer_state").sync(client=admin, buyer_id=buyer.id)
    assert state.buyer_id == buyer.id and state.persona is None
    events = _api("buyers.buyer_events").sync(client=admin, buyer_id=buyer.id, limit=10)
    assert ([e.message_id for e in events.items], events.next_cursor) == (["gen-m1"], None)
    missing = _api("buyers.get_buyer").sync(client=admin, buyer_id="byr_missing")
    assert (type(missing).__name__, missing.error.code) == ("ErrorBody", "buyer_not_found")

    # decide on a one-action catalog, then read the decision back
    action = {
        "key": "lesson-1",
        "kind": "lesson",
        "title": "Pricing 101",
        "outcome": {"event": "Lesson Completed"},
    }
    stored = _api("decisions.upsert_actions").sync(client=admin, body=[models.ActionIn.from_dict(action)])
    assert [a.key for a in stored] == ["lesson-1"]
    catalog = _api("decisions.list_actions").sync(client=admin, limit=1)
    assert ([a.key for a in catalog.items], catalog.next_cursor) == (["lesson-1"], None)
    request = models.DecideRequest.from_dict({"user_id": "gen-1", "placement": "home", "k": 1})
    decided = _api("decisions.decide").sync(client=admin, body=request)
    assert [i.id for i in decided.items] == ["lesson-1"]
    decision = _api("decisions.get_decision").sync(client=admin, decision_id=decided.decision_id)
    assert (decision.id, decision.buyer_id, decision.placement, decision.chosen) == (
        decided.decision_id,
        buyer.id,
        "home",
        "lesson-1",
    )

    # the quarantine, two at a time: newest first, each refused event once, then the end
    listing = _api("quarantine.list_quarantine")
    first = listing.sync(client=admin, limit=2)
    rest = listing.sync(client=admin, limit=2, cursor=first.next_cursor)
    assert (len(first.items), first.next_cursor is not None, len(rest.items), rest.next_cursor) == (
        2,
        True,
        1,
        None,
    )
    seen = first.items + rest.items
    # ordered by id, newest first (events refused in the same millisecond are in id order)
    assert [q.id for q in seen] == sorted((q.id for q in seen), reverse=True)
    assert sorted(q.message_id for q in seen) == ["gen-bad-0", "gen-bad-1", "gen-bad-2"]
    assert {q.reason_code for q in seen} == {"unknown_type"}
    garbage = listing.sync(client=admin, cursor="not-a-cursor")
    assert (type(garbage).__name__, garbage.error.code) == ("ErrorBody", "invalid_cursor")

    # a write key is refused where a secret key is needed, with the documented code
    refused = _api("buyers.get_buyer").sync(client=writer, buyer_id=buyer.id)
    assert (type(refused).__name__, refused.error.code) == ("ErrorBody", "secret_key_required")
