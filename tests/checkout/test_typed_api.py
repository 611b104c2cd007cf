"""The commerce API as a generated client sees it: every route's named response schema and documented errors,
one way to page through a list (newest first, no repeats or skips while rows are added, a foreign or garbage
cursor refused as 422 ``invalid_cursor``), and hostile input answered with a 4xx, never a 500."""

from __future__ import annotations

import base64

import pytest
from tests.checkout.test_checkout_flow import buy, pay, setup
from tests.conftest import bearer

from offerloop.api import create_app
from offerloop.checkout import service as checkout_service

COMMERCE = ("/v1/checkout", "/v1/orders", "/v1/subscriptions", "/v1/ledger", "/v1/revenue", "/v1/entitlements",
            "/v1/buyers/{buyer_id}/entitlements", "/v1/webhooks/stripe")  # fmt: skip


def _commerce_operations(settings) -> list[tuple[str, str, dict]]:
    spec = create_app(settings).openapi()
    return [
        (method.upper(), path, op)
        for path, ops in spec["paths"].items()
        if path.startswith(COMMERCE)
        for method, op in ops.items()
    ]


def test_every_commerce_route_names_its_response_schema_and_documents_its_errors(settings) -> None:
    operations = _commerce_operations(settings)
    assert len(operations) == 25
    for method, path, op in operations:
        ok = {s: r for s, r in op["responses"].items() if s.startswith("2")}
        assert ok, (method, path)
        for response in ok.values():
            content = response["content"]
            if path.endswith(".csv"):
                assert set(content) == {"text/csv"}, (method, path)
                continue
            assert set(content) == {"application/json"}, (method, path)
            assert content["application/json"]["schema"]["$ref"].startswith("#/components/schemas/"), (
                method,
                path,
            )
        errors = {s for s in op["responses"] if s[0] in "45"}
        assert ("422" in errors) is (path != "/v1/webhooks/stripe"), (method, path)  # a webhook is 400 or 409
        if "{" in path:  # every id-taking route says how a missing id answers
            assert "404" in errors, (method, path)
        for status in errors:
            described = op["responses"][status]
            assert described["content"]["application/json"]["schema"] == {
                "$ref": "#/components/schemas/ErrorBody"
            }
            assert described["description"].startswith("code: `"), (method, path, status)


def test_list_schemas_are_pages(settings) -> None:
    pages = {
        (method, path): op["responses"]["200"]["content"]["application/json"]["schema"]["$ref"].rsplit(
            "/", 1
        )[1]
        for method, path, op in _commerce_operations(settings)
        if method == "GET" and {"limit", "cursor"} <= {p["name"] for p in op.get("parameters", [])}
    }
    assert pages == {
        ("GET", "/v1/orders"): "Page_OrderRead_",
        ("GET", "/v1/orders/{order_id}/payments"): "Page_PaymentEventRead_",
        ("GET", "/v1/subscriptions"): "Page_SubscriptionRead_",
        ("GET", "/v1/buyers/{buyer_id}/entitlements"): "Page_EntitlementRead_",
        ("GET", "/v1/ledger/entries"): "Page_EntryRead_",
        ("GET", "/v1/revenue"): "Page_RevenueRow_",
    }


# -- pages ---------------------------------------------------------------------------------------------


def _all_pages(client, headers, url: str, limit: int, between=None, **params) -> list[list[dict]]:
    pages, cursor = [], None
    while True:
        r = client.get(
            url, headers=headers, params={**params, "limit": limit, **({"cursor": cursor} if cursor else {})}
        )
        assert r.status_code == 200, r.text
        body = r.json()
        pages.append(body["items"])
        cursor = body["next_cursor"]
        if cursor is None:
            return pages
        if between is not None:
            between(len(pages))


