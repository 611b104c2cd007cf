"""Per-buyer limits and lists follow identity merges: a buyer merged from two records is one person, who gets a
drop's per-buyer limit and a once-per-buyer coupon once — not once per record — and whose invoices include the
merged record's. Undoing the merge gives each record its own count back. Over the HTTP API."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient
from tests.checkout.test_checkout_flow import CATALOG, pay
from tests.conftest import msg

DROP = "drop-limited-print"  # per_buyer_limit: 2


@pytest.fixture
def two_records(client: TestClient, secret_headers, write_headers) -> dict[str, Any]:
    """Gia bought as a guest (e-mail only) and, separately, as her account "gia" (no e-mail yet)."""
    assert client.put("/v1/offers/catalog", headers=secret_headers, json={"text": CATALOG}).status_code == 200
    assert client.post(f"/v1/offers/{DROP}/signoff", headers=secret_headers).status_code == 200
    ident = client.post("/v1/identify", headers=write_headers, json=msg(userId="gia", messageId="gia-1"))
    assert ident.status_code == 200
    guest_order = _checkout(client, secret_headers, {"email": "gia@example.com"}, DROP)
    account_order = _checkout(client, secret_headers, {"user_id": "gia"}, DROP)
    guest, account = guest_order.json()["buyer_id"], account_order.json()["buyer_id"]
    assert guest != account
    coupon = _checkout(
        client, secret_headers, {"email": "gia@example.com"}, "pricing-playbook", coupon="LAUNCH20"
    )
    assert coupon.status_code == 201, coupon.text
    for order in (guest_order, account_order, coupon):
        pay(client, secret_headers, order.json()["id"])
    return {"guest": guest, "account": account, "guest_orders": [guest_order.json()["id"], coupon.json()["id"]],
            "account_order": account_order.json()["id"]}  # fmt: skip


def _checkout(client: TestClient, secret: dict[str, str], who: dict[str, str], offer: str, **extra: str):
    r = client.post("/v1/checkout", headers=secret, json={**who, "offer": offer, **extra})
    assert r.status_code in (201, 409, 422), r.text
    return r


def _merge(client: TestClient, secret_headers, write_headers, records: dict[str, Any]) -> str:
    r = client.post("/v1/identify", headers=write_headers,
                    json=msg(userId="gia", traits={"email": "gia@example.com"}, messageId="gia-2"))  # fmt: skip
    assert r.status_code == 200
    (merge,) = client.get("/v1/merges", headers=secret_headers).json()["items"]
    assert (merge["winner_id"], merge["loser_id"]) == (records["account"], records["guest"])
    return str(merge["id"])


def test_a_merged_buyer_gets_a_drops_per_buyer_limit_once(
    client: TestClient, secret_headers, write_headers, two_records
) -> None:
    merge = _merge(client, secret_headers, write_headers, two_records)
    # merged: one unit as the guest + one as the account = the limit of 2
    for who in (
        {"user_id": "gia"},
        {"email": "gia@example.com"},
        {"user_id": "gia", "anonymous_id": "never-seen"},
    ):
        refused = _checkout(client, secret_headers, who, DROP)
        assert refused.status_code == 409 and refused.json()["error"]["code"] == "per_buyer_limit", who
    # a stranger is not limited by Gia's units
    assert _checkout(client, secret_headers, {"user_id": "hal"}, DROP).status_code == 201
    # undone: the account's own count is 1 again, so one more unit is allowed, and then no more
    assert client.post(f"/v1/merges/{merge}/undo", headers=secret_headers).status_code == 200
    assert _checkout(client, secret_headers, {"user_id": "gia"}, DROP).status_code == 201
    again = _checkout(client, secret_headers, {"user_id": "gia"}, DROP)
    assert again.status_code == 409 and again.json()["error"]["code"] == "per_buyer_limit"


def test_a_merged_buyer_uses_a_once_per_buyer_coupon_once(
    client: TestClient, secret_headers, write_headers, two_records
) -> None:
    merge = _merge(client, secret_headers, write_headers, two_records)
    refused = _checkout(client, secret_headers, {"user_id": "gia"}, "launch-workbook", coupon="LAUNCH20")
    assert refused.status_code == 422 and refused.json()["error"]["code"] == "coupon_already_used"
    assert (
        _checkout(client, secret_headers, {"user_id": "gia"}, "launch-workbook").status_code == 201
    )  # no coupon
    assert client.post(f"/v1/merges/{merge}/undo", headers=secret_headers).status_code == 200
    ok = _checkout(client, secret_headers, {"user_id": "gia"}, "launch-workbook", coupon="LAUNCH20")
    assert ok.status_code == 201 and ok.json()["coupon"] == "LAUNCH20"


def test_a_merged_buyers_invoices_include_the_merged_records(
    client: TestClient, secret_headers, write_headers, two_records
) -> None:
    def invoiced(buyer_id: str) -> list[str]:
        r = client.get("/v1/invoices", headers=secret_headers, params={"buyer_id": buyer_id})
        assert r.status_code == 200, r.text
        return sorted(i["order_id"] for i in r.json()["items"])

    guest, account = two_records["guest"], two_records["account"]
    assert invoiced(guest) == sorted(two_records["guest_orders"])
    assert invoiced(account) == [two_records["account_order"]]
    merge = _merge(client, secret_headers, write_headers, two_records)
    everything = sorted([*two_records["guest_orders"], two_records["account_order"]])
    assert invoiced(account) == everything
    assert invoiced(guest) == everything  # the merged-away id answers with its survivor's
    assert invoiced("byr_unknown") == []
    assert client.post(f"/v1/merges/{merge}/undo", headers=secret_headers).status_code == 200
    assert invoiced(guest) == sorted(two_records["guest_orders"])
    assert invoiced(account) == [two_records["account_order"]]
