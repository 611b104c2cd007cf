"""The CDNOW sample imported as orders (the `offerloop import orders` path) reproduces the published fit."""

from __future__ import annotations

from pathlib import Path

import pytest

from offerloop.core.clock import utcnow
from offerloop.events import service as event_service
from offerloop.events.imports import iter_rows

CDNOW = Path(__file__).resolve().parents[1] / "data" / "cdnow" / "CDNOW_sample.txt"


def _orders_csv() -> str:
    lines = ["order_id,user_id,amount,currency,created_at"]
    for n, line in enumerate(CDNOW.read_text().splitlines()):
        _, customer, ymd, _, amount = line.split()
        lines.append(f"cdnow-{n},c{int(customer)},{amount},USD,{ymd[:4]}-{ymd[4:6]}-{ymd[6:]} 12:00")
    return "\n".join(lines) + "\n"


def test_cdnow_orders_imported_reproduce_the_published_parameters(
    client, secret_headers, db, workspace
) -> None:
    results = list(
        iter_rows("orders", _orders_csv(), source="cdnow.csv", workspace_salt=workspace.id, revision="1")
    )
    assert all(r.message is not None for r in results) and len(results) == 6919
    messages = [r.message for r in results if r.message is not None]
    for i in range(0, len(messages), 1000):
        prepared = event_service.prepare_batch(messages[i : i + 1000], received_at=utcnow(), max_event_bytes=32_768,
                                               origin="creator")  # fmt: skip
        with db.write() as session:
            event_service.ingest(session=session, workspace_id=workspace.id, batch=prepared)
    r = client.get("/v1/analytics/ltv", headers=secret_headers,
                   params={"calibration_end": "1997-09-30", "observation_end": "1998-06-30", "time_unit": "week"})  # fmt: skip
    assert r.status_code == 200, r.text
    body = r.json()
    assert (body["buyers"], body["repeat_buyers"], body["currency"]) == (2357, 946, "USD")
    bg = body["bgnbd"]
    assert [round(bg[k], 3) for k in ("r", "alpha", "a", "b")] == [0.243, 4.414, 0.793, 2.426]
    assert round(bg["log_likelihood"], 1) == -9582.4
    gg = body["gamma_gamma"]  # in cents: v is the published gamma (15.44 dollars) times 100
    assert (round(gg["p"], 3), round(gg["q"], 3), round(gg["v"] / 100, 2)) == (6.250, 3.744, 15.44)
    assert [b["buyers"] for b in body["holdout"]] == [1411, 439, 214, 100, 62, 38, 29, 64]
    assert body["holdout"][0]["actual"] == pytest.approx(334 / 1411)
    assert body["warnings"] == []