def test_orders_page_newest_first_and_rows_added_meanwhile_neither_repeat_nor_skip(
    client, db, secret_headers, write_headers
) -> None:
    setup(client, secret_headers, write_headers)
    first = [buy(client, secret_headers, "pricing-playbook", user=f"u{i}")["id"] for i in range(5)]
    added: list[str] = []

    def buy_more(page: int) -> None:
        added.extend(
            buy(client, secret_headers, "launch-workbook", user=f"late{page}-{i}")["id"] for i in range(2)
        )

    pages = _all_pages(client, secret_headers, "/v1/orders", 2, between=buy_more)
    assert [len(p) for p in pages] == [2, 2, 1]
    assert [o["id"] for p in pages for o in p] == sorted(first, reverse=True)
    assert len(added) == 4
    # the rows added meanwhile are on a fresh first page, newest first
    fresh = client.get("/v1/orders", headers=secret_headers, params={"limit": 4}).json()
    assert [o["id"] for o in fresh["items"]] == sorted(added, reverse=True)


def test_orders_filter_by_status_and_buyer(client, db, secret_headers, write_headers) -> None:
    setup(client, secret_headers, write_headers)
    a = buy(client, secret_headers, "pricing-playbook", user="ann")
    b = buy(client, secret_headers, "launch-workbook", user="bob")
    c = buy(client, secret_headers, "launch-workbook", user="ann")
    pay(client, secret_headers, a["id"])

    def ids(**params) -> list[str]:
        r = client.get("/v1/orders", headers=secret_headers, params=params)
        assert r.status_code == 200, r.text
        return [o["id"] for o in r.json()["items"]]

    assert ids(status="paid") == [a["id"]]
    assert ids(status="pending") == [c["id"], b["id"]]
    assert ids(buyer_id=a["buyer_id"]) == [c["id"], a["id"]]
    assert ids(buyer_id=a["buyer_id"], status="pending") == [c["id"]]
    assert ids(buyer_id="byr_nobody") == []
    r = client.get("/v1/orders", headers=secret_headers, params={"status": "shipped"})
    assert (r.status_code, r.json()["error"]["code"]) == (422, "validation_failed")


def test_subscriptions_ledger_entries_revenue_and_entitlements_page_the_same_way(
    client, db, secret_headers, write_headers
) -> None:
    setup(client, secret_headers, write_headers)
    subs = []
    for i, plan in enumerate(["membership-annual", "membership-monthly", "membership-annual"]):
        order = buy(client, secret_headers, plan, user=f"m{i}")
        pay(client, secret_headers, order["id"])
        (sub,) = client.get("/v1/subscriptions", headers=secret_headers,
                            params={"buyer_id": order["buyer_id"]}).json()["items"]  # fmt: skip
        assert (sub["order_id"], sub["offer_key"]) == (order["id"], plan)
        subs.append(sub)
    pages = _all_pages(client, secret_headers, "/v1/subscriptions", 2)
    assert [s["id"] for p in pages for s in p] == sorted((s["id"] for s in subs), reverse=True)
    by_plan = client.get("/v1/subscriptions", headers=secret_headers, params={"plan": "membership-annual"})
    assert [s["id"] for s in by_plan.json()["items"]] == [subs[2]["id"], subs[0]["id"]]
    trialing = client.get("/v1/subscriptions", headers=secret_headers, params={"status": "trialing"})
    assert [(s["id"], s["state"]["trial_end"] is not None) for s in trialing.json()["items"]] == [
        (subs[1]["id"], True)
    ]

    sales = _all_pages(client, secret_headers, "/v1/ledger/entries", 1, kind="sale")
    assert [[e["order_id"] for e in p] for p in sales] == [[subs[0]["order_id"]], [subs[2]["order_id"]]]
    assert all(sum(p["amount"] for p in e["postings"]) == 0 for page in sales for e in page)

    r = client.post("/v1/ledger/payouts", headers=secret_headers,
                    json={"reference": "tr_1", "amount": 100, "currency": "USD", "paid_at": "2026-12-01T10:00:00Z"})  # fmt: skip
    assert r.status_code == 201, r.text
    december = {"kind": "payout", "start": "2026-12-01", "end": "2027-01-01"}
    payouts = client.get("/v1/ledger/entries", headers=secret_headers, params=december).json()
    assert [(e["id"], e["kind"], e["occurred_at"]) for e in payouts["items"]] == [
        (r.json()["entry_id"], "payout", "2026-12-01T10:00:00Z")
    ]
    november = client.get("/v1/ledger/entries", headers=secret_headers,
                          params={**december, "start": "2026-11-01", "end": "2026-12-01"}).json()  # fmt: skip
    assert november == {"items": [], "next_cursor": None}

    revenue = _all_pages(client, secret_headers, "/v1/revenue", 1, by="offer", currency="USD")
    assert [[(r["key"], r["amount"]) for r in p] for p in revenue] == [[("membership-annual", 78000)]]

    assert checkout_service.run_fulfilment(db=db)  # access is granted by the fulfilment jobs
    buyer = subs[0]["buyer_id"]
    grants = _all_pages(client, secret_headers, f"/v1/buyers/{buyer}/entitlements", 1)
    flat = [e for p in grants for e in p]
    assert len(flat) == len({e["id"] for e in flat}) >= 2 and [e["id"] for e in flat] == sorted(
        e["id"] for e in flat
    )
    only = client.get(f"/v1/buyers/{buyer}/entitlements", headers=secret_headers,
                      params={"component": flat[0]["component"], "source": subs[0]["id"]}).json()["items"]  # fmt: skip
    assert [e["id"] for e in only] == [e["id"] for e in flat if e["component"] == flat[0]["component"]]


