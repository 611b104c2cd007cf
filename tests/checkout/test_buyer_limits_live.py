"""Per-buyer limits under 20 concurrent HTTP checkouts of one existing buyer, against `offerloop serve` on
loopback (SQLite, or PostgreSQL with OFFERLOOP_TEST_DATABASE_URL): a limit-1 drop sells one unit, a
once-per-buyer coupon is used once, the ledger balances. Issue 8, items 4 and 7."""

from __future__ import annotations

import json
import threading
from collections import Counter
from pathlib import Path

import httpx
import pytest
from tests.conftest import LiveServer, basic, bearer

pytestmark = pytest.mark.server

CATALOG = (Path(__file__).resolve().parents[2] / "examples" / "demo" / "offers.yaml").read_text()
ATTEMPTS = 20


def _concurrently(server: LiveServer, headers: dict[str, str], body: dict) -> Counter[str]:
    """ATTEMPTS checkouts released at once from as many threads, each on its own connection."""
    barrier = threading.Barrier(ATTEMPTS)
    outcomes: list[str] = []
    lock = threading.Lock()

    def one() -> None:
        with httpx.Client(base_url=server.url, headers=headers, timeout=60) as http:
            barrier.wait()
            r = http.post("/v1/checkout", json=body)
        outcome = "created" if r.status_code == 201 else f"{r.status_code} {r.json()['error']['code']}"
        with lock:
            outcomes.append(outcome)

    threads = [threading.Thread(target=one) for _ in range(ATTEMPTS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return Counter(outcomes)


def test_per_buyer_limits_hold_under_concurrent_checkouts(live_server: LiveServer) -> None:
    ws = json.loads(live_server.cli("workspace", "create", "Limits", "--json").stdout)
    secret = bearer(ws["secret_key"])
    catalog = CATALOG.replace("per_buyer_limit: 2", "per_buyer_limit: 1")
    with httpx.Client(base_url=live_server.url, headers=secret, timeout=30) as http:
        assert http.put("/v1/offers/catalog", json={"text": catalog}).status_code == 200
        assert http.post("/v1/offers/drop-limited-print/signoff").status_code == 200
        ident = {"userId": "ada", "messageId": "ada-1", "traits": {"email": "ada@example.com"}}
        r = http.post("/v1/identify", json=ident, headers=basic(ws["write_key"]))
        assert r.status_code == 200, r.text

    drops = _concurrently(live_server, secret, {"user_id": "ada", "offer": "drop-limited-print"})
    assert drops == Counter({"created": 1, "409 per_buyer_limit": ATTEMPTS - 1}), drops

    coupons = _concurrently(
        live_server, secret, {"user_id": "ada", "offer": "pricing-playbook", "coupon": "LAUNCH20"}
    )
    assert coupons == Counter({"created": 1, "422 coupon_already_used": ATTEMPTS - 1}), coupons

    with httpx.Client(base_url=live_server.url, headers=secret, timeout=30) as http:
        stock = next(
            o["stock"] for o in http.get("/v1/offers/catalog").json() if o["key"] == "drop-limited-print"
        )
        assert (stock["sold"], stock["held"]) == (0, 1)
        assert http.get("/v1/ledger/check").json() == {"balanced": True, "unbalanced_orders": []}
