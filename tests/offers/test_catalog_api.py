"""PUT/GET /v1/offers/catalog and sign-off over HTTP: named shapes, and hostile catalogs as clear 422s."""

from __future__ import annotations

from typing import Any

import pytest
from fastapi.testclient import TestClient

CATALOG = """\
offers:
  - key: playbook
    kind: product
    title: "Playbook"
    prices: {USD: 2700, EUR: 2500}
  - key: print
    kind: drop
    title: "Print"
    prices: {USD: 4900}
    inventory: 3
    opens_at: "2026-01-01T00:00:00Z"
    closes_at: "2999-01-01T00:00:00Z"
coupons:
  - {code: LAUNCH20, percent_off: 20}
"""


def put(client: TestClient, headers: dict[str, str], body: Any) -> tuple[int, Any]:
    r = client.put("/v1/offers/catalog", headers=headers, json=body)
    return r.status_code, r.json()


def test_load_list_and_sign_off(client: TestClient, secret_headers: dict[str, str]) -> None:
    assert put(client, secret_headers, {"text": CATALOG}) == (
        200,
        {"version": 1, "offers": ["playbook", "print"], "coupons": ["LAUNCH20"]},
    )
    listed = client.get("/v1/offers/catalog", headers=secret_headers).json()["items"]
    assert [(o["key"], o["state"], o["stock"]) for o in listed] == [
        ("playbook", "active", None),
        ("print", "draft", {"total": 3, "sold": 0, "held": 0}),
    ]
    assert listed[1]["opens_at"] == "2026-01-01T00:00:00Z"
    r = client.post("/v1/offers/print/signoff", headers=secret_headers)
    assert (r.status_code, r.json()) == (200, {"key": "print", "state": "live"})
    r = client.post("/v1/offers/nope/signoff", headers=secret_headers)
    assert (r.status_code, r.json()["error"]["code"]) == (404, "offer_not_found")


def test_problems_come_back_with_lines_and_paths(client: TestClient, secret_headers: dict[str, str]) -> None:
    text = CATALOG.replace("prices: {USD: 2700, EUR: 2500}", "prices: {USD: 27.00}\n    title: Again")
    status, body = put(client, secret_headers, {"text": text})
    assert status == 422
    assert body["error"]["code"] == "invalid_catalog"
    assert body["error"]["details"] == [
        {"path": "<catalog>", "line": 5, "location": "offers[0].prices.USD",
         "message": "must be an integer amount in minor units (e.g. 4900 for USD 49.00), got 27.0"},
        {"path": "<catalog>", "line": 6, "location": "offers[0].title",
         "message": "duplicate key 'title' (first at line 4)"},
    ]  # fmt: skip


def _bomb() -> str:
    lines = ["a0: &a0 [x, x, x, x, x, x, x, x, x, x]"]
    lines += [f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]" for i in range(1, 12)]
    return "\n".join(lines) + "\n"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (_bomb(), "<catalog>:1: aliases (*name) expand the document to more than 10 times its size"),
        ("offers: " + "[" * 500 + "]" * 500, "<catalog>:1: invalid YAML (column 72): the document is nested "
         "deeper than 64 levels"),
        ("offers:\n  - {key: a, kind: product, title: A, prices: {USD: " + "9" * 5000 + "}}\n",
         "<catalog>:1: invalid YAML: a number with more digits than can be read (at most 4300)"),
        ("offers:\n  - {key: a, kind: drop, title: A, prices: {USD: 100000000000000000000}, inventory: 3000000000,\n"
         "     opens_at: '2026-01-01T00:00:00Z', closes_at: '2027-01-01T00:00:00Z'}\n",
         "<catalog>:2: offers[0].prices.USD: must be at most 1000000000000000, got 100000000000000000000\n"
         "<catalog>:2: offers[0].inventory: must be at most 2147483647, got 3000000000"),
        ("offers: {a: 1}\n", "<catalog>:1: offers: must be a list, got {'a': 1}"),
        ("offers:\n  - {key: a, kind: product, title: [A], prices: {USD: true}}\n",
         "<catalog>:2: offers[0].title: must be a string, got ['A']\n<catalog>:2: offers[0].prices.USD: must be an "
         "integer amount in minor units (e.g. 4900 for USD 49.00), got True"),
        ("{\"offers\": [], \"offers\": 1}", "<catalog>:1: offers: duplicate key 'offers' (first at line 1)\n"
         "<catalog>:1: offers: must be a list, got 1"),
        ("offers: [a\n", "<catalog>:2: invalid YAML (column 1): expected ',' or ']', but got '<stream end>'"),
    ],
)  # fmt: skip
def test_hostile_catalogs_are_clear_422s(
    client: TestClient, secret_headers: dict[str, str], text: str, message: str
) -> None:
    status, body = put(client, secret_headers, {"text": text})
    assert (status, body["error"]["code"], body["error"]["message"]) == (422, "invalid_catalog", message)


def test_wrong_body_types_and_bytes_are_request_errors(
    client: TestClient, secret_headers: dict[str, str]
) -> None:
    for body in ({"text": 5}, {"text": None}, {}, [], "offers: []"):
        status, _ = put(client, secret_headers, body)
        assert status == 422, body
    r = client.put(
        "/v1/offers/catalog",
        headers={**secret_headers, "Content-Type": "application/json"},
        content=b'{"text": "offers: \xff"}',
    )
    assert r.status_code in (400, 422)
    assert "error" in r.json() or "detail" in r.json()


def test_routes_document_their_response_models_and_errors(client: TestClient) -> None:
    paths = client.get("/openapi.json").json()["paths"]
    put_catalog = paths["/v1/offers/catalog"]["put"]["responses"]
    assert put_catalog["200"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/CatalogLoaded"
    }
    assert put_catalog["422"]["description"].startswith("code: `invalid_catalog`")
    assert paths["/v1/offers/catalog"]["get"]["responses"]["404"]["description"] == "code: `offer_not_found`"
    signoff = paths["/v1/offers/{key}/signoff"]["post"]["responses"]
    assert signoff["200"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/SignOffRead"
    }
    offers = paths["/v1/offers"]["get"]["responses"]
    assert offers["200"]["content"]["application/json"]["schema"] == {
        "$ref": "#/components/schemas/OffersPresented"
    }
    assert offers["422"]["description"].startswith("code: `invalid_currency`")