def _cursor(value: object) -> str:
    import orjson

    return base64.urlsafe_b64encode(orjson.dumps(value)).decode().rstrip("=")


@pytest.mark.parametrize(
    "cursor",
    [
        "not a cursor!",
        "%%%",
        base64.urlsafe_b64encode(b"\xff\xfe").decode(),
        _cursor({"id": "ord_1"}),
        _cursor([1, 2, 3, 4, 5]),
        _cursor([True]),
        _cursor(["sub_01"]),  # a subscriptions cursor
        _cursor([7]),  # a ledger entries cursor
        _cursor(["ord_x", 7]),  # another order's payments cursor
        _cursor(["persona", "USD", 1, "x"]),  # another ranking's revenue cursor
        "A" * 600,
    ],
)
def test_a_garbage_or_foreign_cursor_is_422_invalid_cursor(client, db, secret_headers, write_headers, cursor):
    setup(client, secret_headers, write_headers)
    order = buy(client, secret_headers, "pricing-playbook")
    for url, params in (
        ("/v1/orders", {}),
        ("/v1/subscriptions", {}),
        (f"/v1/orders/{order['id']}/payments", {}),
        ("/v1/ledger/entries", {}),
        ("/v1/revenue", {"by": "offer", "currency": "USD"}),
        (f"/v1/buyers/{order['buyer_id']}/entitlements", {}),
    ):
        r = client.get(url, headers=secret_headers, params={**params, "cursor": cursor})
        if url == "/v1/subscriptions" and cursor == _cursor(["sub_01"]):
            assert r.status_code == 200, r.text  # its own shape: a valid (if made-up) position
            continue
        if url == "/v1/ledger/entries" and cursor == _cursor([7]):
            assert r.status_code == 200, r.text
            continue
        assert (r.status_code, r.json()["error"]["code"]) == (422, "invalid_cursor"), (url, r.text)


# -- hostile clients -----------------------------------------------------------------------------------


