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


FIRST3 = """
  - code: FIRST3
    amount_off: {USD: 500}
    applies_to: [pricing-playbook]
    max_redemptions: 3
"""


def _concurrently(
    server: LiveServer, headers: dict[str, str], body: dict, *, many: bool = False
) -> Counter[str]:
    """ATTEMPTS checkouts released at once from as many threads, each on its own connection (``many``: each
    by another buyer)."""
    barrier = threading.Barrier(ATTEMPTS)
    outcomes: list[str] = []
    lock = threading.Lock()

    def one(i: int) -> None:
        with httpx.Client(base_url=server.url, headers=headers, timeout=60) as http:
            barrier.wait()
            r = http.post("/v1/checkout", json={**body, "user_id": f"buyer-{i}"} if many else body)
        outcome = "created" if r.status_code == 201 else f"{r.status_code} {r.json()['error']['code']}"
        with lock:
            outcomes.append(outcome)

    threads = [threading.Thread(target=one, args=(i,)) for i in range(ATTEMPTS)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return Counter(outcomes)


def test_per_buyer_limits_hold_under_concurrent_checkouts(live_server: LiveServer) -> None:
    ws = json.loads(live_server.cli("workspace", "create", "Limits", "--json").stdout)
    secret = bearer(ws["secret_key"])
    catalog = CATALOG.replace("per_buyer_limit: 2", "per_buyer_limit: 1") + FIRST3
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

    # a coupon limited to 3 uses, 20 buyers at once: 3 get it (pending checkouts hold their use)
    first3 = _concurrently(live_server, secret, {"offer": "pricing-playbook", "coupon": "FIRST3"}, many=True)
    assert first3 == Counter({"created": 3, "422 coupon_exhausted": ATTEMPTS - 3}), first3

    with httpx.Client(base_url=live_server.url, headers=secret, timeout=30) as http:
        stock = next(
            o["stock"]
            for o in http.get("/v1/offers/catalog", params={"limit": 500}).json()["items"]
            if o["key"] == "drop-limited-print"
        )
        assert (stock["sold"], stock["held"]) == (0, 1)
        assert http.get("/v1/ledger/check").json() == {"balanced": True, "unbalanced_orders": []}