def test_bad_ids_other_keys_and_garbage_get_4xx_with_stable_codes(
    client, db, secret_headers, write_headers, other_workspace
) -> None:
    setup(client, secret_headers, write_headers)
    order = buy(client, secret_headers, "membership-annual")
    pay(client, secret_headers, order["id"])
    (sub,) = client.get("/v1/subscriptions", headers=secret_headers).json()["items"]
    other = bearer(other_workspace.secret_key)

    def code(r) -> tuple[int, str]:
        return r.status_code, r.json()["error"]["code"]

    for headers in (secret_headers, other):
        missing = "ord_nope" if headers is secret_headers else order["id"]
        assert code(client.get(f"/v1/orders/{missing}", headers=headers)) == (404, "order_not_found")
        assert code(client.get(f"/v1/orders/{missing}/payments", headers=headers)) == (404, "order_not_found")
        assert code(client.post(f"/v1/orders/{missing}/refund", headers=headers, json={})) == (
            404,
            "order_not_found",
        )
        assert code(client.post(f"/v1/orders/{missing}/cancel", headers=headers)) == (404, "order_not_found")
        assert code(client.post(f"/v1/orders/{missing}/paid", headers=headers, json={})) == (
            404,
            "order_not_found",
        )
        assert code(client.post(f"/v1/orders/{missing}/fulfilment/download/x/retry", headers=headers)) == (
            404, "order_not_found"
        )  # fmt: skip
        sid = "sub_nope" if headers is secret_headers else sub["id"]
        assert code(client.get(f"/v1/subscriptions/{sid}", headers=headers)) == (
            404,
            "subscription_not_found",
        )
        assert code(client.post(f"/v1/subscriptions/{sid}/actions", headers=headers, json={"action": "pause"})) == (
            404, "subscription_not_found"
        )  # fmt: skip
        assert code(client.get(f"/v1/ledger/orders/{missing}", headers=headers)) == (
            404,
            "ledger_order_not_found",
        )
    assert client.get("/v1/orders", headers=other).json() == {"items": [], "next_cursor": None}
    assert client.get("/v1/ledger/entries", headers=other).json() == {"items": [], "next_cursor": None}

    garbage = [
        ("post", "/v1/checkout", {"user_id": "ada", "offer": "pricing-playbook", "quantity": 10**30}),
        ("post", "/v1/checkout", {"user_id": "ada", "offer": "x" * 10_000}),
        ("post", "/v1/checkout", {"user_id": ["ada"], "offer": "pricing-playbook"}),
        ("post", "/v1/checkout", {"offer": "pricing-playbook"}),
        ("post", "/v1/checkout", "not an object"),
        ("post", f"/v1/orders/{order['id']}/refund", {"amount": 2**70}),
        ("post", f"/v1/orders/{order['id']}/refund", {"amount": -5}),
        ("post", f"/v1/orders/{order['id']}/paid", {"processor_fee": "lots"}),
        ("post", f"/v1/subscriptions/{sub['id']}/actions", {"action": "explode"}),
        ("post", f"/v1/subscriptions/{sub['id']}/actions", {"action": "renew", "at": "2026-12-01T00:00:00"}),
        ("post", f"/v1/subscriptions/{sub['id']}/actions", {"action": "pause", "sneaky": True}),
        ("get", "/v1/orders?limit=0", None),
        ("get", "/v1/orders?limit=100000", None),
        ("get", "/v1/orders?limit=ten", None),
        ("get", "/v1/subscriptions?status=zombie", None),
        ("get", "/v1/ledger/entries?kind=gift", None),
        ("get", "/v1/ledger/entries?start=yesterday", None),
        ("get", "/v1/ledger/entries?start=2026-12-01&end=2026-11-01", None),
        ("get", f"/v1/buyers/{order['buyer_id']}/entitlements?component=spaceship", None),
    ]
    for method, url, body in garbage:
        r = client.request(method, url, headers=secret_headers, json=body)
        # the input guard refuses what no schema could hold (invalid_input), the schemas the rest
        assert code(r) in ((422, "validation_failed"), (422, "invalid_input")), (url, body, r.text)

    refused = [
        ("post", f"/v1/subscriptions/{sub['id']}/actions", {"action": "change_plan"}, (409, "plan_required")),
        ("post", f"/v1/subscriptions/{sub['id']}/actions", {"action": "change_plan", "plan": "pricing-playbook"},
         (409, "invalid_plan")),
        ("post", f"/v1/subscriptions/{sub['id']}/actions", {"action": "change_plan", "plan": "nope"},
         (404, "offer_not_found")),
        ("post", f"/v1/subscriptions/{sub['id']}/actions", {"action": "resume"}, (409, "invalid_transition")),
        ("post", f"/v1/orders/{order['id']}/cancel", None, (409, "not_cancelable")),
        ("post", f"/v1/orders/{order['id']}/refund", {"amount": 10**9}, (409, "invalid_refund_amount")),
        ("post", "/v1/checkout", {"user_id": "ada", "offer": "nope"}, (404, "offer_not_found")),
        ("post", "/v1/checkout", {"user_id": "ada", "offer": "pricing-playbook", "provider": "stripe"},
         (409, "provider_not_configured")),
        ("post", "/v1/webhooks/stripe", None, (409, "provider_not_configured")),
    ]  # fmt: skip
    for method, url, body, expected in refused:
        r = client.request(method, url, headers=secret_headers, json=body)
        assert code(r) == expected, (url, body, r.text)
    assert client.get(f"/v1/orders/{order['id']}", headers=secret_headers).json()["status"] == "paid"
